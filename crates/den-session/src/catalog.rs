//! den's model catalog: the providers and models a session may use, and where each key comes
//! from.
//!
//! Three sources, merged in this order:
//! 1. den's own declaration ([`builtin_providers`]): Anthropic, OpenAI and OpenCode Zen with
//!    the original product's models, declared here (ids, context, prices) rather than taken
//!    from OpenCode's bundled catalog, which in 1.18.33 lacks `gpt-5.1-codex-max` and prices
//!    `gpt-5-nano`.
//! 2. The admin's `[[providers]]`: an entry named like a built-in provider overrides its
//!    upstream URL and adds a key (shared with everyone or not); any other name is a provider
//!    of its own.
//! 3. A person's own OpenAI-compatible endpoints (per user; the provider id is `my-<name>`).
//!
//! Keys are picked at request time ([`Catalog::key_for`]): the person's own key, else the
//! admin's key when shared (or the person is an admin), else the anonymous `public` key for
//! Zen's free models, else none: the model is locked.

use den_store::{Store, UserRecord};
use zeroize::Zeroizing;

use crate::Result;

/// The provider id prefix of a person's own endpoints.
pub const ENDPOINT_PREFIX: &str = "my-";

pub use den_protocol::sessions::DEFAULT_MODEL;

/// The wire format a provider speaks: which SDK OpenCode uses, which paths it calls, how the
/// key is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Anthropic Messages (`@ai-sdk/anthropic`): `POST messages`, `x-api-key`.
    Anthropic,
    /// OpenAI's Responses API (`@ai-sdk/openai`): `POST responses`, `Bearer`.
    OpenAi,
    /// OpenCode Zen: chat completions, Responses or Messages depending on the model family.
    Zen,
    /// OpenAI chat completions (`@ai-sdk/openai-compatible`): `POST chat/completions`, `Bearer`.
    OpenAiCompatible,
}

impl ProviderKind {
    /// The AI SDK package to name in OpenCode's config; `None` keeps OpenCode's own loader for
    /// the provider id (OpenCode picks the SDK per Zen model).
    pub(crate) fn npm_package(self) -> Option<&'static str> {
        match self {
            Self::Anthropic => Some("@ai-sdk/anthropic"),
            Self::OpenAi => Some("@ai-sdk/openai"),
            Self::Zen => None,
            Self::OpenAiCompatible => Some("@ai-sdk/openai-compatible"),
        }
    }

    /// Whether OpenCode's SDK for this provider calls `path` (relative to the base URL); the
    /// gateway refuses every other path.
    pub fn allows_path(self, path: &str) -> bool {
        match self {
            Self::Anthropic => path == "messages",
            Self::OpenAi => path == "responses",
            Self::Zen => matches!(path, "chat/completions" | "responses" | "messages"),
            Self::OpenAiCompatible => path == "chat/completions",
        }
    }

    /// Whether the key goes in `x-api-key` (Anthropic's way) rather than `Authorization:
    /// Bearer` for a request to `path`.
    pub fn key_in_x_api_key(self, path: &str) -> bool {
        match self {
            Self::Anthropic => true,
            Self::Zen => path == "messages",
            Self::OpenAi | Self::OpenAiCompatible => false,
        }
    }
}

/// Prices in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
}

/// A model den offers.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub id: String,
    pub name: String,
    /// Context window, in tokens, where known.
    pub context: Option<u64>,
    /// Longest output, in tokens, where known.
    pub output: Option<u64>,
    pub price: Option<Price>,
}

impl ModelSpec {
    fn new(id: &str, name: &str, context: u64, output: u64, price: Price) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            context: Some(context),
            output: Some(output),
            price: Some(price),
        }
    }

    /// A model known only by its id (an admin's or a person's own).
    pub fn named(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: id.to_owned(),
            context: None,
            output: None,
            price: None,
        }
    }

    /// Free models need no key on Zen.
    pub fn is_free(&self) -> bool {
        self.price
            .is_some_and(|p| p.input == 0.0 && p.output == 0.0)
    }
}

/// A provider den forwards to: den's own, or one an admin configured.
#[derive(Clone)]
pub struct ProviderConfig {
    /// The provider id OpenCode knows it by (`anthropic`, `openai`, `opencode`, or the admin's
    /// name).
    pub name: String,
    pub display_name: String,
    pub kind: ProviderKind,
    /// The upstream base URL, e.g. `https://api.anthropic.com/v1`.
    pub base_url: String,
    pub models: Vec<ModelSpec>,
    /// The admin's key, when configured; never given to a sandbox.
    pub api_key: Option<String>,
    /// Whether everyone may use the admin's key (admins always may).
    pub shared: bool,
    /// Whether a person may bring their own key for it (den's built-in providers).
    pub personal_keys: bool,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("models", &self.models.len())
            .field("has_api_key", &self.api_key.is_some())
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl ProviderConfig {
    pub fn model(&self, id: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|model| model.id == id)
    }
}

