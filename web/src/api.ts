// Calls to den's API. The browser sends the `den_session` cookie itself; every mutating
// request carries `X-Den-Csrf` (den refuses cookie-signed mutations without it).
import type {
  ApprovalMode,
  AskReply,
  ApiToken,
  AuthOptions,
  Budget,
  BudgetOverview,
  KeyTestResult,
  PersonBudget,
  BranchList,
  CreatedToken,
  ModelCatalog,
  ModelEndpoint,
  PromptAccepted,
  ProviderKeyStatus,
  PullRequest,
  PushResult,
  GitCredential,
  GithubConnect,
  GithubStatus,
  RepositoryList,
  Session,
  SessionDiff,
  CreatedShareLink,
  ForkResponse,
  ShareLink,
  SharedSession,
  SessionPage,
  User,
} from "./types";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (method !== "GET") headers["X-Den-Csrf"] = "1";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "network", "Cannot reach den. Check your connection and try again.");
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON (a proxy's error page, say): fall through to a generic message.
  }
  // Signed out elsewhere or the sign-in expired: the app goes back to its sign-in screen.
  if (res.status === 401 && !path.startsWith("/api/auth/")) window.dispatchEvent(new Event("den:signed-out"));
  if (!res.ok) {
    const err = (json as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(res.status, err?.code ?? "http_error", err?.message ?? `Request failed (${res.status})`);
  }
  return json as T;
}

