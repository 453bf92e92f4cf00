//! A client of a running den over its public HTTP API: what `den login`, `den run`,
//! `den attach` and the other terminal commands use.
//!
//! It depends only on den's wire types (den-protocol), never on the server, the store or the
//! sandbox, so it works against a den on another machine.
//!
//! - [`Client`]: the REST calls, authenticated with an API token.
//! - [`EventStream`]: a session's events over Server-Sent Events, resumed with `after=N`
//!   across dropped connections, so every event arrives exactly once.
//! - [`credentials`]: where the terminal keeps the den it signed in to (a 0600 file).

mod client;
pub mod credentials;
mod error;
mod events;

pub use client::Client;
pub use error::ClientError;
pub use events::{EventStream, StreamItem};
