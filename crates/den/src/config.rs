//! den's configuration: defaults → TOML file (`--config`) → `DEN_*` environment → flags.
//!
//! Every key is documented in docs/config.md. Nested keys use `__` in the environment:
//! `[github] client_id` is `DEN_GITHUB__CLIENT_ID`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// Environment variables with the `DEN_` prefix that are not configuration keys.
const NOT_CONFIG: &[&str] = &[
    "DEN_MASTER_KEY",
    "DEN_LOG",
    "DEN_TEST_DATABASE_URL",
    "DEN_TEST_REQUIRE_POSTGRES",
    "DEN_OPENCODE_BIN",
    // The terminal client's (`den run`, `den attach`, …).
    "DEN_URL",
    "DEN_TOKEN",
];

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    pub(crate) data_dir: PathBuf,
    pub(crate) listen: SocketAddr,
    /// Defaults to SQLite in the data dir.
    pub(crate) database_url: Option<String>,
    /// Defaults to `http://<listen>`.
    pub(crate) public_url: Option<String>,
    pub(crate) log_format: LogFormat,
    /// Where den's tools (the pinned OpenCode) are installed.
    pub(crate) tools_dir: PathBuf,
    pub(crate) repositories: RepositorySettings,
    pub(crate) auth: AuthSettings,
    pub(crate) live: LiveSettings,
    pub(crate) github: Option<GithubSettings>,
    pub(crate) sandbox: SandboxSettings,
    /// Model providers OpenCode reaches through den's gateway.
    pub(crate) providers: Vec<ProviderSettings>,
    pub(crate) models: ModelSettings,
    pub(crate) snapshots: SnapshotSettings,
    pub(crate) cluster: ClusterSettings,
}

/// Where session snapshots are kept: the data dir (default), or S3-compatible object storage
/// for several nodes. Object storage credentials come from the `AWS_*` environment only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SnapshotSettings {
    /// `s3://bucket[/prefix]`; unset: `<data_dir>/snapshots`.
    #[serde(default)]
    pub(crate) url: Option<String>,
    /// Unreferenced objects younger than this are kept by the sweeper (an upload about to be
    /// recorded).
    pub(crate) orphan_grace_minutes: u64,
    /// How often the sweeper runs (also once at start).
    pub(crate) sweep_interval_minutes: u64,
    /// Multipart part size; at least 5.
    pub(crate) part_size_mb: usize,
}