export const api = {
  me: () => request<User>("GET", "/api/auth/me"),
  options: () => request<AuthOptions>("GET", "/api/auth/options"),
  login: (username: string, password: string) => request<User>("POST", "/api/auth/login", { username, password }),
  logout: () => request<void>("POST", "/api/auth/logout"),
  // `current` is needed when the person already has a password.
  setPassword: (next: string, current?: string) =>
    request<void>("PUT", "/api/auth/password", { new: next, ...(current !== undefined ? { current } : {}) }),
  sessions: () => request<SessionPage>("GET", "/api/sessions?limit=100"),
  session: (id: string) => request<Session>("GET", `/api/sessions/${encodeURIComponent(id)}`),
  createSession: (repository: string, model: string, prompt: string, baseBranch?: string, approvalMode?: ApprovalMode) =>
    // No model yet (the catalog still loading) means den's default; no branch, the default one.
    request<Session>("POST", "/api/sessions", {
      repository,
      ...(model ? { model } : {}),
      ...(prompt ? { prompt } : {}),
      ...(baseBranch ? { baseBranch } : {}),
      ...(approvalMode ? { approvalMode } : {}),
    }),
  // Answers a pending permission ask or question of the session.
  answer: (id: string, ask: string, reply: AskReply) => request<void>("POST", `/api/sessions/${id}/asks/${encodeURIComponent(ask)}`, reply),
  setApprovalMode: (id: string, mode: ApprovalMode) => request<Session>("PUT", `/api/sessions/${id}/approval-mode`, { mode }),
  // The repository's branches, its default first.
  branches: (repository: string) =>
    request<BranchList>("GET", `/api/repositories/branches?repository=${encodeURIComponent(repository)}`),
  // The person's GitHub repositories (newest push first) and the admin's local ones.
  repositories: (query: string) =>
    request<RepositoryList>("GET", `/api/repositories?query=${encodeURIComponent(query.slice(0, 200))}`),
  rename: (id: string, title: string) => request<Session>("PATCH", `/api/sessions/${id}`, { title }),
  remove: (id: string) => request<void>("DELETE", `/api/sessions/${id}`),
  diff: (id: string) => request<SessionDiff>("GET", `/api/sessions/${id}/diff`),
  push: (id: string, message?: string) => request<PushResult>("POST", `/api/sessions/${id}/push`, message ? { message } : {}),
  // The session's pull request as GitHub has it now (404: none yet).
  pullRequest: (id: string) => request<PullRequest>("GET", `/api/sessions/${id}/pull-request`),
  openPullRequest: (id: string, draft = false) => request<PullRequest>("POST", `/api/sessions/${id}/pull-request`, { draft }),
  prompt: (id: string, text: string, model?: string) =>
    request<PromptAccepted>("POST", `/api/sessions/${id}/prompt`, { text, ...(model ? { model } : {}) }),
  // New sessions from the session's last snapshot; with a prompt, sent to each (best of N).
  fork: (id: string, count = 1, prompt?: string) =>
    request<ForkResponse>("POST", `/api/sessions/${id}/fork`, { count, ...(prompt ? { prompt } : {}) }),
  shareLinks: (id: string) => request<ShareLink[]>("GET", `/api/sessions/${id}/shares`),
  createShareLink: (id: string, expiresAt?: string) =>
    request<CreatedShareLink>("POST", `/api/sessions/${id}/shares`, expiresAt ? { expiresAt } : {}),
  revokeShareLink: (id: string, link: string) => request<void>("DELETE", `/api/sessions/${id}/shares/${link}`),
  // What a share link's viewer may read (no sign-in: the token is the whole credential).
  shared: (token: string) => request<SharedSession>("GET", `/api/shared/${encodeURIComponent(token)}`),
  control: (id: string, action: "abort" | "pause" | "resume") => request<void>("POST", `/api/sessions/${id}/${action}`),
  dequeue: (id: string, item: string) => request<void>("DELETE", `/api/sessions/${id}/queue/${encodeURIComponent(item)}`),
  editQueued: (id: string, item: string, text: string) =>
    request<void>("PUT", `/api/sessions/${id}/queue/${encodeURIComponent(item)}`, { text }),
  clearQueue: (id: string) => request<void>("DELETE", `/api/sessions/${id}/queue`),
  github: () => request<GithubStatus>("GET", "/api/github"),
  connectGithub: () => request<GithubConnect>("POST", "/api/github/connect"),
  disconnectGithub: () => request<void>("DELETE", "/api/github"),
  gitCredentials: () => request<GitCredential[]>("GET", "/api/git-credentials"),
  putGitCredential: (host: string, username: string, token: string) =>
    request<void>("PUT", `/api/git-credentials/${encodeURIComponent(host)}`, { username, token }),
  deleteGitCredential: (host: string) => request<void>("DELETE", `/api/git-credentials/${encodeURIComponent(host)}`),
  tokens: () => request<ApiToken[]>("GET", "/api/tokens"),
  createToken: (name: string) => request<CreatedToken>("POST", "/api/tokens", { name }),
  revokeToken: (id: string) => request<void>("DELETE", `/api/tokens/${id}`),
  // The catalog comes from den (its own models, the admin's and the person's endpoints).
  models: () => request<ModelCatalog>("GET", "/api/models"),
  providerKeys: () => request<ProviderKeyStatus[]>("GET", "/api/provider-keys"),
  setProviderKey: (provider: string, key: string) =>
    request<ProviderKeyStatus>("PUT", `/api/provider-keys/${encodeURIComponent(provider)}`, { key }),
  deleteProviderKey: (provider: string) => request<void>("DELETE", `/api/provider-keys/${encodeURIComponent(provider)}`),
  endpoints: () => request<ModelEndpoint[]>("GET", "/api/model-endpoints"),
  putEndpoint: (name: string, baseUrl: string, models: string[], key?: string) =>
    request<ModelEndpoint>("PUT", `/api/model-endpoints/${encodeURIComponent(name)}`, { baseUrl, models, ...(key ? { key } : {}) }),
  deleteEndpoint: (name: string) => request<void>("DELETE", `/api/model-endpoints/${encodeURIComponent(name)}`),
  // One tiny request with the saved key (or endpoint): whether the provider accepts it.
  testProviderKey: (provider: string) =>
    request<KeyTestResult>("POST", `/api/provider-keys/${encodeURIComponent(provider)}/test`),
  testEndpoint: (name: string) => request<KeyTestResult>("POST", `/api/model-endpoints/${encodeURIComponent(name)}/test`),
  budget: () => request<Budget>("GET", "/api/budget"),
  // The person's own monthly cap (at most the admin's); null removes it.
  setBudget: (monthlyUsd: number | null) => request<Budget>("PUT", "/api/budget", { monthlyUsd }),
  // Admins only: everyone's budget, and the admin's cap per person (null: den's default).
  budgets: () => request<BudgetOverview>("GET", "/api/admin/budgets"),
  setPersonBudget: (username: string, monthlyUsd: number | null) =>
    request<PersonBudget>("PUT", `/api/admin/budgets/${encodeURIComponent(username)}`, { monthlyUsd }),
};
