// Starts a real den (fresh data directory, its own port) and headless Debian Chromium for the
// browser tests. WEB_DEN_BIN names the den binary (default: the workspace's debug build).
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { MODEL } from "./scripted-model.mjs";

const web = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const SHOTS = join(web, "test-results/screenshots");
const BIN = resolve(web, process.env.WEB_DEN_BIN ?? "../target/debug/den");
const CHROMIUM = process.env.WEB_CHROMIUM ?? "/usr/bin/chromium";
// Without the networking flags Chromium keeps dialling Google's hosts, which this offline
// machine refuses; --no-sandbox because tests run as root.
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
  "--no-first-run", "--disable-component-update", "--disable-sync",
];

const freePort = () =>
  new Promise((ok, fail) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
    s.on("error", fail);
  });

/**
 * den's settings for every browser test: no test may reach the internet, and an attempt fails
 * here rather than going out. Sandboxes get network `none` (host-side git follows the same
 * rule, so a remote repository is refused with an error naming the host), and den's built-in
 * hosted providers point at a closed local port, so a session on a hosted model fails at once
 * instead of calling the provider. `model`: a scripted model (scripted-model.mjs), offered as
 * provider `scripted`.
 */
async function hermeticConfig(model, config) {
  const closed = `http://127.0.0.1:${await freePort()}/v1`;
  let toml = `[sandbox]\nnetwork = "none"\n`;
  for (const name of ["anthropic", "openai", "opencode"]) {
    if (config.includes(`name = "${name}"`)) continue; // the test's own provider replaces it
    toml += `[[providers]]\nname = "${name}"\nbase_url = "${closed}"\n`;
  }
  if (model) {
    toml += `[[providers]]\nname = "scripted"\nkind = "openai-compatible"\nbase_url = "${model.baseUrl}"\nmodels = ["${MODEL}"]\n`;
  }
  return toml;
}

/**
 * A den with users alice and bob (password "correct horse"; `admins` are added as admins with
 * the same password), and a local git repository.
 * `model`: a scripted model (scripted-model.mjs); sessions made with `createSession` use it.
 * `config`: more TOML for `--config` (a provider it names replaces the hermetic one). With `users: []`, den starts empty and prints its
 * first-run admin sign-in link. `sandboxes: false`: records only. Always hermetic (see
 * `hermeticConfig`).
 */
export async function startDen({ model, config = "", users = ["alice", "bob"], admins = [], sandboxes = true } = {}) {
  const root = mkdtempSync(join(tmpdir(), "den-web-e2e-"));
  // Sandboxes run as another user and must be able to traverse down to their directories.
  chmodSync(root, 0o711);
  const data = join(root, "data");
  const repos = join(root, "repos");
  const repo = join(repos, "demo");
  mkdirSync(repo, { recursive: true });
  const git = (...args) => execFileSync("git", args, { cwd: repo, stdio: "ignore" });
  git("init", "-q", "-b", "main");
  writeFileSync(join(repo, "README.md"), "# demo\n");
  git("add", ".");
  git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "init");

  writeFileSync(join(root, "den.toml"), (await hermeticConfig(model, config)) + config);
  const args = ["--config", join(root, "den.toml")];
  const env = { ...process.env, DEN_REPOSITORIES__LOCAL_ROOTS: repos };
  // Two dens with sandboxes on one host share the sandbox cgroup tree, and a starting den reaps
  // what it finds there: a second den for a side test runs without sandboxes.
  if (!sandboxes) env.DEN_SANDBOX__ENABLED = "false";
  // No warm pool: its sandboxes would boot beside every test's own (the pool has tests of its
  // own in crates/den/tests/e2e/pool.rs).
  env.DEN_SANDBOX__WARM_POOL ??= "0";
  for (const name of [...users, ...admins]) {
    const admin = admins.includes(name) ? ["--admin"] : [];
    execFileSync(BIN, [...args, "--data-dir", data, "user", "add", name, ...admin, "--password-stdin"], { env, input: "correct horse\n", stdio: ["pipe", "ignore", "pipe"] });
  }
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = spawn(BIN, [...args, "--data-dir", data, "--listen", `127.0.0.1:${port}`, "serve"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  let out = "";
  proc.stdout.on("data", (d) => (out += d));
  proc.stderr.on("data", (d) => (log += d));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`den exited: ${log}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`den did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 100)); // polling a condition, not a sleep-to-sync
  }
  return {
    url,
    repo,
    /** The model `createSession` picks: the scripted one, when den has it. */
    model: model ? `scripted/${MODEL}` : undefined,
    log: () => log,
    /** What den printed (its first-run sign-in link among it). */
    stdout: () => out,
    async stop() {
      proc.kill("SIGTERM");
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.once("exit", r)));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export async function startBrowser() {
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
}

/** A fresh browser profile (its own cookies) signed in as `user`. */
export async function signedIn(browser, den, user, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ baseURL: den.url, viewport });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  await page.goto("/");
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password").fill("correct horse");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "What should we build?" }).waitFor();
  return { context, page };
}

/** Creates a session from the home page and waits for its page. */
export async function createSession(page, den, prompt = "Say hello") {
  await page.goto("/");
  await page.getByLabel("Repository").fill(den.repo);
  if (den.model) await page.getByLabel("Model").selectOption(den.model);
  await page.getByLabel("Prompt", { exact: true }).fill(prompt);
  await page.getByLabel("Prompt", { exact: true }).press("Enter");
  await page.waitForURL(/\/s\/[0-9a-f-]+$/);
  return new URL(page.url()).pathname.split("/").pop();
}
