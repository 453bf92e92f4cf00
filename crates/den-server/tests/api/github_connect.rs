//! "Connect GitHub" in settings: a person signed in with a password links their GitHub account
//! (the same OAuth flow as GitHub sign-in, against the same stand-in), and den keeps its token
//! sealed for them; a GitHub account already linked to another den user is refused.

use reqwest::{Method, StatusCode};

use crate::github::{approve_at_github, server_with_github};
use crate::support::{Auth, TestServer, TestUser, assert_error, read, set_cookies};

/// Starts connecting as `user`; returns GitHub's callback URL and the cookies to send to it.
async fn connect_at_github(server: &TestServer, user: &TestUser) -> (String, String) {
    let response = server
        .request(Method::POST, "/api/github/connect", Auth::Cookie(user))
        .send()
        .await
        .unwrap();
    let flow_cookies: Vec<String> = set_cookies(&response)
        .into_iter()
        .filter(|c| c.starts_with("den_oauth_"))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .collect();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        flow_cookies.len(),
        2,
        "state and connect cookies: {flow_cookies:?}"
    );
    let github_url = body["url"].as_str().unwrap();
    let approved = server.http().get(github_url).send().await.unwrap();
    let callback = approved.headers()["location"].to_str().unwrap().to_owned();
    let cookies = format!(
        "{}; {}={}",
        flow_cookies.join("; "),
        den_server::SESSION_COOKIE,
        user.cookie
    );
    (callback, cookies)
}

#[tokio::test]
async fn a_person_signed_in_with_a_password_connects_github_from_settings() {
    let server = server_with_github(&[]).await;
    let ada = server.user("ada").await;
    let (status, before) = server
        .call(Method::GET, "/api/github", Auth::Cookie(&ada), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (before["available"].as_bool(), before["connected"].as_bool()),
        (Some(true), Some(false))
    );

    let (callback, cookies) = connect_at_github(&server, &ada).await;
    let response = server
        .http()
        .get(&callback)
        .header("cookie", cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/settings#github");

    // Linked to ada (no second account), with the token held for her and never shown.
    assert_eq!(server.store.count_users().await.unwrap(), 1);
    let (_, me) = server
        .call(Method::GET, "/api/auth/me", Auth::Cookie(&ada), None)
        .await;
    assert_eq!(me["githubLogin"], "octocat");
    let (_, status) = server
        .call(Method::GET, "/api/github", Auth::Cookie(&ada), None)
        .await;
    assert_eq!(
        (status["connected"].as_bool(), status["login"].as_str()),
        (Some(true), Some("octocat"))
    );
    assert!(!status.to_string().contains("gho_"));
    let id = server.store.user_by_name("ada").await.unwrap().id;
    assert!(server.store.secret(id, "github:token").await.is_ok());

    // Signing in with GitHub now finds ada.
    let (callback, state_cookie) = approve_at_github(&server).await;
    let response = server
        .http()
        .get(&callback)
        .header("cookie", &state_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(server.store.count_users().await.unwrap(), 1);

    // Disconnecting forgets the token; a second disconnect has nothing to forget.
    let (status, _) = server
        .call(Method::DELETE, "/api/github", Auth::Cookie(&ada), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, after) = server
        .call(Method::GET, "/api/github", Auth::Cookie(&ada), None)
        .await;
    assert_eq!(after["connected"].as_bool(), Some(false));
    let (status, body) = server
        .call(Method::DELETE, "/api/github", Auth::Cookie(&ada), None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_github_account_of_another_den_user_is_not_connected_twice() {
    let server = server_with_github(&["*"]).await;
    // octocat signs in with GitHub: a den account of its own.
    let (callback, state_cookie) = approve_at_github(&server).await;
    let response = server
        .http()
        .get(&callback)
        .header("cookie", &state_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let ada = server.user("ada").await;
    let (callback, cookies) = connect_at_github(&server, &ada).await;
    let response = server
        .http()
        .get(&callback)
        .header("cookie", cookies)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let id = server.store.user_by_name("ada").await.unwrap().id;
    assert!(server.store.secret(id, "github:token").await.is_err());
    assert!(
        server
            .store
            .user_by_id(id)
            .await
            .unwrap()
            .github_id
            .is_none()
    );
}

#[tokio::test]
async fn a_connect_callback_in_a_browser_signed_out_meanwhile_links_nothing() {
    let server = server_with_github(&[]).await;
    let ada = server.user("ada").await;
    let (callback, cookies) = connect_at_github(&server, &ada).await;
    // The same flow cookies, but no den session any more.
    let flow_only: String = cookies
        .split("; ")
        .filter(|c| c.starts_with("den_oauth_"))
        .collect::<Vec<_>>()
        .join("; ");
    let response = server
        .http()
        .get(&callback)
        .header("cookie", flow_only)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(server.store.count_users().await.unwrap(), 1);
    let id = server.store.user_by_name("ada").await.unwrap().id;
    assert!(
        server
            .store
            .user_by_id(id)
            .await
            .unwrap()
            .github_id
            .is_none()
    );
}
