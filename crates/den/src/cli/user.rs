//! `den user …`: local accounts.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use den_store::StoreError;

use crate::config::Settings;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum UserCommand {
    /// Create a user. Without --password-stdin, prints a one-time sign-in link instead.
    Add {
        name: String,
        /// Make the user an admin.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Set a user's password, read from standard input.
    Passwd { name: String },
    /// Print a new one-time sign-in link for an existing user (for someone locked out).
    Link { name: String },
    /// Remove a user and everything they own.
    Remove { name: String },
}

pub(crate) async fn run(settings: Settings, command: UserCommand) -> anyhow::Result<ExitCode> {
    let store = super::open_migrated_store(&settings).await?;
    match command {
        UserCommand::Add {
            name,
            admin,
            password_stdin,
        } => {
            let password = if password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            let user =
                den_server::accounts::create_user(&store, &name, password.clone(), admin).await?;
            println!(
                "created user {} ({})",
                user.username,
                if admin { "admin" } else { "user" }
            );
            if password.is_none() {
                print_login_link(&store, &settings, user.id).await?;
            }
        }
        UserCommand::List => {
            for user in store.list_users().await? {
                let role = if user.is_admin { "admin" } else { "user" };
                let github = user
                    .github_login
                    .as_deref()
                    .map(|l| format!(" github:{l}"))
                    .unwrap_or_default();
                println!(
                    "{}\t{role}{github}\t{}",
                    user.username,
                    user.created_at.format("%Y-%m-%d")
                );
            }
        }
        UserCommand::Passwd { name } => {
            let user = find(&store, &name).await?;
            den_server::accounts::set_password(&store, user.id, read_password()?).await?;
            println!("password of {name} changed");
        }
        UserCommand::Link { name } => {
            let user = find(&store, &name).await?;
            print_login_link(&store, &settings, user.id).await?;
        }
        UserCommand::Remove { name } => {
            let user = find(&store, &name).await?;
            store.delete_user(user.id).await?;
            println!("removed user {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Issues a one-time sign-in link for `user_id` and prints it.
async fn print_login_link(
    store: &den_store::Store,
    settings: &Settings,
    user_id: uuid::Uuid,
) -> anyhow::Result<()> {
    let ttl = Duration::from_secs(settings.auth.login_link_minutes * 60);
    let link = den_server::accounts::create_login_link(store, &settings.public_url(), user_id, ttl)
        .await?;
    println!(
        "one-time sign-in link (valid {} minutes): {link}",
        settings.auth.login_link_minutes
    );
    Ok(())
}

async fn find(store: &den_store::Store, name: &str) -> anyhow::Result<den_store::UserRecord> {
    match store.user_by_name(name).await {
        Err(StoreError::NotFound) => anyhow::bail!("no user named {name:?}"),
        other => Ok(other?),
    }
}

/// One line from standard input, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut input)
        .context("reading the password from standard input")?;
    let password = input.lines().next().unwrap_or_default().to_owned();
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    Ok(password)
}
