//! A person's own model endpoint, as den reaches it: the base URL checked against the sandbox
//! egress rules (every address its host resolves to), and a client that connects only to the
//! addresses that were checked. Without the pin, reqwest would look the name up again when it
//! connects, and a name that answered with a public address for the check could answer with a
//! private one a moment later (DNS rebinding). No redirect is followed either: a redirect would
//! lead to an address nobody checked.

use std::net::SocketAddr;

use den_session::{EgressPolicy, EgressRefusal};

/// A base URL that passed the rules, with the addresses a connection may use.
#[derive(Debug, Clone)]
pub(crate) struct CheckedEndpoint {
    url: reqwest::Url,
    /// The checked addresses of the URL's host; empty when the admin allows private
    /// endpoints (then nothing is refused, so nothing needs pinning).
    pinned: Vec<SocketAddr>,
}

impl CheckedEndpoint {
    /// The base URL as stored: normalised, without a trailing slash.
    pub(crate) fn base_url(&self) -> String {
        self.url.as_str().trim_end_matches('/').to_owned()
    }

    /// A client that reaches this endpoint's host only at the checked addresses and follows no
    /// redirect.
    pub(crate) fn client(&self) -> Result<reqwest::Client, String> {
        let host = self.url.host_str().filter(|_| !self.pinned.is_empty());
        pinned_client(host, &self.pinned)
            .map_err(|err| format!("den cannot make a client for the endpoint: {err}"))
    }
}

/// A client that reaches `host` (when given) only at the `pinned` addresses the egress rules
/// checked, through no proxy, following no redirect: what den uses for every outbound request
/// made on a person's behalf (model endpoints, the git gateway's remote).
pub(crate) fn pinned_client(
    host: Option<&str>,
    pinned: &[SocketAddr],
) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if let Some(host) = host {
        builder =
            builder.resolve_to_addrs(host.trim_start_matches('[').trim_end_matches(']'), pinned);
    }
    builder.build()
}

/// Checks a personal endpoint's base URL: http(s), no credentials, query or fragment in it, and
/// (unless the admin allows it) no host on loopback, private, link-local or other non-public
/// addresses, judged by the sandbox's egress rules on every address the name resolves to.
/// Messages are fit to show the person.
pub(crate) async fn check(text: &str, allow_private: bool) -> Result<CheckedEndpoint, String> {
    let url = reqwest::Url::parse(text.trim())
        .map_err(|_| "baseUrl must be an http:// or https:// URL".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") || text.len() > 500 {
        return Err(
            "baseUrl must be an http:// or https:// URL of at most 500 characters".to_owned(),
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("baseUrl must not hold credentials: give the key separately".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("baseUrl must not have a query or fragment".to_owned());
    }
    let host = url
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| "baseUrl must name a host".to_owned())?
        .to_owned();
    if allow_private {
        return Ok(CheckedEndpoint {
            url,
            pinned: Vec::new(),
        });
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses = EgressPolicy::default()
        .resolve(&host, port)
        .await
        .map_err(|refusal| match refusal {
            EgressRefusal::Unresolvable { .. } => format!("baseUrl: cannot resolve {host}"),
            _ => "baseUrl must not point at loopback, private or link-local addresses (an admin can allow them)".to_owned(),
        })?;
    Ok(CheckedEndpoint {
        url,
        pinned: addresses
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    use super::*;

    /// A local server counting the requests it gets; `redirect_to` answers each with a 307.
    async fn listener(redirect_to: Option<String>) -> (u16, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let app = Router::new().fallback(move || {
            let counted = counted.clone();
            let redirect_to = redirect_to.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                match redirect_to {
                    Some(to) => {
                        (StatusCode::TEMPORARY_REDIRECT, [("location", to)], "").into_response()
                    }
                    None => (StatusCode::OK, "pinned").into_response(),
                }
            }
        });
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(socket, app).await });
        (port, hits)
    }

    /// The client connects where the check pinned it, never where a fresh lookup would lead:
    /// a name no resolver knows (`.invalid`) reaches the pinned address, so a second, different
    /// DNS answer (rebinding) has nothing to change.
    #[tokio::test]
    async fn the_client_connects_only_to_the_checked_address() {
        let (port, hits) = listener(None).await;
        let endpoint = CheckedEndpoint {
            url: format!("http://den-rebind.invalid:{port}/v1")
                .parse()
                .unwrap(),
            pinned: vec![SocketAddr::from(([127, 0, 0, 1], port))],
        };
        let response = endpoint
            .client()
            .unwrap()
            .post(format!("{}/chat/completions", endpoint.base_url()))
            .send()
            .await
            .expect("the pinned address answers");
        assert_eq!(response.text().await.unwrap(), "pinned");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed() {
        let (elsewhere, elsewhere_hits) = listener(None).await;
        let (port, hits) = listener(Some(format!(
            "http://127.0.0.1:{elsewhere}/v1/chat/completions"
        )))
        .await;
        let endpoint = CheckedEndpoint {
            url: format!("http://den-rebind.invalid:{port}/v1")
                .parse()
                .unwrap(),
            pinned: vec![SocketAddr::from(([127, 0, 0, 1], port))],
        };
        let response = endpoint
            .client()
            .unwrap()
            .post(format!("{}/chat/completions", endpoint.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(elsewhere_hits.load(Ordering::SeqCst), 0, "never reached");
    }

    #[tokio::test]
    async fn the_check_pins_exactly_the_addresses_it_judged() {
        let checked = check("http://93.184.216.34:8080/v1/", false).await.unwrap();
        assert_eq!(checked.base_url(), "http://93.184.216.34:8080/v1");
        assert_eq!(
            checked.pinned,
            [SocketAddr::from(([93, 184, 216, 34], 8080))]
        );
        let err = check("http://127.0.0.1:8080/v1", false).await.unwrap_err();
        assert!(err.contains("loopback, private or link-local"), "{err}");
        let err = check("http://localhost:8080/v1", false).await.unwrap_err();
        assert!(err.contains("loopback, private or link-local"), "{err}");
        // An admin who allows private endpoints: nothing refused, nothing pinned.
        let allowed = check("http://127.0.0.1:8080/v1", true).await.unwrap();
        assert!(allowed.pinned.is_empty());
    }
}
