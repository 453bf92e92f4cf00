//! The terminal client: `den login`, `den run`, `den attach` and the other commands that talk
//! to a running den (this machine's or another's) over its public HTTP API, through
//! den-client. Nothing here opens the store or starts a sandbox, and none of it reads den's
//! server configuration.
//!
//! Exit codes: 0 when the command (and the turn it followed) completed; 1 when the turn
//! failed, was stopped or interrupted, or the session is in error; 2 when the command was
//! refused (bad input, not signed in, a token den does not accept, an unknown session).

mod follow;
mod login;
mod render;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use den_client::{Client, ClientError};
use den_protocol::changes::{PullRequestRequest, PushRequest};
use den_protocol::events::PromptRequest;
use den_protocol::sessions::CreateSessionRequest;
use uuid::Uuid;

use self::follow::{Ending, Until};
use self::render::Output;

/// Commands that talk to a running den.
#[derive(Debug, Subcommand)]
pub(crate) enum RemoteCommand {
    /// Sign in to a den with an API token (Settings → API tokens) or your password (den then
    /// makes a token for this terminal), kept in your config directory (mode 0600).
    Login(login::LoginArgs),
    /// Forget the stored sign-in.
    Logout,
    /// List your sessions on the den you signed in to.
    Sessions {
        /// One JSON array of sessions instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a session's transcript so far.
    Show {
        id: String,
        /// The events as JSON lines (`SequencedEvent`).
        #[arg(long)]
        json: bool,
    },
    /// Start a session on a repository with a prompt and stream its turn.
    Run(RunArgs),
    /// Follow a session's events (its history, then live) until its turn ends.
    Attach(AttachArgs),
    /// Send a prompt to a session and stream its turn.
    Prompt(PromptArgs),
    /// Stop a session's running turn.
    Stop { id: String },
    /// Snapshot a session and stop its sandbox.
    Pause { id: String },
    /// Start a paused session's sandbox again.
    Resume { id: String },
    /// Delete a session, its sandbox and its snapshots.
    Rm { id: String },
    /// Show what a session changed (a unified diff).
    Diff {
        id: String,
        /// Only the changed files and their line counts.
        #[arg(long)]
        stat: bool,
        /// The diff as JSON (`SessionDiff`).
        #[arg(long, conflicts_with = "stat")]
        json: bool,
    },
    /// Commit a session's work and push its branch to the repository's remote.
    Push {
        id: String,
        /// The commit message for uncommitted work (default: the session's title).
        #[arg(long, short)]
        message: Option<String>,
    },
    /// Open a pull request from a session's pushed branch (GitHub); prints its address.
    Pr {
        id: String,
        /// Default: the session's title.
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        body: Option<String>,
        /// Open it as a draft.
        #[arg(long)]
        draft: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct FollowArgs {
    /// Print the events as JSON lines (`SequencedEvent`) instead of text.
    #[arg(long)]
    json: bool,
    /// On Ctrl-C, also stop the running turn (without it, Ctrl-C only stops following).
    #[arg(long)]
    stop: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The repository: an https git URL, or a local path the den's admin allowed.
    #[arg(long)]
    repo: String,
    /// The branch to start from (default: the repository's default branch).
    #[arg(long)]
    branch: Option<String>,
    /// The model, as `provider/model` (default: den's default model).
    #[arg(long)]
    model: Option<String>,
    /// The session's title (default: from the prompt).
    #[arg(long)]
    title: Option<String>,
    /// Print the new session's id and return at once, without following the turn.
    #[arg(long)]
    detach: bool,
    #[command(flatten)]
    follow: FollowArgs,
    /// What the agent should do.
    prompt: String,
}

#[derive(Debug, Args)]
pub(crate) struct AttachArgs {
    id: String,
    /// Start after this event (default: the whole history).
    #[arg(long, default_value_t = 0)]
    after: i64,
    /// Keep following after the turn ends, until Ctrl-C or the session is deleted.
    #[arg(long)]
    forever: bool,
    #[command(flatten)]
    follow: FollowArgs,
}

#[derive(Debug, Args)]
pub(crate) struct PromptArgs {
    id: String,
    /// Switch the session to this model (`provider/model`) from this prompt on.
    #[arg(long)]
    model: Option<String>,
    /// Return once den accepted the prompt, without following its turn.
    #[arg(long)]
    detach: bool,
    #[command(flatten)]
    follow: FollowArgs,
    text: String,
}

/// Runs a terminal command on its own runtime: it needs none of den's server configuration.
pub(crate) fn main(command: RemoteCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("den: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(command)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("den: {}", explain(&err));
            ExitCode::from(2)
        }
    }
}

/// The sentence for a failed command; a refused token says how to sign in again.
fn explain(err: &anyhow::Error) -> String {
    match err.downcast_ref::<ClientError>() {
        Some(ClientError::Unauthorized { url, .. }) => format!(
            "den at {url} did not accept your token (it was revoked or has expired): \
             sign in again with `den login {url} --token-stdin`"
        ),
        _ => format!("{err:#}"),
    }
}

async fn run(command: RemoteCommand) -> anyhow::Result<ExitCode> {
    let command = match command {
        RemoteCommand::Login(args) => return login::login(args).await,
        RemoteCommand::Logout => return login::logout(),
        other => other,
    };
    let client = login::signed_in_client()?;
    match command {
        RemoteCommand::Login(_) | RemoteCommand::Logout => unreachable!("handled above"),
        RemoteCommand::Sessions { json } => {
            let sessions = client.sessions().await?;
            Output::new(json).sessions(&sessions)?;
            Ok(ExitCode::SUCCESS)
        }
        RemoteCommand::Run(args) => run_session(&client, args).await,
        RemoteCommand::Attach(args) => {
            let id = session_id(&args.id)?;
            let until = if args.forever {
                Until::Forever
            } else {
                Until::Settled
            };
            let stream = client
                .events(id, args.after)
                .await
                .map_err(|err| not_found(err, id))?;
            let ending = follow::follow(&client, id, stream, until, &args.follow).await?;
            Ok(finish(&client, id, ending, &args.follow, false).await)
        }
        RemoteCommand::Show { id, json } => {
            let id = session_id(&id)?;
            let stream = client
                .events(id, 0)
                .await
                .map_err(|err| not_found(err, id))?;
            let args = FollowArgs { json, stop: false };
            follow::follow(&client, id, stream, Until::CaughtUp, &args).await?;
            Ok(ExitCode::SUCCESS)
        }
        RemoteCommand::Prompt(args) => prompt(&client, args).await,
        RemoteCommand::Stop { id } => {
            simple(&client, &id, "stopped the running turn", |c, id| {
                Box::pin(async move { c.abort(id).await })
            })
            .await
        }
        RemoteCommand::Pause { id } => {
            simple(&client, &id, "paused", |c, id| {
                Box::pin(async move { c.pause(id).await })
            })
            .await
        }
        RemoteCommand::Resume { id } => {
            simple(&client, &id, "resuming", |c, id| {
                Box::pin(async move { c.resume(id).await })
            })
            .await
        }
        RemoteCommand::Rm { id } => {
            simple(&client, &id, "deleted", |c, id| {
                Box::pin(async move { c.delete(id).await })
            })
            .await
        }
        RemoteCommand::Diff { id, stat, json } => {
            let id = session_id(&id)?;
            let diff = client.diff(id).await.map_err(|err| not_found(err, id))?;
            Output::new(json).diff(&diff, stat)?;
            Ok(ExitCode::SUCCESS)
        }
        RemoteCommand::Pr {
            id,
            title,
            body,
            draft,
        } => {
            let id = session_id(&id)?;
            let pull = client
                .open_pull_request(id, &PullRequestRequest { title, body, draft })
                .await
                .map_err(|err| not_found(err, id))?;
            let what = if pull.created {
                "opened"
            } else {
                "already open:"
            };
            println!("{what} pull request #{} {}", pull.number, pull.url);
            Ok(ExitCode::SUCCESS)
        }
        RemoteCommand::Push { id, message } => {
            let id = session_id(&id)?;
            let pushed = client
                .push(id, &PushRequest { message })
                .await
                .map_err(|err| not_found(err, id))?;
            println!(
                "pushed {} at {}{}",
                pushed.branch,
                pushed.commit,
                if pushed.committed {
                    " (committed the uncommitted work first)"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

type Call<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), ClientError>> + 'a>>;

async fn simple<'a>(
    client: &'a Client,
    id: &str,
    done: &str,
    call: impl FnOnce(&'a Client, Uuid) -> Call<'a>,
) -> anyhow::Result<ExitCode> {
    let id = session_id(id)?;
    call(client, id).await.map_err(|err| not_found(err, id))?;
    println!("{id}: {done}");
    Ok(ExitCode::SUCCESS)
}

async fn run_session(client: &Client, args: RunArgs) -> anyhow::Result<ExitCode> {
    let repository = repository_argument(&args.repo);
    let session = client
        .create_session(&CreateSessionRequest {
            repository,
            title: args.title,
            model: args.model,
            base_branch: args.branch,
            prompt: Some(args.prompt),
            approval_mode: None,
        })
        .await?;
    if args.detach {
        if args.follow.json {
            println!("{}", serde_json::to_string(&session)?);
        } else {
            println!("{}", session.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    // On standard error, so `--json` output stays events only; scripts find the id here.
    eprintln!(
        "session {} on {} ({}), branch {}",
        session.id, session.repository, session.model, session.work_branch
    );
    let stream = client.events(session.id, 0).await?;
    let ending = follow::follow(client, session.id, stream, Until::FirstTurn, &args.follow).await?;
    Ok(finish(client, session.id, ending, &args.follow, true).await)
}

async fn prompt(client: &Client, args: PromptArgs) -> anyhow::Result<ExitCode> {
    let id = session_id(&args.id)?;
    // Subscribe first and read to the live edge, so the turn's first events cannot be missed.
    let stream = if args.detach {
        None
    } else {
        let mut stream = client
            .events(id, 0)
            .await
            .map_err(|err| not_found(err, id))?;
        follow::catch_up(&mut stream).await?;
        Some(stream)
    };
    let accepted = client
        .prompt(
            id,
            &PromptRequest {
                text: args.text,
                model: args.model,
            },
        )
        .await
        .map_err(|err| not_found(err, id))?;
    let Some(stream) = stream else {
        if args.follow.json {
            println!("{}", serde_json::to_string(&accepted)?);
        } else {
            println!(
                "{}{}",
                accepted.id,
                if accepted.queued { " (queued)" } else { "" }
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    let until = Until::Turn(accepted.id);
    let ending = follow::follow(client, id, stream, until, &args.follow).await?;
    Ok(finish(client, id, ending, &args.follow, true).await)
}

/// Reports how following ended; after a turn, the summary of what the session changed.
async fn finish(
    client: &Client,
    id: Uuid,
    ending: Ending,
    args: &FollowArgs,
    show_diff: bool,
) -> ExitCode {
    let output = Output::new(args.json);
    let code = output.ending(&ending);
    if show_diff && !args.json && matches!(ending, Ending::Turn { .. }) {
        match client.diff(id).await {
            Ok(diff) => output.diff_summary(&diff),
            Err(err) => eprintln!("den: cannot read the session's changes: {err}"),
        }
    }
    code
}

/// A session id as `den sessions` prints it.
fn session_id(text: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(text.trim()).with_context(|| {
        format!("{text:?} is not a session id (a UUID, as `den sessions` lists them)")
    })
}

/// A 404 on a session names the session.
fn not_found(err: ClientError, id: Uuid) -> anyhow::Error {
    match err {
        ClientError::NotFound { .. } => {
            anyhow::anyhow!("no session {id} on this den (see `den sessions` for yours)")
        }
        other => other.into(),
    }
}

/// A local path is sent absolute (den resolves it on its own machine, where relative paths
/// mean nothing); anything with a scheme or `host:path` form goes as given.
fn repository_argument(repo: &str) -> String {
    let looks_remote = repo.contains("://") || repo.starts_with("git@");
    if looks_remote {
        return repo.to_owned();
    }
    match std::path::absolute(repo) {
        Ok(path) => path.display().to_string(),
        Err(_) => repo.to_owned(),
    }
}
