//! No secret is kept in the clear: after a run that used every kind (an API token, a browser
//! session cookie, a one-time sign-in link, a password, a provider key, a personal endpoint's
//! key, a git credential), none of them is in the database's bytes (the SQLite files, or every
//! row of every table on PostgreSQL, also hex-encoded as PostgreSQL prints bytes) or in den's
//! log.

use den_test_support::Turn;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Database, Den, PASSWORD};

#[tokio::test]
async fn no_secret_is_in_the_sqlite_database_or_the_log() {
    secrets_stay_sealed(Database::Sqlite).await;
}

#[tokio::test]
async fn no_secret_is_in_the_postgres_database_or_the_log() {
    secrets_stay_sealed(Database::Postgres).await;
}

async fn secrets_stay_sealed(database: Database) {
    let den = Den::start_on(database).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // A browser session (its cookie), used for a change that needs the CSRF header.
    let login = http
        .post(format!("{}/api/auth/login", den.base))
        .header("x-den-csrf", "1")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|v| v.to_str().ok()?.strip_prefix("den_session="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .unwrap();
    let provider_key = "sk-ant-api03-at-rest-provider-key-Qw7e";
    let response = http
        .put(format!("{}/api/provider-keys/anthropic", den.base))
        .header("cookie", format!("den_session={cookie}"))
        .header("x-den-csrf", "1")
        .json(&json!({"key": provider_key}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let endpoint_key = "endpoint-at-rest-key-Zx81";
    let git_token = "ghp_atRestGitCredential0000000000001";
    for (path, body) in [
        (
            "/api/model-endpoints/home",
            json!({"baseUrl": "https://93.184.216.34/v1", "models": ["m"], "key": endpoint_key}),
        ),
        (
            "/api/git-credentials/git.example.com",
            json!({"username": "x-access-token", "token": git_token}),
        ),
    ] {
        let (status, body) = den.api(Method::PUT, path, Some(body)).await;
        assert!(status.is_success(), "{path}: {status} {body}");
    }

    // A one-time link, used.
    let link = den.add_user_with_link("bob").await;
    let link_token = link.rsplit('/').next().unwrap().to_owned();
    let used = http.get(&link).send().await.unwrap();
    assert_eq!(used.status(), StatusCode::SEE_OTHER);

    // A turn, so the session loop wrote its events.
    den.model.push(Turn::text("All done."));
    let session = den.create_session(Some("do a little")).await;
    den.connect(&session, 0).await.until_turn_finished().await;

    let secrets = [
        ("the API token", den.token.as_str()),
        ("the session cookie", cookie.as_str()),
        ("the sign-in link's token", link_token.as_str()),
        ("the password", PASSWORD),
        ("the provider key", provider_key),
        ("the endpoint key", endpoint_key),
        ("the git credential", git_token),
    ];
    let stored = match database {
        Database::Sqlite => sqlite_bytes(&den),
        Database::Postgres => postgres_rows(den.database_url.as_deref().unwrap()).await,
    };
    assert!(
        stored.len() > 2_000,
        "the scan reads the database ({} bytes)",
        stored.len()
    );
    // The scan can find what is there: the session's first prompt is stored in the clear.
    assert!(
        contains(&stored, b"do a little"),
        "the scan misses plain text"
    );
    let log = den.log.lock().unwrap().clone();
    assert!(log.lines().count() > 5, "the log was captured: {log}");
    for (what, secret) in secrets {
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(
            !contains(&stored, secret.as_bytes()) && !contains(&stored, hex.as_bytes()),
            "{what} is in the database in the clear"
        );
        assert!(!log.contains(secret), "{what} is in den's log");
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The SQLite database's files as they are on disk (the write-ahead log included).
fn sqlite_bytes(den: &Den) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["den.db", "den.db-wal", "den.db-shm"] {
        if let Ok(mut file) = std::fs::read(den.data_dir.path().join(name)) {
            bytes.append(&mut file);
        }
    }
    bytes
}

/// Every row of every table of den's PostgreSQL database, as PostgreSQL prints it.
async fn postgres_rows(url: &str) -> Vec<u8> {
    use sqlx::{Connection, Row};
    let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get(0))
    .collect();
    assert!(tables.iter().any(|t| t == "secrets"), "{tables:?}");
    let mut dump = Vec::new();
    for table in tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t::text FROM \"{table}\" t"
        )))
        .fetch_all(&mut connection)
        .await
        .unwrap();
        for row in rows {
            let text: String = row.get(0);
            dump.extend_from_slice(text.as_bytes());
            dump.push(b'\n');
        }
    }
    dump
}
