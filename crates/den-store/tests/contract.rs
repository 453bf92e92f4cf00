//! The store's contract: one story per table, run against SQLite always and against PostgreSQL
//! when `DEN_TEST_DATABASE_URL` names a server (each test then gets a fresh database there).

#![allow(
    clippy::unwrap_used,
    reason = "in tests a failed unwrap is a failed test"
)]

use chrono::Duration;
use den_protocol::sessions::SessionStatus;
use den_store::{Keyring, NewApiToken, NewSession, NewUser, SessionCursor, Store, StoreError, now};
use sqlx::Connection;
use uuid::Uuid;

#[path = "contract/accounts.rs"]
mod accounts;
#[path = "contract/leases.rs"]
mod leases;
#[path = "contract/share_links.rs"]
mod share_links;

/// The PostgreSQL server to test against. Without one the suite runs on SQLite alone, which is
/// fine on a laptop; but where the run must cover PostgreSQL (`scripts/test` sets
/// `DEN_TEST_REQUIRE_POSTGRES`, CI sets `CI`) a missing server fails the test instead of
/// quietly skipping half the contract.
fn postgres_admin_url() -> Option<String> {
    match std::env::var("DEN_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let required = ["DEN_TEST_REQUIRE_POSTGRES", "CI"]
                .iter()
                .any(|name| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0"));
            assert!(
                !required,
                "DEN_TEST_DATABASE_URL is not set, but this run must cover PostgreSQL \
                 (DEN_TEST_REQUIRE_POSTGRES or CI is set): export DEN_TEST_DATABASE_URL=$(scripts/start-postgres)"
            );
            None
        }
    }
}

/// A fresh store per backend; the tempdir keeps the SQLite file alive for the test.
async fn stores() -> (Vec<Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let keyring = Keyring::generate().unwrap();
    let sqlite_url = format!("sqlite:{}", dir.path().join("den.db").display());
    let mut stores = vec![Store::connect(&sqlite_url, keyring.clone()).await.unwrap()];
    if let Some((store, _url)) = fresh_postgres(keyring).await {
        stores.push(store);
    }
    (stores, dir)
}

