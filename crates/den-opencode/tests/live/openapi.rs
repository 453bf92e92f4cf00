use crate::live::harness::{Live, PASSWORD};

/// The vendored OpenAPI document (what the contract tests check the client against) must be
/// exactly the one the pinned binary serves at `/doc`; when the pin moves, this fails until the
/// document is refreshed (see `openapi/README.md`).
#[tokio::test]
async fn the_vendored_openapi_document_is_the_one_the_pinned_binary_serves() -> anyhow::Result<()> {
    let live = Live::start().await?;
    let served: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/doc", live.server.base_url()))
        .basic_auth("opencode", Some(PASSWORD))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let vendored_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("openapi")
        .join(format!(
            "openapi-{}.json",
            den_test_support::OPENCODE_VERSION
        ));
    let vendored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&vendored_path)?)?;
    assert!(
        served == vendored,
        "{} differs from what OpenCode {} serves at /doc; refresh it (openapi/README.md)",
        vendored_path.display(),
        den_test_support::OPENCODE_VERSION
    );
    Ok(())
}
