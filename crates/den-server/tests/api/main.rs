//! den-server's API, exercised over real HTTP against a real (SQLite) store.
#![allow(
    clippy::unwrap_used,
    reason = "in tests a failed unwrap is a failed test"
)]

mod authz;
mod branches;
mod budget;
mod credentials;
mod fuzz_routes;
mod fuzz_websocket;
mod gateway;
mod gateway_tokens;
mod github;
mod github_connect;
mod github_refresh;
mod input;
mod key_test;
mod logs;
mod models;
mod password;
mod repositories;
mod security_headers;
mod signin;
mod support;
