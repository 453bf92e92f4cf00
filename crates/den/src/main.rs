//! The `den` binary: configuration, logging, and the commands (`serve`, `user`, `keys`,
//! `migrate`, `doctor`, `bench`), and the terminal client's (`login`, `run`, `attach`, …, in
//! `remote`). Everything it does is wired from the library crates.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "den is a command-line program: its commands print their results"
)]

mod bench;
mod cli;
mod config;
mod keys;
mod remote;

use clap::{Parser, Subcommand};

use crate::config::{LogFormat, Overrides, Settings};

/// den: a self-hosted AI coding agent platform.
#[derive(Debug, Parser)]
#[command(name = "den", version, about)]
struct Cli {
    #[command(flatten)]
    overrides: Overrides,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Manage local accounts.
    #[command(subcommand)]
    User(cli::user::UserCommand),
    /// Manage the master key that seals secrets at rest.
    #[command(subcommand)]
    Keys(cli::keys::KeysCommand),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Check that this host has what den needs, and say how to fix what is missing.
    Doctor(cli::doctor::DoctorArgs),
    /// Measure den and print a table.
    Bench(bench::BenchArgs),
    /// Print the OpenAPI document of den's HTTP API (the web client's types come from it).
    Openapi,
    #[command(flatten)]
    Remote(remote::RemoteCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The terminal client talks to a den, maybe on another machine: it reads none of this
    // den's configuration (its `DEN_URL`/`DEN_TOKEN` are not configuration keys).
    let command = match cli.command {
        Command::Remote(command) => return remote::main(command),
        command => command,
    };
    let settings = match Settings::load(&cli.overrides) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("den: {err:#}");
            return std::process::ExitCode::from(2);
        }
    };
    init_tracing(settings.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("den: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Serve => cli::serve::run(settings).await,
            Command::User(command) => cli::user::run(settings, command).await,
            Command::Keys(command) => cli::keys::run(settings, command).await,
            Command::Migrate => cli::migrate(settings).await,
            Command::Doctor(args) => cli::doctor::run(settings, args).await,
            Command::Bench(args) => bench::run(settings, args).await,
            Command::Remote(_) => unreachable!("the terminal client returned above"),
            Command::Openapi => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(den_server::routes::openapi())?
                );
                Ok(std::process::ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("den: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