/// An admin's `[[providers]]` entry, as the binary read it.
#[derive(Clone)]
pub struct AdminProvider {
    pub name: String,
    /// Required for a new provider; a built-in provider keeps its own.
    pub kind: Option<ProviderKind>,
    /// Required for a new provider; overrides a built-in provider's upstream.
    pub base_url: Option<String>,
    pub models: Vec<String>,
    pub api_key: Option<String>,
    pub shared: bool,
}

fn price(input: f64, output: f64, cache_read: f64, cache_write: Option<f64>) -> Price {
    Price {
        input,
        output,
        cache_read: Some(cache_read),
        cache_write,
    }
}

/// den's own declaration: the original product's models that exist, as the research on
/// OpenCode 1.18.33 found them, with their prices per million tokens.
pub fn builtin_providers() -> Vec<ProviderConfig> {
    let free = Price {
        input: 0.0,
        output: 0.0,
        cache_read: None,
        cache_write: None,
    };
    vec![
        ProviderConfig {
            name: "opencode".to_owned(),
            display_name: "OpenCode Zen".to_owned(),
            kind: ProviderKind::Zen,
            base_url: "https://opencode.ai/zen/v1".to_owned(),
            models: vec![
                ModelSpec {
                    name: "Big Pickle (free)".to_owned(),
                    price: Some(free),
                    ..ModelSpec::named("big-pickle")
                },
                ModelSpec::new(
                    "gpt-5-nano",
                    "GPT-5 Nano",
                    400_000,
                    128_000,
                    price(0.05, 0.4, 0.005, None),
                ),
            ],
            api_key: None,
            shared: false,
            personal_keys: true,
        },
        ProviderConfig {
            name: "anthropic".to_owned(),
            display_name: "Anthropic".to_owned(),
            kind: ProviderKind::Anthropic,
            base_url: "https://api.anthropic.com/v1".to_owned(),
            models: vec![
                ModelSpec::new(
                    "claude-sonnet-4-5-20250929",
                    "Claude Sonnet 4.5",
                    1_000_000,
                    64_000,
                    price(3.0, 15.0, 0.3, Some(3.75)),
                ),
                ModelSpec::new(
                    "claude-opus-4-5-20251101",
                    "Claude Opus 4.5",
                    200_000,
                    64_000,
                    price(5.0, 25.0, 0.5, Some(6.25)),
                ),
            ],
            api_key: None,
            shared: false,
            personal_keys: true,
        },
        ProviderConfig {
            name: "openai".to_owned(),
            display_name: "OpenAI".to_owned(),
            kind: ProviderKind::OpenAi,
            base_url: "https://api.openai.com/v1".to_owned(),
            models: vec![
                ModelSpec::new(
                    "gpt-5.2",
                    "GPT-5.2",
                    400_000,
                    128_000,
                    price(1.75, 14.0, 0.175, None),
                ),
                ModelSpec::new(
                    "gpt-5.1-codex-max",
                    "GPT-5.1 Codex Max",
                    400_000,
                    128_000,
                    price(1.25, 10.0, 0.125, None),
                ),
            ],
            api_key: None,
            shared: false,
            personal_keys: true,
        },
    ]
}

/// Every provider den knows (built-in and admin), fixed at start.
#[derive(Debug, Clone)]
pub struct Catalog {
    providers: Vec<ProviderConfig>,
}

/// Where the key for a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// The person's own key.
    Personal,
    /// The admin's key.
    Shared,
    /// No key: Zen's anonymous key for its free models.
    Public,
    /// An admin's provider that needs no key (a model server on their network).
    NotNeeded,
}

/// A key picked for a request. `Debug` never shows it.
pub struct ResolvedKey {
    pub source: KeySource,
    pub key: Zeroizing<String>,
}

