//! Every response carries the browser defences: a strict Content-Security-Policy, no sniffing,
//! no framing, no Referer; HSTS only when den is served over https.

use reqwest::StatusCode;

use crate::support::TestServer;

const PATHS: [(&str, StatusCode); 4] = [
    // The web client (or its build placeholder), a client-side route, an API route and an
    // unknown API path: pages, JSON and errors alike.
    ("/", StatusCode::OK),
    ("/s/some-session", StatusCode::OK),
    ("/api/auth/me", StatusCode::UNAUTHORIZED),
    ("/api/no-such-route", StatusCode::NOT_FOUND),
];

async fn headers_of(server: &TestServer, path: &str) -> (StatusCode, reqwest::header::HeaderMap) {
    let response = server
        .http()
        .get(format!("{}{path}", server.base))
        .send()
        .await
        .unwrap();
    (response.status(), response.headers().clone())
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_plain_http_no_hsts() {
    let server = TestServer::start().await;
    for (path, expected) in PATHS {
        let (status, headers) = headers_of(&server, path).await;
        assert_eq!(status, expected, "{path}");
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{path} has no {name}"))
                .to_owned()
        };
        let policy = header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self';",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                policy.contains(directive),
                "{path}: {directive} missing in {policy}"
            );
        }
        assert!(
            !policy.contains("unsafe-eval")
                && !policy.contains("script-src 'self' 'unsafe-inline'"),
            "{path}: scripts must be den's own only: {policy}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert!(
            headers.get("strict-transport-security").is_none(),
            "{path}: HSTS over plain http would lock a browser out of a den without TLS"
        );
    }
}

#[tokio::test]
async fn over_https_responses_also_carry_hsts() {
    let server =
        TestServer::start_with(|config| config.public_url = "https://den.example".to_owned()).await;
    for (path, _) in PATHS {
        let (_, headers) = headers_of(&server, path).await;
        let hsts = headers
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{path} has no HSTS"));
        assert!(hsts.starts_with("max-age="), "{path}: {hsts}");
        assert!(headers.get("content-security-policy").is_some(), "{path}");
    }
}
