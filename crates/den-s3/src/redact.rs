//! Keeps credentials out of every message: object storage errors may quote the server's answer,
//! and a `SignatureDoesNotMatch` answer names the access key id (AWS S3 includes it).

/// The secret values to scrub, taken from the store's settings.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} values)", self.secrets.len())
    }
}

/// Settings whose values are credentials (lowercase, with or without the `aws_` prefix).
const SECRET_OPTIONS: &[&str] = &[
    "access_key_id",
    "secret_access_key",
    "session_token",
    "token",
    "sse_customer_key_base64",
    "sse_kms_key_id",
];

impl Redactor {
    pub fn from_options(options: &[(String, String)]) -> Self {
        let mut secrets: Vec<String> = options
            .iter()
            .filter(|(key, _)| {
                let key = key.to_ascii_lowercase();
                let bare = key.strip_prefix("aws_").unwrap_or(&key);
                SECRET_OPTIONS.contains(&bare)
            })
            .map(|(_, value)| value.clone())
            // Very short values would scrub ordinary words; no real credential is that short.
            .filter(|value| value.len() >= 4)
            .collect();
        // Longest first, so a secret that contains another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    /// `text` with every credential replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[redacted]");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_scrubbed_and_other_settings_kept() {
        let redactor = Redactor::from_options(&[
            ("AWS_ACCESS_KEY_ID".to_owned(), "AKIDEXAMPLE".to_owned()),
            (
                "aws_secret_access_key".to_owned(),
                "wJalrXUtnFEMI".to_owned(),
            ),
            ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
        ]);
        let text = "<AWSAccessKeyId>AKIDEXAMPLE</AWSAccessKeyId> key wJalrXUtnFEMI in us-east-1";
        assert_eq!(
            redactor.scrub(text),
            "<AWSAccessKeyId>[redacted]</AWSAccessKeyId> key [redacted] in us-east-1"
        );
        assert!(!format!("{redactor:?}").contains("AKID"));
    }
}
