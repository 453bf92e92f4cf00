//! A session's checkout on the host, the OpenCode config its sandbox gets, and the spec.

use std::path::{Path, PathBuf};

use den_sandbox::opencode::{base_config, opencode_spec};
use den_sandbox::probe::BasicAuth;
use den_sandbox::{Forward, SandboxSpec};
use den_store::SessionRecord;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::{GATEWAY_PORT, SessionConfig};
use crate::error::{Result, SessionError};

/// The session's base checkout: the read-only lower layer of each of its sandboxes.
pub(crate) fn checkout_dir(config: &SessionConfig, session_id: Uuid) -> PathBuf {
    config
        .workspaces_dir
        .join(session_id.to_string())
        .join("checkout")
}

pub(crate) fn snapshots_dir(config: &SessionConfig, session_id: Uuid) -> PathBuf {
    config.snapshots_dir.join(session_id.to_string())
}

/// Clones the repository onto the session's work branch, unless the checkout exists already
/// (a sandbox never writes to it, so it is still the pristine base).
pub(crate) async fn ensure_checkout(
    config: &SessionConfig,
    record: &SessionRecord,
) -> Result<PathBuf> {
    let checkout = checkout_dir(config, record.id);
    if checkout.join(".git").exists() {
        return Ok(checkout);
    }
    let parent = checkout
        .parent()
        .unwrap_or(&config.workspaces_dir)
        .to_path_buf();
    tokio::fs::create_dir_all(&parent).await?;
    // Clone into a temporary name and rename, so a failed clone never looks like a checkout.
    let partial = parent.join("checkout.partial");
    let _ = tokio::fs::remove_dir_all(&partial).await;
    den_sandbox::git::clone_onto_branch(
        &record.repository,
        &partial,
        record.base_branch.as_deref(),
        &record.work_branch,
        config.clone_timeout,
    )
    .await?;
    tokio::fs::rename(&partial, &checkout).await?;
    Ok(checkout)
}

/// A random secret, hex.
pub(crate) fn random_secret() -> Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|err| SessionError::Io(std::io::Error::other(err.to_string())))?;
    Ok(hex::encode(bytes))
}

pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// OpenCode's config: den's providers, each reached through the gateway with the session's
/// gateway token as its "API key" (the real key stays in den), and the session's model.
pub(crate) fn opencode_config(
    config: &SessionConfig,
    model: &str,
    gateway_token: &str,
) -> serde_json::Value {
    let mut value = base_config();
    let mut providers = serde_json::Map::new();
    for provider in &config.providers {
        let models: serde_json::Map<String, serde_json::Value> = provider
            .models
            .iter()
            .map(|m| (m.clone(), serde_json::json!({"name": m, "tool_call": true})))
            .collect();
        providers.insert(
            provider.name.clone(),
            serde_json::json!({
                "npm": provider.kind.npm_package(),
                "name": provider.name,
                "options": {
                    "baseURL": format!("http://127.0.0.1:{GATEWAY_PORT}/v1/{}", provider.name),
                    "apiKey": gateway_token,
                },
                "models": models,
            }),
        );
    }
    if let Some(object) = value.as_object_mut() {
        object.insert("provider".to_owned(), serde_json::Value::Object(providers));
        object.insert("model".to_owned(), model.into());
        // Titles and summaries use the small model; the session's model keeps them on a
        // provider den knows instead of one the sandbox may not reach.
        object.insert("small_model".to_owned(), model.into());
    }
    value
}

/// The sandbox spec for a session's OpenCode.
pub(crate) fn sandbox_spec(
    config: &SessionConfig,
    checkout: &Path,
    auth: &BasicAuth,
    opencode_config: &serde_json::Value,
) -> SandboxSpec {
    let mut spec = opencode_spec(checkout, &config.opencode_bin, auth, opencode_config);
    spec.limits = config.limits;
    spec.lifetime = config.lifetime;
    spec.network = config.network;
    spec.forwards.push(Forward {
        sandbox_port: GATEWAY_PORT,
        host_socket: config.gateway_socket.clone(),
    });
    spec
}
