//! A GitHub App's user token expires after 8 hours: den refreshes it on the server before use,
//! once per person even when requests race (the refresh token works once), and a refresh GitHub
//! refuses (status 200 with an `error` field, as GitHub answers) asks the person to reconnect.

use den_test_support::{GitServer, UserRepository};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, TestServer, TestUser, assert_error};

/// The token the stand-in accepts: what a refresh hands out.
const FRESH_TOKEN: &str = "ghu_fresh_user_to_server_token";
const EXPIRED_TOKEN: &str = "ghu_expired_user_to_server_token";

struct Setup {
    server: TestServer,
    github: GitServer,
    user: TestUser,
    user_id: uuid::Uuid,
}

/// A den whose GitHub is the stand-in; its user `ada` holds an expired GitHub App token whose
/// refresh token is `refresh_token`.
async fn setup(refresh_token: &str) -> Setup {
    let github = GitServer::start(FRESH_TOKEN).await.unwrap();
    github.add_user_repository(UserRepository::new("acme/widgets", "2026-01-01T00:00:00Z"));
    let api_url = github.api_url();
    let token_url = format!("{}/login/oauth/access_token", github.base_url());
    let server = TestServer::start_with(move |config| {
        config.github = Some(den_server::GithubConfig {
            client_id: "client-id".to_owned(),
            client_secret: "client-secret".to_owned(),
            authorize_url: format!("{api_url}/login/oauth/authorize"),
            token_url,
            api_url,
            scopes: Vec::new(),
            allowed_logins: Vec::new(),
        });
    })
    .await;
    let user = server.user("ada").await;
    let user_id = server.store.user_by_name("ada").await.unwrap().id;
    let expired = json!({
        "access_token": EXPIRED_TOKEN,
        "refresh_token": refresh_token,
        "expires_at": (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339(),
    });
    server
        .store
        .put_secret(user_id, "github:token", expired.to_string().as_bytes())
        .await
        .unwrap();
    Setup {
        server,
        github,
        user,
        user_id,
    }
}

async fn repositories(setup: &Setup) -> (StatusCode, Value) {
    setup
        .server
        .call(
            Method::GET,
            "/api/repositories",
            Auth::Cookie(&setup.user),
            None,
        )
        .await
}

async fn stored(setup: &Setup) -> Value {
    let bytes = setup
        .server
        .store
        .secret(setup.user_id, "github:token")
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_even_when_requests_race() {
    let setup = setup("ghr_first").await;
    setup.github.issue_refresh_token("ghr_first");

    let answers = futures::future::join_all((0..6).map(|_| repositories(&setup))).await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["github"][0]["fullName"], "acme/widgets", "{body}");
    }
    assert_eq!(
        setup.github.refresh_calls(),
        1,
        "one refresh for six requests"
    );

    // The new pair is stored sealed, with its new expiry; the spent refresh token is gone.
    let token = stored(&setup).await;
    assert_eq!(token["access_token"], FRESH_TOKEN);
    assert_eq!(token["refresh_token"], "ghr_standin_refresh_1");
    let expires_at: chrono::DateTime<chrono::Utc> =
        token["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(expires_at > chrono::Utc::now() + chrono::Duration::hours(7));
    let sealed = setup
        .server
        .store
        .sealed_secret(setup.user_id, "github:token")
        .await
        .unwrap();
    for secret in [FRESH_TOKEN, "ghr_standin_refresh_1"] {
        assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
    for (_, body) in &answers {
        assert!(!body.to_string().contains(FRESH_TOKEN));
    }

    // A fresh token is used as it is: no second refresh.
    let (status, body) = repositories(&setup).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(setup.github.refresh_calls(), 1);
}

#[tokio::test]
async fn a_refused_refresh_asks_the_person_to_reconnect_github() {
    // The stand-in never issued this refresh token: it answers 200 with `bad_refresh_token`.
    let setup = setup("ghr_spent_elsewhere").await;
    let (status, body) = repositories(&setup).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("reconnect GitHub"), "{message}");
    assert!(!body.to_string().contains("ghr_spent_elsewhere"));
    assert_eq!(stored(&setup).await["needs_reconnect"], true);

    // Known broken: den does not ask GitHub again, and still says what to do.
    let (status, body) = repositories(&setup).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reconnect GitHub")
    );
    assert_eq!(setup.github.refresh_calls(), 1);
}