/// Several den nodes on one PostgreSQL database (docs/config.md, "[cluster]").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterSettings {
    /// How long a node owns a session without renewing (renewed every third of it); another
    /// node takes a dead node's sessions over after this long.
    pub(crate) lease_ttl_ms: u64,
    /// Where the other nodes reach this one (forwarded commands); defaults to
    /// `http://<listen>`, which must then be an address they can reach.
    pub(crate) internal_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelSettings {
    /// Whether people may add endpoints on loopback, private or link-local addresses (a model
    /// server on the den host or the local network).
    pub(crate) allow_private_endpoints: bool,
    /// Each person's model spending cap per calendar month (UTC), in US dollars.
    #[serde(default)]
    pub(crate) monthly_budget_usd: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SandboxSettings {
    /// Run sessions in sandboxes. Without, den serves records only (no agent).
    pub(crate) enabled: bool,
    /// Where sandboxes live; defaults to `<data_dir>/sandboxes`.
    pub(crate) root_dir: Option<PathBuf>,
    /// Names this den's host state (cgroups, firewall table); two dens on one host need two.
    pub(crate) instance: String,
    /// Sandboxes run as host uids from here on (10,000 of them), one each.
    pub(crate) uid_base: u32,
    pub(crate) max_concurrent_starts: usize,
    pub(crate) cpus: f64,
    pub(crate) memory_mb: u64,
    pub(crate) pids: u32,
    pub(crate) lifetime_minutes: u64,
    pub(crate) idle_timeout_minutes: u64,
    /// A turn on which the agent shows no activity this long fails.
    pub(crate) turn_inactivity_minutes: u64,
    /// A permission ask or question nobody answers this long is closed as refused.
    pub(crate) ask_timeout_seconds: u64,
    pub(crate) network: NetworkSetting,
    /// Sandboxes with a booted agent waiting for new sessions (0: none).
    pub(crate) warm_pool: usize,
    /// Turn off the agent's features a sandboxed session does not use (its file watcher,
    /// language server downloads, default plugins, ...).
    pub(crate) lean_agent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum NetworkSetting {
    Internet,
    None,
}

impl NetworkSetting {
    pub(crate) fn policy(self) -> den_sandbox::NetworkPolicy {
        match self {
            Self::Internet => den_sandbox::NetworkPolicy::Internet,
            Self::None => den_sandbox::NetworkPolicy::None,
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderSettings {
    pub(crate) name: String,
    /// Required for a provider of the admin's own; den's built-in providers (`anthropic`,
    /// `openai`, `opencode`) keep theirs.
    #[serde(default)]
    pub(crate) kind: Option<ProviderKindSetting>,
    /// Required for a provider of the admin's own; overrides a built-in provider's upstream.
    #[serde(default)]
    pub(crate) base_url: Option<String>,
    #[serde(default)]
    pub(crate) models: Vec<String>,
    /// The name of an environment variable holding the provider's API key.
    #[serde(default)]
    pub(crate) api_key_env: Option<String>,
    /// Whether everyone may use this key (admins always may); a person's own key wins.
    #[serde(default = "shared_by_default")]
    pub(crate) shared: bool,
}

fn shared_by_default() -> bool {
    true
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ProviderKindSetting {
    OpenaiCompatible,
    Anthropic,
    /// OpenAI's Responses API.
    Openai,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RepositorySettings {
    /// Local directories whose git repositories users may pick.
    pub(crate) local_roots: Vec<PathBuf>,
    /// Hosts (`host` or `host:port`) repositories may come from although the sandbox network
    /// rules forbid them (an internal git server on a private address).
    pub(crate) allowed_hosts: Vec<den_sandbox::egress::AllowedHost>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LiveSettings {
    /// A WebSocket client that takes longer than this to accept a message is closed with a
    /// resumable close (4008).
    pub(crate) slow_client_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthSettings {
    pub(crate) session_ttl_hours: u64,
    pub(crate) login_link_minutes: u64,
    pub(crate) max_failed_logins_per_user: u32,
    pub(crate) max_failed_logins_per_address: u32,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GithubSettings {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    #[serde(default = "github_authorize_url")]
    pub(crate) authorize_url: String,
    #[serde(default = "github_token_url")]
    pub(crate) token_url: String,
    #[serde(default = "github_api_url")]
    pub(crate) api_url: String,
    #[serde(default = "github_scopes")]
    pub(crate) scopes: Vec<String>,
    #[serde(default)]
    pub(crate) allowed_logins: Vec<String>,
}

impl std::fmt::Debug for GithubSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubSettings")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

fn github_authorize_url() -> String {
    "https://github.com/login/oauth/authorize".to_owned()
}
fn github_token_url() -> String {
    "https://github.com/login/oauth/access_token".to_owned()
}
fn github_api_url() -> String {
    "https://api.github.com".to_owned()
}
fn github_scopes() -> Vec<String> {
    vec!["read:user".to_owned(), "repo".to_owned()]
}

/// Values given as command-line flags (the last layer).
#[derive(Debug, Default, Clone, clap::Args)]
pub(crate) struct Overrides {
    /// Config file (TOML); see docs/config.md.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Where den keeps its database, keys and sandboxes [env: DEN_DATA_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Address to listen on [env: DEN_LISTEN] (default 127.0.0.1:8787).
    #[arg(long, global = true, value_name = "ADDR")]
    pub(crate) listen: Option<String>,
    /// Database URL, sqlite:… or postgres://… [env: DEN_DATABASE_URL].
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) database_url: Option<String>,
    /// Log format [env: DEN_LOG_FORMAT].
    #[arg(long, global = true, value_enum)]
    pub(crate) log_format: Option<LogFormat>,
}

impl Settings {
    /// Loads the layers.
    pub(crate) fn load(overrides: &Overrides) -> anyhow::Result<Self> {
        let default_data_dir = default_data_dir();
        let mut builder = config::Config::builder()
            .set_default("data_dir", default_data_dir.display().to_string())?
            .set_default("listen", "127.0.0.1:8787")?
            .set_default("log_format", "human")?
            .set_default("tools_dir", default_tools_dir().display().to_string())?
            .set_default("repositories.local_roots", Vec::<String>::new())?
            .set_default("repositories.allowed_hosts", Vec::<String>::new())?
            .set_default("auth.session_ttl_hours", 24 * 30)?
            .set_default("auth.login_link_minutes", 15)?
            .set_default("auth.max_failed_logins_per_user", 5)?
            .set_default("auth.max_failed_logins_per_address", 20)?
            .set_default("live.slow_client_ms", 10_000)?
            .set_default("sandbox.enabled", true)?
            .set_default("sandbox.instance", "den")?
            .set_default("sandbox.uid_base", 2_000_000)?
            .set_default("sandbox.max_concurrent_starts", 2)?
            .set_default("sandbox.cpus", 1.0)?
            .set_default("sandbox.memory_mb", 2048)?
            .set_default("sandbox.pids", 512)?
            .set_default("sandbox.lifetime_minutes", 60)?
            .set_default("sandbox.idle_timeout_minutes", 10)?
            .set_default("sandbox.turn_inactivity_minutes", 30)?
            .set_default("sandbox.ask_timeout_seconds", 1800)?
            .set_default("sandbox.network", "internet")?
            .set_default("sandbox.warm_pool", 2)?
            .set_default("sandbox.lean_agent", true)?
            .set_default("providers", Vec::<String>::new())?
            .set_default("models.allow_private_endpoints", false)?
            .set_default("snapshots.orphan_grace_minutes", 60)?
            .set_default("snapshots.sweep_interval_minutes", 60)?
            .set_default("snapshots.part_size_mb", 8)?
            .set_default("cluster.lease_ttl_ms", 15_000)?;
        if let Some(file) = &overrides.config {
            anyhow::ensure!(
                file.exists(),
                "config file {} does not exist",
                file.display()
            );
            builder = builder
                .add_source(config::File::from(file.as_path()).format(config::FileFormat::Toml));
        }
        let environment: config::Map<String, String> = std::env::vars()
            .filter(|(key, _)| key.starts_with("DEN_") && !NOT_CONFIG.contains(&key.as_str()))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("DEN")
                .prefix_separator("_")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("repositories.local_roots")
                .with_list_parse_key("repositories.allowed_hosts")
                .with_list_parse_key("github.scopes")
                .with_list_parse_key("github.allowed_logins")
                .try_parsing(true)
                .source(Some(environment)),
        );
        if let Some(dir) = &overrides.data_dir {
            builder = builder.set_override("data_dir", dir.display().to_string())?;
        }
        if let Some(listen) = &overrides.listen {
            builder = builder.set_override("listen", listen.as_str())?;
        }
        if let Some(url) = &overrides.database_url {
            builder = builder.set_override("database_url", url.as_str())?;
        }
        if let Some(format) = overrides.log_format {
            builder = builder.set_override(
                "log_format",
                if format == LogFormat::Json {
                    "json"
                } else {
                    "human"
                },
            )?;
        }
        let settings: Self = builder
            .build()
            .context("reading the configuration")?
            .try_deserialize()
            .context("invalid configuration (see docs/config.md)")?;
        settings.check_ranges()?;
        Ok(settings)
    }

    /// Refuses numbers den would multiply into an overflow, divide by, or that leave it unable
    /// to work (no sandbox could ever start), naming the key and its range.
    fn check_ranges(&self) -> anyhow::Result<()> {
        const YEAR_MINUTES: u64 = 365 * 24 * 60;
        let checks: [(&str, u64, std::ops::RangeInclusive<u64>); 15] = [
            (
                "auth.session_ttl_hours",
                self.auth.session_ttl_hours,
                1..=10 * 365 * 24,
            ),
            (
                "auth.login_link_minutes",
                self.auth.login_link_minutes,
                1..=7 * 24 * 60,
            ),
            (
                "live.slow_client_ms",
                self.live.slow_client_ms,
                1..=3_600_000,
            ),
            (
                "sandbox.lifetime_minutes",
                self.sandbox.lifetime_minutes,
                1..=YEAR_MINUTES,
            ),
            (
                "sandbox.idle_timeout_minutes",
                self.sandbox.idle_timeout_minutes,
                1..=YEAR_MINUTES,
            ),
            (
                "sandbox.turn_inactivity_minutes",
                self.sandbox.turn_inactivity_minutes,
                1..=YEAR_MINUTES,
            ),
            (
                "sandbox.ask_timeout_seconds",
                self.sandbox.ask_timeout_seconds,
                1..=YEAR_MINUTES * 60,
            ),
            ("sandbox.memory_mb", self.sandbox.memory_mb, 64..=1 << 30),
            ("sandbox.pids", u64::from(self.sandbox.pids), 16..=4_194_304),
            (
                "sandbox.max_concurrent_starts",
                self.sandbox.max_concurrent_starts as u64,
                1..=1024,
            ),
            (
                "sandbox.uid_base",
                u64::from(self.sandbox.uid_base),
                1..=u64::from(u32::MAX - 100_000),
            ),
            (
                "snapshots.orphan_grace_minutes",
                self.snapshots.orphan_grace_minutes,
                0..=YEAR_MINUTES,
            ),
            (
                "snapshots.sweep_interval_minutes",
                self.snapshots.sweep_interval_minutes,
                1..=YEAR_MINUTES,
            ),
            // S3's part sizes: 5 MiB to 5 GiB.
            (
                "snapshots.part_size_mb",
                self.snapshots.part_size_mb as u64,
                5..=5120,
            ),
            // Renewed every third of it: shorter than this, a node would spend its time
            // renewing and lose sessions to a slow database round trip.
            (
                "cluster.lease_ttl_ms",
                self.cluster.lease_ttl_ms,
                300..=3_600_000,
            ),
        ];
        for (key, value, range) in checks {
            anyhow::ensure!(
                range.contains(&value),
                "{key} is {value}; it must be {} to {}",
                range.start(),
                range.end()
            );
        }
        let cpus = self.sandbox.cpus;
        anyhow::ensure!(
            cpus.is_finite() && (0.01..=1024.0).contains(&cpus),
            "sandbox.cpus is {cpus}; it must be 0.01 to 1024"
        );
        Ok(())
    }

    pub(crate) fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", self.data_dir.join("den.db").display()))
    }

    pub(crate) fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// The rules a repository's host must pass: the sandbox network policy and the allow-list.
    pub(crate) fn repository_egress(&self) -> den_sandbox::egress::EgressPolicy {
        den_sandbox::egress::EgressPolicy {
            network: self.sandbox.network.policy(),
            allowed_hosts: self.repositories.allowed_hosts.clone(),
        }
    }

    pub(crate) fn master_key_file(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map_or_else(|| home().join(".local/share"), PathBuf::from)
        .join("den")
}

/// Where `scripts/install-opencode` puts the pinned OpenCode by default.
fn default_tools_dir() -> PathBuf {
    home().join(".cache/den/tools")
}

/// Creates the data dir (and parents) if missing, with mode 0711: others cannot list it, but
/// sandboxes (which run as other uids) can traverse it to the directories den gives them. The
/// files that matter (database, master key) are themselves private (0600).
pub(crate) fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
        .with_context(|| format!("setting the mode of {}", dir.display()))
}

#[cfg(test)]
#[path = "config_fuzz.rs"]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    fn load_file(text: &str) -> anyhow::Result<Settings> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("den.toml");
        std::fs::write(&file, text)?;
        Settings::load(&Overrides {
            config: Some(file),
            ..Overrides::default()
        })
    }

    #[test]
    fn repository_allow_list_entries_are_parsed_or_refused() {
        let settings = load_file(
            "[repositories]\nlocal_roots = []\nallowed_hosts = [\"Git.Internal:8443\", \"[fd00::1]\"]\n",
        )
        .unwrap();
        let egress = settings.repository_egress();
        assert!(egress.is_allow_listed("git.internal", 8443));
        assert!(!egress.is_allow_listed("git.internal", 443));
        assert!(egress.is_allow_listed("[fd00::1]", 22));
        let err =
            load_file("[repositories]\nlocal_roots = []\nallowed_hosts = [\"a b\"]\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("not `host` or `host:port`"),
            "{err:#}"
        );
    }

    #[test]
    fn snapshots_default_to_local_disk_and_take_an_s3_url() {
        let settings = load_file("").unwrap();
        assert_eq!(settings.snapshots.url, None);
        assert_eq!(settings.snapshots.orphan_grace_minutes, 60);
        let settings =
            load_file("[snapshots]\nurl = \"s3://bucket/den\"\npart_size_mb = 16\n").unwrap();
        assert_eq!(settings.snapshots.url.as_deref(), Some("s3://bucket/den"));
        assert_eq!(settings.snapshots.part_size_mb, 16);
        let err = load_file("[snapshots]\nsecret_access_key = \"x\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
        let err = load_file("[snapshots]\npart_size_mb = 1\n").unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "snapshots.part_size_mb is 1; it must be 5 to 5120"
        );
        let err = load_file("[snapshots]\norphan_grace_minutes = 99999999999999999\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("snapshots.orphan_grace_minutes"),
            "{err:#}"
        );
    }

    #[tokio::test]
    async fn a_bad_snapshots_url_or_part_size_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        for (text, expected) in [
            (
                "[snapshots]\nurl = \"https://bucket/x\"\n",
                "not an s3://bucket",
            ),
            (
                "[snapshots]\nurl = \"s3://k:hunter22@bucket/x\"\n",
                "not an s3://bucket",
            ),
        ] {
            let mut settings = load_file(text).unwrap();
            settings.data_dir = dir.path().to_owned();
            let err = crate::cli::snapshots::artifact_store(&settings, dir.path())
                .err()
                .expect("refused");
            let message = format!("{err:#}");
            assert!(message.contains(expected), "{message}");
            assert!(!message.contains("hunter22"), "{message}");
        }
    }

    /// Found by `config_fuzz`: an hour count this large overflowed into a panic at start.
    #[test]
    fn numbers_den_cannot_use_are_refused_with_the_key_and_its_range() {
        for (text, expected) in [
            (
                "[auth]\nsession_ttl_hours = 5124095576030432\n",
                "auth.session_ttl_hours is 5124095576030432; it must be 1 to 87600",
            ),
            (
                "[sandbox]\nmax_concurrent_starts = 0\n",
                "sandbox.max_concurrent_starts is 0; it must be 1 to 1024",
            ),
            (
                "[sandbox]\ncpus = nan\n",
                "sandbox.cpus is NaN; it must be 0.01 to 1024",
            ),
            (
                "[cluster]\nlease_ttl_ms = 0\n",
                "cluster.lease_ttl_ms is 0; it must be 300 to 3600000",
            ),
        ] {
            let err = load_file(text).unwrap_err();
            assert_eq!(format!("{err:#}"), expected);
        }
        // The defaults pass.
        load_file("").unwrap();
    }
}
