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
    /// Show a user's monthly model budget, or set the admin's cap for them: a number of US
    /// dollars a month, or `default` for den's default (`models.monthly_budget_usd`).
    Budget {
        name: String,
        /// US dollars a month, or `default`.
        #[arg(allow_negative_numbers = true)]
        usd: Option<String>,
    },
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
        UserCommand::Budget { name, usd } => {
            let user = find(&store, &name).await?;
            if let Some(usd) = usd {
                let cap = match usd.as_str() {
                    "default" => None,
                    number => Some(
                        number
                            .parse::<f64>()
                            .map_err(|_| {
                                anyhow::anyhow!(
                                    "{number:?} is not a number of US dollars (or `default`)"
                                )
                            })
                            .and_then(|n| {
                                den_server::budget::check_amount(n).map_err(anyhow::Error::msg)
                            })?,
                    ),
                };
                store.set_admin_budget(user.id, cap).await?;
            }
            print_budget(&store, &settings, &user).await?;
        }
        UserCommand::Remove { name } => {
            let user = find(&store, &name).await?;
            store.delete_user(user.id).await?;
            println!("removed user {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the user's caps and what they spent this month.
async fn print_budget(
    store: &den_store::Store,
    settings: &Settings,
    user: &den_store::UserRecord,
) -> anyhow::Result<()> {
    use den_server::budget::{Caps, month_start};
    let default = settings.models.monthly_budget_usd;
    let caps = Caps::of(store, user.id, default).await?;
    let record = store.budget(user.id).await?;
    let dollars = |cap: Option<f64>| cap.map_or_else(|| "none".to_owned(), |c| format!("${c:.2}"));
    let admin_note = if record.admin_cap_usd.is_some() {
        "set for them"
    } else {
        "den's default"
    };
    let spent = store.usage_since(user.id, month_start()).await?.cost_usd;
    println!(
        "{}: admin cap {} ({admin_note}), own cap {}, applies {}, spent this month ${spent:.2}",
        user.username,
        dollars(caps.admin),
        dollars(caps.own),
        dollars(caps.applying().map(|(cap, _)| cap)),
    );
    Ok(())
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
