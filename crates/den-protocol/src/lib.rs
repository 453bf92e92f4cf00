//! den's wire types: everything the server sends to or accepts from a client.
//!
//! This crate is a leaf: no IO, no tokio, no database. Every type here derives `serde` and
//! `utoipa::ToSchema`, so the OpenAPI document (and from it the web client's TypeScript types) is
//! generated from these definitions and cannot drift from them.
//!
//! Conventions: camelCase fields, timestamps named `*At` (RFC 3339), ids as strings (UUIDs).
//! Request bodies refuse unknown fields, so a typo is an error rather than a silent no-op.
//!
//! Layout:
//! - [`auth`]: users, sign-in, API tokens.
//! - [`sessions`]: coding sessions and their states.
//! - [`models`]: the model catalog, provider keys and personal endpoints.
//! - [`changes`]: what a session changed in its repository (the diff).
//! - [`credentials`]: a person's credentials for git hosts (never returned).
//! - [`repositories`]: the repositories a person can start a session on.
//! - [`pause`]: why a session was paused.
//! - [`error`]: the one error body every route returns.
//! - [`events`]: a session's event stream and the WebSocket messages.
//! - [`sharing`]: forks of a session and read-only share links.
//! - [`terminal`]: the terminal WebSocket's messages.
//! - [`asks`]: the agent's questions and permission asks, and the approval mode.

pub mod asks;
pub mod auth;
pub mod changes;
pub mod cluster;
pub mod credentials;
pub mod error;
pub mod events;
pub mod models;
pub mod pause;
pub mod repositories;
pub mod sessions;
pub mod sharing;
pub mod terminal;
