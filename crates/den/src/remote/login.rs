//! `den login`, `den logout`, and finding the den the terminal signed in to.
//!
//! The sign-in lives in `$XDG_CONFIG_HOME/den/credentials.toml` (else
//! `~/.config/den/credentials.toml`), readable by its owner only. `DEN_URL` and `DEN_TOKEN`
//! override it (for CI, where nothing should be written).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use den_client::Client;
use den_client::credentials::{self, Credentials};

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// The den's address, for example https://den.example.org or http://127.0.0.1:8787.
    url: String,
    /// An API token (`den_…`). Prefer `--token-stdin`: a command line is visible to every user
    /// of the machine while it runs.
    #[arg(
        long,
        conflicts_with_all = ["token_stdin", "username"],
        required_unless_present_any = ["token_stdin", "username"]
    )]
    token: Option<String>,
    /// Read the API token from the first line of standard input.
    #[arg(long, conflicts_with = "username")]
    token_stdin: bool,
    /// Sign in with this account's password instead (read from standard input): den makes an
    /// API token for this terminal, listed in Settings → API tokens, where it can be revoked.
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the password from the first line of standard input (with `--username`).
    #[arg(long, requires = "username")]
    password_stdin: bool,
}

fn first_line_of_stdin(what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("reading the {what} from standard input"))?;
    // Only the line ending: a password may begin or end with spaces.
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Where the sign-in is kept.
fn credentials_path() -> anyhow::Result<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .context("neither XDG_CONFIG_HOME nor HOME is set: cannot find your config directory")?;
    Ok(config.join("den").join("credentials.toml"))
}

pub(crate) async fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let token = match (args.token, args.username) {
        (Some(token), _) => token,
        (None, Some(username)) => {
            let password = first_line_of_stdin("password")?;
            let client = Client::new(&args.url, "")?;
            let name = format!("den CLI ({username})");
            client
                .token_from_password(&username, &password, &name)
                .await?
                .token
        }
        (None, None) => first_line_of_stdin("token")?,
    };
    let token = token.trim().to_owned();
    anyhow::ensure!(!token.is_empty(), "the token is empty");
    let client = Client::new(&args.url, &token)?;
    // Checked before it is stored: a typo is caught now, not at the next command.
    let user = client.me().await?;
    let path = credentials_path()?;
    credentials::save(
        &path,
        &Credentials {
            url: client.base_url().to_owned(),
            token,
        },
    )?;
    println!(
        "signed in to {} as {} (saved in {})",
        client.base_url(),
        user.username,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn logout() -> anyhow::Result<ExitCode> {
    let path = credentials_path()?;
    if credentials::remove(&path)? {
        println!(
            "signed out (removed {}); the token itself still works until you revoke it in den",
            path.display()
        );
    } else {
        println!("not signed in");
    }
    Ok(ExitCode::SUCCESS)
}

/// The client for the den this terminal signed in to; `DEN_URL`/`DEN_TOKEN` win over the file.
pub(crate) fn signed_in_client() -> anyhow::Result<Client> {
    let from_env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let stored = match credentials_path() {
        Ok(path) => credentials::load(&path)?,
        Err(_) => None,
    };
    let url = from_env("DEN_URL").or_else(|| stored.as_ref().map(|c| c.url.clone()));
    // The stored token goes only to the den it was made for, never to another `DEN_URL`.
    let stored_token = stored.filter(|c| {
        url.as_deref()
            .and_then(|url| Client::new(url, "").ok())
            .is_some_and(|client| client.base_url() == c.url)
    });
    let token = from_env("DEN_TOKEN").or_else(|| stored_token.map(|c| c.token));
    match (url, token) {
        (Some(url), Some(token)) => Ok(Client::new(&url, &token)?),
        _ => anyhow::bail!(
            "not signed in: run `den login URL --token-stdin` (or set DEN_URL and DEN_TOKEN)"
        ),
    }
}
