//! These tests never reach the internet, and an attempt fails loudly: every test den runs its
//! sandboxes with network `none`, a rule host-side git follows too.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::Den;

#[tokio::test]
async fn a_repository_on_the_internet_is_refused_with_an_error_that_names_it() {
    let den = Den::start().await;
    for repository in [
        "https://example.com/a/b.git",
        "https://93.184.216.34/a/b.git",
    ] {
        let (status, body) = den
            .api(
                Method::POST,
                "/api/sessions",
                Some(json!({"repository": repository})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("network policy is `none`") && message.contains("not allow-listed"),
            "{message}"
        );
    }
    let (_, listing) = den.api(Method::GET, "/api/sessions", None).await;
    assert_eq!(listing["sessions"], json!([]), "{listing}");
}