/// A store on a fresh PostgreSQL database, and that database's URL (for tests that need a
/// second, raw connection); `None` without a server.
async fn fresh_postgres(keyring: Keyring) -> Option<(Store, String)> {
    let admin_url = postgres_admin_url()?;
    let name = format!("den_test_{}", Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    let url = format!("{base}/{name}");
    Some((Store::connect(&url, keyring).await.unwrap(), url))
}

async fn user(store: &Store, name: &str) -> Uuid {
    let new = NewUser {
        username: name,
        password_hash: Some("hash"),
        is_admin: false,
        github: None,
    };
    store.create_user(new).await.unwrap().id
}

async fn session(store: &Store, owner_id: Uuid, title: &str) -> Uuid {
    let id = Uuid::now_v7();
    let new = NewSession {
        id,
        owner_id,
        title,
        repository: "https://example.com/repo.git",
        base_branch: None,
        work_branch: "den/abc",
        model: "opencode/gpt-5-nano",
    };
    store.create_session(new).await.unwrap();
    id
}

#[tokio::test]
async fn migrations_are_idempotent_and_the_database_answers() {
    let (stores, _dir) = stores().await;
    for store in stores {
        assert_eq!(
            store.migrate().await.unwrap(),
            0,
            "{}",
            store.backend_name()
        );
        store.ping().await.unwrap();
    }
}

#[tokio::test]
async fn users_are_unique_by_name_and_deleting_one_removes_what_it_owns() {
    let (stores, _dir) = stores().await;
    for store in stores {
        let alice = user(&store, "alice").await;
        let again = NewUser {
            username: "alice",
            password_hash: None,
            is_admin: true,
            github: None,
        };
        assert!(matches!(
            store.create_user(again).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(store.count_users().await.unwrap(), 1);
        assert_eq!(store.user_by_name("alice").await.unwrap().id, alice);
        assert!(matches!(
            store.user_by_name("bob").await,
            Err(StoreError::NotFound)
        ));

        store.set_password_hash(alice, Some("new")).await.unwrap();
        let record = store.user_by_id(alice).await.unwrap();
        assert_eq!(record.password_hash.as_deref(), Some("new"));
        assert!(
            !format!("{record:?}").contains("new"),
            "Debug must not show the hash"
        );

        let github = NewUser {
            username: "octo",
            password_hash: None,
            is_admin: false,
            github: Some((42, "octo")),
        };
        let octo = store.create_user(github).await.unwrap();
        assert_eq!(store.user_by_github_id(42).await.unwrap().id, octo.id);

        session(&store, alice, "owned").await;
        store
            .put_secret(alice, "provider:openai", b"sk-x")
            .await
            .unwrap();
        store.delete_user(alice).await.unwrap();
        assert!(
            store
                .list_sessions(alice, None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            store.secret(alice, "provider:openai").await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.delete_user(alice).await,
            Err(StoreError::NotFound)
        ));
    }
}

#[tokio::test]
async fn sessions_belong_to_their_owner_and_list_newest_activity_first() {
    let (stores, _dir) = stores().await;
    for store in stores {
        let (alice, bob) = (user(&store, "alice").await, user(&store, "bob").await);
        let mut ids = Vec::new();
        for n in 0..5 {
            ids.push(session(&store, alice, &format!("s{n}")).await);
        }
        session(&store, bob, "bob's").await;
        // Activity on the oldest moves it to the top.
        store.touch_session(ids[0]).await.unwrap();

        let first = store.list_sessions(alice, None, 2).await.unwrap();
        let titles: Vec<_> = first.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["s0", "s4"]);
        let last = first.last().unwrap();
        let cursor = SessionCursor {
            last_activity_at: last.last_activity_at,
            id: last.id,
        };
        let cursor = SessionCursor::decode(&cursor.encode()).unwrap();
        let second = store.list_sessions(alice, Some(cursor), 10).await.unwrap();
        let titles: Vec<_> = second.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["s3", "s2", "s1"]);

        assert!(matches!(
            store.session_of(bob, ids[1]).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.rename_session(bob, ids[1], "x").await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.delete_session(bob, ids[1]).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(store.session_of(alice, ids[1]).await.unwrap().title, "s1");

        let renamed = store
            .rename_session(alice, ids[1], "renamed")
            .await
            .unwrap();
        assert_eq!(renamed.title, "renamed");
        assert_eq!(renamed.to_protocol().unwrap().status, SessionStatus::Idle);

        let errored = store
            .set_session_status(ids[2], SessionStatus::Error, Some("boom"))
            .await
            .unwrap();
        assert_eq!(errored.error.as_deref(), Some("boom"));
        assert_eq!(
            store
                .sessions_with_status(&[SessionStatus::Error])
                .await
                .unwrap()
                .len(),
            1
        );
        store
            .set_session_agent_state(ids[2], Some("ses_1"), Some("snap_1"))
            .await
            .unwrap();
        let record = store.session(ids[2]).await.unwrap();
        assert_eq!(
            (
                record.agent_session_id.as_deref(),
                record.snapshot_id.as_deref()
            ),
            (Some("ses_1"), Some("snap_1"))
        );
        // The object storage sweeper keeps exactly what records point at.
        assert_eq!(
            store.recorded_snapshot_ids().await.unwrap(),
            vec!["snap_1".to_owned()]
        );

        store.delete_session(alice, ids[1]).await.unwrap();
        assert!(matches!(
            store.session_of(alice, ids[1]).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(SessionCursor::decode("not a cursor"), None);
    }
}

#[tokio::test]
async fn events_are_ordered_resumable_and_never_share_a_number() {
    let (stores, _dir) = stores().await;
    for store in stores {
        let alice = user(&store, "alice").await;
        let id = session(&store, alice, "s").await;
        assert_eq!(store.last_event_seq(id).await.unwrap(), 0);
        for seq in 1..=5 {
            let payload = serde_json::json!({"n": seq, "text": "ünïcode ✓"});
            store
                .append_event(id, seq, "text_delta", &payload, now())
                .await
                .unwrap();
        }
        let dup = store
            .append_event(id, 3, "text_delta", &serde_json::json!({}), now())
            .await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))));
        assert_eq!(store.last_event_seq(id).await.unwrap(), 5);
        let rest = store.events_after(id, 2, 100).await.unwrap();
        let seqs: Vec<_> = rest.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert_eq!(
            rest[0].payload.0,
            serde_json::json!({"n": 3, "text": "ünïcode ✓"})
        );
        assert_eq!(store.events_after(id, 0, 2).await.unwrap().len(), 2);
        store.delete_session(alice, id).await.unwrap();
        assert!(store.events_after(id, 0, 100).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn the_database_picks_the_next_event_number_and_two_writers_never_share_one() {
    let (stores, _dir) = stores().await;
    for store in stores {
        let alice = user(&store, "alice").await;
        let id = session(&store, alice, "s").await;
        let payload = serde_json::json!({});
        assert_eq!(
            store
                .append_next_event(id, "k", &payload, now())
                .await
                .unwrap(),
            1
        );
        store
            .append_event(id, 2, "k", &payload, now())
            .await
            .unwrap();
        assert_eq!(
            store
                .append_next_event(id, "k", &payload, now())
                .await
                .unwrap(),
            3
        );
        // Two writers at once: each append gets its own number or fails on the key.
        let writer = |store: den_store::Store| async move {
            let mut got = Vec::new();
            for _ in 0..20 {
                match store
                    .append_next_event(id, "k", &serde_json::json!({}), now())
                    .await
                {
                    Ok(seq) => got.push(seq),
                    Err(StoreError::Conflict(_)) => {}
                    Err(err) => panic!("{err}"),
                }
            }
            got
        };
        let (a, b) = tokio::join!(writer(store.clone()), writer(store.clone()));
        let mut all: Vec<i64> = a.into_iter().chain(b).collect();
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), count, "no number was handed out twice");
        let stored = store.events_after(id, 0, 100).await.unwrap();
        assert_eq!(stored.len(), 3 + count);
    }
}

#[tokio::test]
async fn recovery_finds_only_starting_or_running_sessions_of_this_runner_or_none() {
    let (stores, _dir) = stores().await;
    for store in stores {
        let alice = user(&store, "alice").await;
        let mine = session(&store, alice, "mine").await;
        let unclaimed = session(&store, alice, "unclaimed").await;
        let other = session(&store, alice, "other").await;
        let paused = session(&store, alice, "paused").await;
        for (id, status) in [
            (mine, SessionStatus::Running),
            (unclaimed, SessionStatus::Starting),
            (other, SessionStatus::Running),
            (paused, SessionStatus::Paused),
        ] {
            store.set_session_status(id, status, None).await.unwrap();
        }
        store.set_session_runner(mine, "den-a").await.unwrap();
        store.set_session_runner(other, "den-b").await.unwrap();
        store.set_session_runner(paused, "den-a").await.unwrap();
        let mut found: Vec<_> = store
            .sessions_to_recover("den-a")
            .await
            .unwrap()
            .into_iter()
            .map(|record| record.id)
            .collect();
        found.sort();
        let mut expected = vec![mine, unclaimed];
        expected.sort();
        assert_eq!(found, expected);
        let running = store
            .sessions_with_status(&[SessionStatus::Running, SessionStatus::Paused])
            .await
            .unwrap();
        assert_eq!(running.len(), 3);
        assert!(matches!(
            store
                .set_session_runner(uuid::Uuid::now_v7(), "den-a")
                .await,
            Err(StoreError::NotFound)
        ));
    }
}

#[tokio::test]
async fn sign_in_links_work_once_and_expire() {
    let (stores, _dir) = stores().await;
    for store in stores {
        let alice = user(&store, "alice").await;
        store
            .create_login_link("h1", alice, now() + Duration::minutes(15))
            .await
            .unwrap();
        assert_eq!(store.consume_login_link("h1").await.unwrap(), alice);
        assert!(matches!(
            store.consume_login_link("h1").await,
            Err(StoreError::NotFound)
        ));
        store
            .create_login_link("h2", alice, now() - Duration::seconds(1))
            .await
            .unwrap();
        assert!(matches!(
            store.consume_login_link("h2").await,
            Err(StoreError::NotFound)
        ));

        store
            .create_web_session("w1", alice, now() + Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(store.web_session_user("w1").await.unwrap(), alice);
        store.delete_web_session("w1").await.unwrap();
        assert!(matches!(
            store.web_session_user("w1").await,
            Err(StoreError::NotFound)
        ));
        store
            .create_web_session("w2", alice, now() - Duration::seconds(1))
            .await
            .unwrap();
        assert!(matches!(
            store.web_session_user("w2").await,
            Err(StoreError::NotFound)
        ));

        store
            .create_oauth_state("st", "verifier", now() + Duration::minutes(10))
            .await
            .unwrap();
        assert_eq!(store.take_oauth_state("st").await.unwrap(), "verifier");
        assert!(matches!(
            store.take_oauth_state("st").await,
            Err(StoreError::NotFound)
        ));
    }
}

#[tokio::test]
async fn a_password_change_ends_the_other_browser_sessions_of_that_user_only() {
    let (stores, _dir) = stores().await;
    for store in stores {
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let later = now() + Duration::hours(1);
        for (hash, owner) in [("a1", alice), ("a2", alice), ("a3", alice), ("b1", bob)] {
            store.create_web_session(hash, owner, later).await.unwrap();
        }
        let ended = store
            .delete_other_web_sessions(alice, Some("a2"))
            .await
            .unwrap();
        assert_eq!(ended, 2);
        assert_eq!(store.web_session_user("a2").await.unwrap(), alice);
        for gone in ["a1", "a3"] {
            assert!(matches!(
                store.web_session_user(gone).await,
                Err(StoreError::NotFound)
            ));
        }
        assert_eq!(store.web_session_user("b1").await.unwrap(), bob);
        // Without a session to keep (a change made with an API token), every one ends.
        assert_eq!(
            store.delete_other_web_sessions(alice, None).await.unwrap(),
            1
        );
        assert_eq!(store.web_session_user("b1").await.unwrap(), bob);
    }
}

#[tokio::test]
async fn api_tokens_are_found_by_hash_and_revoked_only_by_their_owner() {
    let (stores, _dir) = stores().await;
    for store in stores {
        let (alice, bob) = (user(&store, "alice").await, user(&store, "bob").await);
        let new = NewApiToken {
            user_id: alice,
            name: "ci",
            prefix: "den_abcd",
            token_hash: "th",
        };
        let token = store.create_api_token(new).await.unwrap();
        let owner = store.use_api_token("th").await.unwrap();
        assert_eq!((owner.user_id, owner.token_id), (alice, token.id));
        let listed = store.list_api_tokens(alice).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].last_used_at.is_some());
        assert!(store.list_api_tokens(bob).await.unwrap().is_empty());
        assert!(matches!(
            store.delete_api_token(bob, token.id).await,
            Err(StoreError::NotFound)
        ));
        store.delete_api_token(alice, token.id).await.unwrap();
        assert!(matches!(
            store.use_api_token("th").await,
            Err(StoreError::NotFound)
        ));
    }
}

#[tokio::test]
async fn secrets_are_sealed_and_open_only_with_the_right_key() {
    let (stores, _dir) = stores().await;
    for store in stores {
        let (alice, bob) = (user(&store, "alice").await, user(&store, "bob").await);
        store
            .put_secret(alice, "provider:anthropic", b"sk-ant-api03-secret")
            .await
            .unwrap();
        store
            .put_secret(bob, "provider:anthropic", b"sk-ant-bob")
            .await
            .unwrap();
        let sealed = store
            .sealed_secret(alice, "provider:anthropic")
            .await
            .unwrap();
        assert!(
            !sealed.windows(6).any(|w| w == b"sk-ant"),
            "stored in the clear"
        );
        assert_eq!(
            store
                .secret(alice, "provider:anthropic")
                .await
                .unwrap()
                .as_slice(),
            b"sk-ant-api03-secret"
        );
        let purposes = store.secret_purposes(alice).await.unwrap();
        assert_eq!(
            purposes.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
            ["provider:anthropic"]
        );

        // Replacing keeps one record.
        store
            .put_secret(alice, "provider:anthropic", b"sk-ant-new")
            .await
            .unwrap();
        assert_eq!(
            store
                .secret(alice, "provider:anthropic")
                .await
                .unwrap()
                .as_slice(),
            b"sk-ant-new"
        );

        // Another master key cannot open it.
        let other_key = store.with_keyring(Keyring::generate().unwrap());
        assert!(
            other_key.secret(alice, "provider:anthropic").await.is_err(),
            "wrong key opened it"
        );
        store
            .delete_secret(alice, "provider:anthropic")
            .await
            .unwrap();
        assert!(matches!(
            store.delete_secret(alice, "provider:anthropic").await,
            Err(StoreError::NotFound)
        ));
    }
}

#[tokio::test]
async fn rotation_reseals_every_record_with_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = Keyring::generate().unwrap();
    let url = format!("sqlite:{}", dir.path().join("den.db").display());
    let store = Store::connect(&url, keyring.clone()).await.unwrap();
    let alice = user(&store, "alice").await;
    store.put_secret(alice, "a", b"one").await.unwrap();
    store.put_secret(alice, "b", b"two").await.unwrap();

    let rotated = keyring.with_new_key().unwrap();
    assert_eq!(store.reseal_secrets(&rotated).await.unwrap(), 2);
    assert_eq!(
        store.reseal_secrets(&rotated).await.unwrap(),
        0,
        "second run is a no-op"
    );
    let only_new = store.with_keyring(rotated.current_only());
    assert_eq!(
        only_new.secret(alice, "a").await.unwrap().as_slice(),
        b"one"
    );
    assert_eq!(
        only_new.secret(alice, "b").await.unwrap().as_slice(),
        b"two"
    );
    let only_old = store.with_keyring(keyring);
    assert!(only_old.secret(alice, "a").await.is_err());
}