/// den's clone and the git gateway get the same token, refreshed, as a git credential for
/// GitHub's host (and nothing for other hosts); a link GitHub refused says to reconnect.
#[tokio::test]
async fn the_clone_and_the_git_gateway_get_the_refreshed_token_for_githubs_host_only() {
    use den_session::CredentialSource;
    let setup = setup("ghr_for_git").await;
    setup.github.issue_refresh_token("ghr_for_git");
    let config = den_server::GithubConfig {
        client_id: "client-id".to_owned(),
        client_secret: "client-secret".to_owned(),
        authorize_url: String::new(),
        token_url: format!("{}/login/oauth/access_token", setup.github.base_url()),
        api_url: setup.github.api_url(),
        scopes: Vec::new(),
        allowed_logins: Vec::new(),
    };
    let source = den_server::GithubCredentials::new(setup.server.store.clone(), config);
    let host = setup
        .github
        .base_url()
        .trim_start_matches("http://")
        .to_owned();

    let auth = source
        .credential(setup.user_id, &host)
        .await
        .unwrap()
        .expect("a credential for GitHub's host");
    assert_eq!(
        (auth.username.as_str(), auth.password.as_str()),
        ("x-access-token", FRESH_TOKEN)
    );
    assert_eq!(setup.github.refresh_calls(), 1);
    assert!(
        source
            .credential(setup.user_id, "git.example.com")
            .await
            .unwrap()
            .is_none(),
        "the GitHub token goes to GitHub's host only"
    );

    // Once GitHub refuses a refresh, the clone's error says what to do.
    let broken = json!({
        "access_token": EXPIRED_TOKEN, "refresh_token": "ghr_unknown",
        "expires_at": (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339(),
    });
    setup
        .server
        .store
        .put_secret(setup.user_id, "github:token", broken.to_string().as_bytes())
        .await
        .unwrap();
    let refusal = source.credential(setup.user_id, &host).await.unwrap_err();
    assert!(refusal.contains("reconnect GitHub"), "{refusal}");
}

/// A log writer into memory, shared with the test.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Neither the tokens of a refresh (old and new, access and refresh) nor a stored git host
/// credential reach den's log, even at debug level, whether the refresh works or GitHub refuses.
#[tokio::test]
async fn no_github_token_reaches_the_log() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test's runtime runs every task of the server on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let setup = setup("ghr_logged_nowhere").await;
    setup.github.issue_refresh_token("ghr_logged_nowhere");
    let (status, body) = repositories(&setup).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = setup
        .server
        .call(
            Method::PUT,
            "/api/git-credentials/git.example.com",
            Auth::Cookie(&setup.user),
            Some(json!({"username": "x-access-token", "token": "glpat_host_credential_secret"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A refused refresh too.
    let spent = json!({
        "access_token": "ghu_spent_access", "refresh_token": "ghr_spent_refresh",
        "expires_at": (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339(),
    });
    setup
        .server
        .store
        .put_secret(setup.user_id, "github:token", spent.to_string().as_bytes())
        .await
        .unwrap();
    let (status, _) = repositories(&setup).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let text = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    assert!(
        text.contains("refreshed the person's GitHub token"),
        "the log was captured: {text}"
    );
    for secret in [
        EXPIRED_TOKEN,
        FRESH_TOKEN,
        "ghr_logged_nowhere",
        "ghr_standin_refresh_1",
        "glpat_host_credential_secret",
        "ghu_spent_access",
        "ghr_spent_refresh",
    ] {
        assert!(!text.contains(secret), "{secret} is in the log");
    }
}
