//! The client is served at `/`, client-side routes fall back to it, and missing assets are 404.

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};

async fn get(path: &str) -> (StatusCode, String, String) {
    let request = Request::get(path).body(Body::empty()).expect("request");
    let response = den_web::serve(request).await;
    let status = response.status();
    let kind = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let body = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, kind, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn index_and_client_routes_serve_the_page() {
    let (status, kind, root) = get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/html"), "{kind}");
    if den_web::BUILT {
        assert!(root.contains("<div id=\"root\">"), "{root}");
    } else {
        assert!(
            root.contains("npm run build"),
            "the placeholder says how to build: {root}"
        );
    }
    let (status, _, deep) = get("/s/0198c1f2-0000-7000-8000-000000000000").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deep, root, "client-side routes get index.html");
}

#[tokio::test]
async fn a_missing_asset_is_not_found_rather_than_html() {
    let (status, _, _) = get("/assets/index-doesnotexist.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
