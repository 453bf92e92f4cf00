//! Models, a person's provider keys and their own model endpoints. A key is accepted, never
//! shown back: only whether one is set, when, and a short fingerprint.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Prices in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelPrice {
    pub input: f64,
    pub output: f64,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
}

/// A model as `GET /api/models` shows it to the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    /// `provider/model`, as sessions and prompts name it.
    pub id: String,
    /// The provider id, e.g. `anthropic` or `my-home` (a personal endpoint).
    pub provider: String,
    pub provider_name: String,
    pub name: String,
    /// Whether the caller can use it now.
    pub available: bool,
    /// Why it is locked, for people (`None` when available).
    pub locked_reason: Option<String>,
    /// The provider whose key would unlock it, when a personal key would (for "Add key").
    pub key_provider: Option<String>,
    /// Where the key comes from: `personal`, `shared` (the admin's), `free`, `none` (an admin's
    /// provider that needs none) or `endpoint`.
    pub key_source: Option<String>,
    /// Context window in tokens, where known.
    pub context: Option<u64>,
    pub price: Option<ModelPrice>,
}

/// `GET /api/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelCatalog {
    pub models: Vec<ModelInfo>,
    /// The model new sessions use when none is chosen.
    pub default_model: String,
}

/// One of den's providers and whether the caller has a key for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderKeyStatus {
    /// `anthropic`, `openai` or `opencode`.
    pub provider: String,
    pub name: String,
    pub set: bool,
    pub updated_at: Option<DateTime<Utc>>,
    /// The key's last four characters (`…x9Qz`), for keys long enough to spare them.
    pub fingerprint: Option<String>,
    /// Whether the admin shares a key for this provider with the caller.
    pub shared_key: bool,
}

/// `PUT /api/provider-keys/{provider}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetProviderKeyRequest {
    /// The provider's API key; up to 1024 characters, no whitespace.
    pub key: String,
}

/// A person's own OpenAI-compatible endpoint (chat completions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelEndpoint {
    pub name: String,
    /// The provider id sessions use: `my-<name>`.
    pub provider: String,
    pub base_url: String,
    pub models: Vec<String>,
    pub key_set: bool,
    pub key_fingerprint: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// `PUT /api/model-endpoints/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutModelEndpointRequest {
    /// `http(s)://…`, e.g. `https://models.example.com/v1`.
    pub base_url: String,
    /// 1 to 50 model ids.
    pub models: Vec<String>,
    /// Sets or replaces the key; absent keeps the endpoint's key (if any).
    pub key: Option<String>,
}

/// Sums of metered model requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageTotals {
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub reasoning_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    /// US dollars, from den's declared prices (0 where a model has none).
    pub cost_usd: f64,
}

/// One session's usage this month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionUsage {
    pub session_id: uuid::Uuid,
    pub totals: UsageTotals,
}

/// `GET /api/usage`: the caller's model usage as den's gateway metered it (title requests
/// included), for today and this month (UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    pub today: UsageTotals,
    pub month: UsageTotals,
    pub sessions: Vec<SessionUsage>,
}

/// `GET /api/budget`: the caller's monthly model spending caps (US dollars, calendar month in
/// UTC) and what they spent. The cap that applies is the lower of the admin's and their own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// The admin's cap for the caller: one set for them, else den's default; `None`: no cap.
    pub admin_cap_usd: Option<f64>,
    /// The cap the caller set for themselves, if any (never above the admin's).
    pub own_cap_usd: Option<f64>,
    /// The cap that applies (the lower of the two); `None`: no cap.
    pub cap_usd: Option<f64>,
    /// What the caller's model requests cost this month, as den's gateway metered them.
    pub spent_usd: f64,
}

/// `PUT /api/budget`: the caller's own cap, at most the admin's.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetBudgetRequest {
    /// US dollars a month (0 or more, at most the admin's cap); `null` removes the own cap.
    /// Required: a body without it is refused rather than read as "remove".
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>, required = true)]
    pub monthly_usd: Option<Option<f64>>,
}

/// A field that was sent (`Some`, holding `null` as `None`), as opposed to one left out.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(deserializer).map(Some)
}

/// `POST /api/provider-keys/{provider}/test` and `POST /api/model-endpoints/{name}/test`: what
/// the provider answered a tiny request made with the caller's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyTestResult {
    /// Whether the provider accepted the key (answered 2xx).
    pub ok: bool,
    /// The provider's HTTP status, when it answered at all.
    pub status: Option<u16>,
    /// "the key works", or the provider's own error message (never the key itself).
    pub message: String,
}

/// One person's budget as an admin sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersonBudget {
    pub username: String,
    /// The cap the admin set for this person; `None`: den's default applies.
    pub admin_cap_usd: Option<f64>,
    /// The lower cap the person set for themselves, if any.
    pub own_cap_usd: Option<f64>,
    /// The cap that applies (`None`: no cap).
    pub cap_usd: Option<f64>,
    /// What their model requests cost this month.
    pub spent_usd: f64,
}

/// `GET /api/admin/budgets`: den's default cap and every person's budget (admins only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetOverview {
    /// `models.monthly_budget_usd`: the cap of everyone the admin set none for.
    pub default_cap_usd: Option<f64>,
    pub people: Vec<PersonBudget>,
}
