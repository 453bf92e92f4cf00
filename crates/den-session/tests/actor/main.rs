//! The session actor against a fake sandbox runtime and a fake OpenCode (no root, no sandbox,
//! no OpenCode binary): what it promises about turns, snapshots, the queue, the idle pause,
//! the turn deadline and recovery. Time-based behaviour moves the tokio clock forward instead
//! of waiting.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "in tests a failed unwrap is a failed test"
)]

mod fake_runtime;
mod invariants;
mod takeover;
mod terminals;

use std::sync::Arc;
use std::time::Duration;

use den_protocol::events::{SessionEvent, TurnOutcome};
use den_protocol::sessions::SessionStatus;
use den_session::{Delivery, EventSubscription, SessionConfig, SessionHandle, SessionManager};
use den_store::{Keyring, NewSession, NewUser, Store};
use den_test_support::FakeOpencode;
use fake_runtime::FakeRuntime;
use uuid::Uuid;

/// How long a test waits for something the actor does promptly.
const PATIENCE: Duration = Duration::from_secs(15);

pub struct World {
    pub store: Store,
    pub manager: SessionManager,
    pub runtime: Arc<FakeRuntime>,
    pub agent: FakeOpencode,
    pub config: SessionConfig,
    pub owner: Uuid,
    pub dir: tempfile::TempDir,
}

/// Which database a test's store runs on: every actor test runs on both (`on_both_databases!`).
#[derive(Debug, Clone, Copy)]
pub enum Db {
    Sqlite,
    /// A fresh database on the server `DEN_TEST_DATABASE_URL` names.
    Postgres,
}

/// The PostgreSQL server the tests' fresh databases are made on. Without one the PostgreSQL
/// variants return at once (as the store contract suite does on a laptop); where the run must cover PostgreSQL
/// (`scripts/test` sets `DEN_TEST_REQUIRE_POSTGRES`, CI sets `CI`) a missing server fails them.
pub fn postgres_admin_url() -> Option<String> {
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

async fn database_url(db: Db, dir: &std::path::Path) -> String {
    match db {
        Db::Sqlite => format!("sqlite:{}", dir.join("den.db").display()),
        Db::Postgres => {
            use sqlx::Connection;
            let admin_url = postgres_admin_url().expect("checked by on_both_databases!");
            let name = format!("den_actor_{}", Uuid::new_v4().simple());
            let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await
                .unwrap();
            let (base, _) = admin_url.rsplit_once('/').unwrap();
            format!("{base}/{name}")
        }
    }
}

/// Runs each named test (an `async fn(Db)` in the calling module) once on SQLite and once on
/// PostgreSQL, as `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::Db::Sqlite).await
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                if $crate::postgres_admin_url().is_none() {
                    return;
                }
                super::$name($crate::Db::Postgres).await
            })*
        }
    };
}

impl World {
    pub async fn new(db: Db) -> Self {
        Self::with(db, |_| {}).await
    }

    pub async fn with(db: Db, configure: impl FnOnce(&mut SessionConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = database_url(db, dir.path()).await;
        let store = Store::connect(&url, Keyring::generate().unwrap())
            .await
            .unwrap();
        let owner = store
            .create_user(NewUser {
                username: "alice",
                password_hash: None,
                is_admin: false,
                github: None,
            })
            .await
            .unwrap()
            .id;
        let agent = FakeOpencode::start().await;
        let runtime = FakeRuntime::new(agent.socket());
        let mut config = SessionConfig::new(
            dir.path(),
            dir.path().join("gateway.sock"),
            dir.path().join("opencode"),
        );
        config.idle_timeout = Duration::from_secs(300);
        config.turn_inactivity_timeout = Duration::from_secs(600);
        configure(&mut config);
        let manager = SessionManager::new(store.clone(), runtime.clone(), config.clone());
        Self {
            store,
            manager,
            runtime,
            agent,
            config,
            owner,
            dir,
        }
    }

    /// A session on a fresh local repository.
    pub async fn session(&self) -> SessionHandle {
        let repo = self.dir.path().join(format!("repo-{}", Uuid::now_v7()));
        tokio::fs::create_dir_all(&repo).await.unwrap();
        tokio::fs::write(repo.join("README.md"), "hello\n")
            .await
            .unwrap();
        den_git::init_with_commit(&repo, "first").await.unwrap();
        let id = Uuid::now_v7();
        let repository = repo.display().to_string();
        self.store
            .create_session(NewSession {
                id,
                owner_id: self.owner,
                title: "a session",
                repository: &repository,
                base_branch: None,
                work_branch: "den/test",
                model: "scripted/scripted-model",
            })
            .await
            .unwrap();
        self.manager.session(self.owner, id).await.unwrap()
    }

    pub async fn status(&self, session: &SessionHandle) -> SessionStatus {
        self.store
            .session_of(self.owner, session.id())
            .await
            .unwrap()
            .status()
            .unwrap()
    }

    pub async fn snapshot_key(&self, session: &SessionHandle) -> Option<String> {
        self.store
            .session_of(self.owner, session.id())
            .await
            .unwrap()
            .snapshot_id
    }

    /// The snapshot archives on disk (artifacts, not partial files).
    pub fn snapshot_files(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.config.snapshots_dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".tar.zst"))
            .collect();
        names.sort();
        names
    }
}

/// Events of one session as they come, each waited for with a timeout.
pub struct Watch {
    subscription: EventSubscription,
    pub seen: Vec<SessionEvent>,
}

impl Watch {
    pub fn new(session: &SessionHandle) -> Self {
        Self {
            subscription: session.subscribe(0),
            seen: Vec::new(),
        }
    }

    /// Waits for the first event (after those already taken) that `pick` accepts.
    pub async fn until<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&SessionEvent) -> Option<T>,
    ) -> T {
        let wait = async {
            loop {
                match self.subscription.next().await {
                    Some(Ok(Delivery::Event(event))) => {
                        let event = event.event().event.clone();
                        let picked = pick(&event);
                        self.seen.push(event);
                        if let Some(picked) = picked {
                            return picked;
                        }
                    }
                    Some(Ok(Delivery::CaughtUp { .. })) => {}
                    Some(Err(err)) => panic!("the subscription failed: {err}"),
                    None => panic!("the session's events ended while waiting for {what}"),
                }
            }
        };
        match tokio::time::timeout(PATIENCE, wait).await {
            Ok(picked) => picked,
            Err(_) => panic!("no {what} within {PATIENCE:?}; saw {:#?}", self.seen),
        }
    }

    pub async fn turn_finished(&mut self) -> (TurnOutcome, Option<String>) {
        self.until("turn_finished", |event| match event {
            SessionEvent::TurnFinished { outcome, error, .. } => Some((*outcome, error.clone())),
            _ => None,
        })
        .await
    }

    pub async fn status(&mut self, wanted: SessionStatus) {
        self.until(&format!("status {wanted:?}"), |event| match event {
            SessionEvent::Status { status, .. } if *status == wanted => Some(()),
            _ => None,
        })
        .await;
    }
}

/// Moves the tokio clock forward by `by` at once (timers due meanwhile fire), then lets it run
/// on with real time, so the IO that follows is not cut short by a clock that races ahead.
pub async fn jump_clock(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}
