//! End to end: the real den binary, real sandboxes, the real OpenCode, the scripted model.
#![allow(
    clippy::unwrap_used,
    reason = "in tests a failed unwrap is a failed test"
)]
#![allow(
    clippy::disallowed_methods,
    reason = "these tests run den and git as processes"
)]

mod asks;
mod changes;
mod cluster;
mod deletion;
mod fork;
mod git_gateway;
mod harness;
mod hermetic;
mod lifecycle;
mod models;
mod object_storage;
mod pool;
mod postgres;
mod secrets;
mod secrets_at_rest;
mod shutdown;
mod slow_client;
mod terminal;
mod titles;
mod turns;
mod web_terminal;