#[tokio::test]
async fn provider_keys_are_set_replaced_deleted_and_listed_without_the_key() {
    let (stores, _dir) = stores().await;
    for store in stores {
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        assert!(
            store
                .provider_key(alice, "anthropic")
                .await
                .unwrap()
                .is_none()
        );
        store
            .set_provider_key(alice, "anthropic", b"sk-ant-api03-first-key-1234")
            .await
            .unwrap();
        store
            .set_provider_key(alice, "anthropic", b"sk-ant-api03-second-key-WXYZ")
            .await
            .unwrap();
        assert_eq!(
            store
                .provider_key(alice, "anthropic")
                .await
                .unwrap()
                .unwrap()
                .as_slice(),
            b"sk-ant-api03-second-key-WXYZ",
            "{}",
            store.backend_name()
        );
        assert!(
            store
                .provider_key(bob, "anthropic")
                .await
                .unwrap()
                .is_none()
        );
        let listed = store.provider_keys(alice).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0, "anthropic");
        assert_eq!(listed[0].1.fingerprint.as_deref(), Some("…WXYZ"));
        let sealed = store
            .sealed_secret(alice, "provider:anthropic")
            .await
            .unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"second"), "sealed at rest");

        assert!(matches!(
            store.delete_provider_key(bob, "anthropic").await,
            Err(StoreError::NotFound)
        ));
        store.delete_provider_key(alice, "anthropic").await.unwrap();
        assert!(
            store
                .provider_key(alice, "anthropic")
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.provider_keys(alice).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn model_endpoints_belong_to_their_owner_and_take_their_key_with_them() {
    let (stores, _dir) = stores().await;
    for store in stores {
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let models = vec!["llama-3".to_owned(), "qwen".to_owned()];
        let created = store
            .put_model_endpoint(den_store::NewModelEndpoint {
                owner_id: alice,
                name: "home",
                base_url: "https://models.example.com/v1",
                models: &models,
                api_key: Some(b"home-server-key-abcdefgh"),
            })
            .await
            .unwrap();
        assert_eq!(created.models, models, "{}", store.backend_name());
        assert_eq!(
            created.key.as_ref().unwrap().fingerprint.as_deref(),
            Some("…efgh")
        );
        // Replacing without a key keeps the key; with one replaces it.
        let replaced = store
            .put_model_endpoint(den_store::NewModelEndpoint {
                owner_id: alice,
                name: "home",
                base_url: "https://other.example.com/v1",
                models: &models[..1],
                api_key: None,
            })
            .await
            .unwrap();
        assert_eq!(replaced.base_url, "https://other.example.com/v1");
        assert_eq!(replaced.models, models[..1]);
        assert_eq!(
            store
                .endpoint_key(alice, "home")
                .await
                .unwrap()
                .unwrap()
                .as_slice(),
            b"home-server-key-abcdefgh"
        );
        assert!(store.model_endpoints(bob).await.unwrap().is_empty());
        assert!(matches!(
            store.model_endpoint(bob, "home").await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.delete_model_endpoint(bob, "home").await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(store.model_endpoints(alice).await.unwrap().len(), 1);

        store.delete_model_endpoint(alice, "home").await.unwrap();
        assert!(store.model_endpoints(alice).await.unwrap().is_empty());
        assert!(
            store.endpoint_key(alice, "home").await.unwrap().is_none(),
            "the key goes with its endpoint"
        );
        // An endpoint without a key.
        let keyless = store
            .put_model_endpoint(den_store::NewModelEndpoint {
                owner_id: alice,
                name: "open",
                base_url: "http://10.0.0.5:8000/v1",
                models: &models,
                api_key: None,
            })
            .await
            .unwrap();
        assert!(keyless.key.is_none());
    }
}

#[tokio::test]
async fn model_usage_adds_up_per_owner_per_session_and_since_a_time() {
    let (stores, _dir) = stores().await;
    for store in stores {
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let (one, two) = (Uuid::now_v7(), Uuid::now_v7());
        let before = now() - Duration::seconds(1);
        for (owner, session, cost) in [
            (alice, one, 0.5),
            (alice, one, 0.25),
            (alice, two, 1.0),
            (bob, one, 9.0),
        ] {
            store
                .record_usage(den_store::NewUsage {
                    owner_id: owner,
                    session_id: session,
                    model: "anthropic/claude-sonnet-4-5-20250929",
                    input_tokens: 10,
                    output_tokens: 5,
                    reasoning_tokens: 1,
                    cache_read_tokens: 2,
                    cache_write_tokens: 3,
                    cost_usd: cost,
                })
                .await
                .unwrap();
        }
        let totals = store.usage_since(alice, before).await.unwrap();
        assert_eq!(totals.requests, 3, "{}", store.backend_name());
        assert_eq!(
            (
                totals.input_tokens,
                totals.output_tokens,
                totals.cache_write_tokens
            ),
            (30, 15, 9)
        );
        assert!((totals.cost_usd - 1.75).abs() < 1e-9);
        let per_session = store.usage_by_session(alice, before).await.unwrap();
        assert_eq!(per_session.len(), 2);
        assert_eq!((per_session[0].0, per_session[0].1.requests), (two, 1));
        assert_eq!((per_session[1].0, per_session[1].1.requests), (one, 2));
        let later = store
            .usage_since(alice, now() + Duration::seconds(60))
            .await
            .unwrap();
        assert_eq!(later.requests, 0);
        assert_eq!(later.cost_usd, 0.0);
    }
}
