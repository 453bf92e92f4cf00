//! Account operations shared by the HTTP routes and the `den user …` commands.

use chrono::Duration;
use den_store::{NewUser, Store, UserRecord};
use uuid::Uuid;

use crate::auth::{password, secret_token};
use crate::error::ApiError;
use crate::validate;

pub use crate::auth::password::MIN_PASSWORD_LEN;

/// Creates a user; `password` `None` makes an account that signs in by link or GitHub only.
pub async fn create_user(
    store: &Store,
    username: &str,
    password: Option<String>,
    is_admin: bool,
) -> Result<UserRecord, ApiError> {
    validate::username(username).map_err(ApiError::BadRequest)?;
    let hash = match password {
        Some(password) => {
            password::validate(&password).map_err(ApiError::BadRequest)?;
            Some(password::hash(password).await?)
        }
        None => None,
    };
    let new = NewUser {
        username,
        password_hash: hash.as_deref(),
        is_admin,
        github: None,
    };
    Ok(store.create_user(new).await?)
}

/// Sets a new password.
pub async fn set_password(store: &Store, user_id: Uuid, password: String) -> Result<(), ApiError> {
    password::validate(&password).map_err(ApiError::BadRequest)?;
    let hash = password::hash(password).await?;
    Ok(store.set_password_hash(user_id, Some(&hash)).await?)
}

/// Sets a new password and signs out every browser session of the user but `keep` (the token
/// hash of the browser that made the change, if any): whoever else was signed in, perhaps with
/// the old password, must sign in again.
pub async fn change_password(
    store: &Store,
    user_id: Uuid,
    password: String,
    keep: Option<&str>,
) -> Result<(), ApiError> {
    set_password(store, user_id, password).await?;
    store.delete_other_web_sessions(user_id, keep).await?;
    Ok(())
}

/// Creates a one-time sign-in link for `user_id`, valid for `ttl`, and returns its URL.
pub async fn create_login_link(
    store: &Store,
    public_url: &str,
    user_id: Uuid,
    ttl: std::time::Duration,
) -> Result<String, ApiError> {
    let token = secret_token::generate()?;
    let ttl =
        Duration::from_std(ttl).map_err(|_| ApiError::bad_request("link lifetime too long"))?;
    store
        .create_login_link(&secret_token::hash(&token), user_id, den_store::now() + ttl)
        .await?;
    Ok(format!(
        "{}/api/auth/link/{token}",
        public_url.trim_end_matches('/')
    ))
}

/// On first run (no user at all), creates the admin account `admin` without a password and
/// returns a one-time sign-in link for it; `None` when users exist.
pub async fn bootstrap_admin(
    store: &Store,
    public_url: &str,
    ttl: std::time::Duration,
) -> Result<Option<String>, ApiError> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let admin = create_user(store, "admin", None, true).await?;
    Ok(Some(
        create_login_link(store, public_url, admin.id, ttl).await?,
    ))
}