impl std::fmt::Debug for ResolvedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedKey")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// den's own providers only, without keys.
    pub fn builtin() -> Self {
        Self {
            providers: builtin_providers(),
        }
    }

    /// den's providers with the admin's entries merged in; an error names a bad entry.
    pub fn new(admin: Vec<AdminProvider>) -> std::result::Result<Self, String> {
        let mut providers = builtin_providers();
        for entry in admin {
            if entry.name.starts_with(ENDPOINT_PREFIX) {
                return Err(format!(
                    "provider {}: names starting with {ENDPOINT_PREFIX} are people's own endpoints",
                    entry.name
                ));
            }
            if let Some(existing) = providers.iter_mut().find(|p| p.name == entry.name) {
                if entry.kind.is_some_and(|kind| kind != existing.kind) {
                    return Err(format!(
                        "provider {}: den's built-in provider of that name has another kind",
                        entry.name
                    ));
                }
                if let Some(url) = entry.base_url {
                    existing.base_url = url;
                }
                for model in &entry.models {
                    if existing.model(model).is_none() {
                        existing.models.push(ModelSpec::named(model));
                    }
                }
                existing.api_key = entry.api_key;
                existing.shared = entry.shared;
                continue;
            }
            let (Some(kind), Some(base_url)) = (entry.kind, entry.base_url) else {
                return Err(format!(
                    "provider {}: a provider of the admin's own needs kind and base_url",
                    entry.name
                ));
            };
            providers.push(ProviderConfig {
                display_name: entry.name.clone(),
                name: entry.name,
                kind,
                base_url,
                models: entry.models.iter().map(|m| ModelSpec::named(m)).collect(),
                api_key: entry.api_key,
                shared: entry.shared,
                personal_keys: false,
            });
        }
        Ok(Self { providers })
    }

    pub fn providers(&self) -> &[ProviderConfig] {
        &self.providers
    }

    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// Where the key for `model` of `provider` would come from for a person, or `None` when
    /// the model is locked for them. The one rule both `GET /api/models` and the gateway use.
    pub fn key_source(
        provider: &ProviderConfig,
        model: &str,
        has_personal_key: bool,
        is_admin: bool,
    ) -> Option<KeySource> {
        if provider.personal_keys && has_personal_key {
            Some(KeySource::Personal)
        } else if provider.api_key.is_some() && (provider.shared || is_admin) {
            Some(KeySource::Shared)
        } else if !provider.personal_keys && provider.api_key.is_none() {
            Some(KeySource::NotNeeded)
        } else if provider.kind == ProviderKind::Zen
            && provider.model(model).is_some_and(ModelSpec::is_free)
        {
            Some(KeySource::Public)
        } else {
            None
        }
    }

    /// The key a request by `owner` to `model` of `provider` uses now (read from the store at
    /// this moment, so a deleted key is never used again), or `None` when the model is locked.
    pub async fn key_for(
        &self,
        store: &Store,
        owner: &UserRecord,
        provider: &ProviderConfig,
        model: &str,
    ) -> Result<Option<ResolvedKey>> {
        let personal = if provider.personal_keys {
            store.provider_key(owner.id, &provider.name).await?
        } else {
            None
        };
        let source = Self::key_source(provider, model, personal.is_some(), owner.is_admin);
        let key = match (source, personal) {
            (Some(KeySource::Personal), Some(key)) => String::from_utf8_lossy(&key).into_owned(),
            (Some(KeySource::Shared), _) => provider.api_key.clone().unwrap_or_default(),
            (Some(KeySource::Public), _) => "public".to_owned(),
            (Some(KeySource::NotNeeded), _) => String::new(),
            _ => return Ok(None),
        };
        Ok(source.map(|source| ResolvedKey {
            source,
            key: Zeroizing::new(key),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declaration_holds_the_seed_models_that_exist_and_a_free_default() {
        let catalog = Catalog::new(Vec::new()).unwrap();
        let (provider, model) = DEFAULT_MODEL.split_once('/').unwrap();
        assert!(
            catalog
                .provider(provider)
                .unwrap()
                .model(model)
                .unwrap()
                .is_free()
        );
        for id in [
            "anthropic/claude-sonnet-4-5-20250929",
            "anthropic/claude-opus-4-5-20251101",
            "openai/gpt-5.2",
            "openai/gpt-5.1-codex-max",
        ] {
            let (provider, model) = id.split_once('/').unwrap();
            let spec = catalog.provider(provider).unwrap().model(model).unwrap();
            assert!(spec.price.is_some() && !spec.is_free(), "{id}");
        }
        assert!(
            !catalog
                .provider("opencode")
                .unwrap()
                .model("gpt-5-nano")
                .unwrap()
                .is_free(),
            "gpt-5-nano is paid in 1.18.33"
        );
    }

    #[test]
    fn an_admin_entry_overrides_a_builtin_upstream_or_adds_a_provider() {
        let admin = |name: &str, kind, base_url: Option<&str>| AdminProvider {
            name: name.to_owned(),
            kind,
            base_url: base_url.map(str::to_owned),
            models: vec!["extra".to_owned()],
            api_key: Some("k".to_owned()),
            shared: true,
        };
        let catalog = Catalog::new(vec![
            admin("anthropic", None, Some("http://127.0.0.1:9/v1")),
            admin(
                "local",
                Some(ProviderKind::OpenAiCompatible),
                Some("http://x/v1"),
            ),
        ])
        .unwrap();
        let anthropic = catalog.provider("anthropic").unwrap();
        assert_eq!(anthropic.base_url, "http://127.0.0.1:9/v1");
        assert!(anthropic.model("claude-opus-4-5-20251101").is_some());
        assert!(anthropic.model("extra").is_some());
        assert!(!catalog.provider("local").unwrap().personal_keys);

        assert!(Catalog::new(vec![admin("local", None, Some("http://x"))]).is_err());
        assert!(Catalog::new(vec![admin("my-x", None, Some("http://x"))]).is_err());
        assert!(Catalog::new(vec![admin("openai", Some(ProviderKind::Anthropic), None)]).is_err());
    }
}
