// A GitHub REST stand-in for the browser tests, speaking GitHub's wire format for exactly the
// calls den makes about a session's pull request (like den-test-support's, which is Rust and
// in-process, so not usable from here): `GET /api/v3/repos/{o}/{r}` and
// `GET|POST /api/v3/repos/{o}/{r}/pulls`, `Authorization: Bearer <token>`, GitHub's errors
// (401 Bad credentials, 422 Validation Failed for a second open pull request on one head); and
// git's smart HTTP for the repositories it holds (`git http-backend` as CGI, Basic auth with the
// token as password, as GitHub takes it); and
// the OAuth web flow den uses to connect an account (`/login/oauth/authorize` redirects back
// with a code, `/login/oauth/access_token` exchanges it for the token, `/api/v3/user`).
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

const gitEnv = { PATH: process.env.PATH, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", HOME: "/nonexistent" };

/** Answers a smart-HTTP request with `git http-backend` over the bare repositories in `root`. */
function serveGit(root, req, res, url, body) {
  const cgi = spawn("git", ["http-backend"], {
    env: {
      ...gitEnv,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: "1",
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      REQUEST_METHOD: req.method,
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      CONTENT_LENGTH: String(body.length),
      GIT_PROTOCOL: req.headers["git-protocol"] ?? "",
      HTTP_CONTENT_ENCODING: req.headers["content-encoding"] ?? "",
      REMOTE_USER: "x-access-token",
    },
  });
  const out = [];
  cgi.stdout.on("data", (d) => out.push(d));
  cgi.on("close", () => {
    const all = Buffer.concat(out);
    const split = all.indexOf("\r\n\r\n");
    const head = all.subarray(0, split).toString().split("\r\n");
    const headers = {};
    let status = 200;
    for (const line of head) {
      const [name, ...rest] = line.split(":");
      const value = rest.join(":").trim();
      if (name.toLowerCase() === "status") status = Number(value.split(" ")[0]);
      else if (name) headers[name] = value;
    }
    res.writeHead(status, headers);
    res.end(all.subarray(split + 4));
  });
  cgi.stdin.end(body);
}

export async function startGithub(token) {
  const root = mkdtempSync(join(tmpdir(), "den-web-github-"));
  const pulls = [];
  const authorizations = [];
  let base = "";
  const send = (res, status, body) => {
    res.writeHead(status, { "Content-Type": "application/json; charset=utf-8" });
    res.end(JSON.stringify(body));
  };
  const pullJson = (p) => ({
    id: p.number, number: p.number, node_id: `PR_${p.number}`, locked: false,
    url: `${base}/api/v3/repos/${p.repo}/pulls/${p.number}`, html_url: `${base}/${p.repo}/pull/${p.number}`,
    state: p.state, title: p.title, body: p.body, draft: p.draft, merged: p.merged,
    merged_at: p.merged ? "2026-01-01T00:00:00Z" : null,
    head: { ref: p.head, sha: "0".repeat(40) }, base: { ref: p.base, sha: "0".repeat(40) },
  });
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const raw = Buffer.concat(chunks);
    const text = raw.toString();
    const url = new URL(req.url, base);
    if (url.pathname === "/login/oauth/authorize") {
      // The person approves at once: back to den with a code and den's state.
      const back = new URL(url.searchParams.get("redirect_uri"));
      back.searchParams.set("code", "standin-code");
      back.searchParams.set("state", url.searchParams.get("state"));
      res.writeHead(302, { Location: back.toString() });
      return res.end();
    }
    if (url.pathname === "/login/oauth/access_token") {
      const form = new URLSearchParams(text);
      if (form.get("code") !== "standin-code") return send(res, 200, { error: "bad_verification_code" });
      return send(res, 200, { access_token: token, token_type: "bearer", scope: "repo" });
    }
    const auth = req.headers.authorization ?? "";
    if (!url.pathname.startsWith("/api/")) {
      // git: Basic auth whose password is the token.
      const basic = auth.startsWith("Basic ") ? Buffer.from(auth.slice(6), "base64").toString() : "";
      if (basic.split(":").slice(1).join(":") !== token) {
        res.writeHead(401, { "WWW-Authenticate": 'Basic realm="GitHub"' });
        return res.end();
      }
      return serveGit(root, req, res, url, raw);
    }
    authorizations.push(auth);
    if (auth !== `Bearer ${token}` && auth !== `token ${token}`) return send(res, 401, { message: "Bad credentials" });
    if (url.pathname === "/api/v3/user") return send(res, 200, { id: 583231, login: "octocat" });
    if (url.pathname === "/api/v3/user/repos")
      return send(res, 200, [
        {
          id: 1, name: "widgets", full_name: "acme/widgets", private: true, archived: false, default_branch: "main",
          clone_url: `${base}/acme/widgets.git`, html_url: `${base}/acme/widgets`, pushed_at: "2026-01-01T00:00:00Z",
          permissions: { push: true, pull: true },
        },
      ]);
    const m = /^\/api\/v3\/repos\/([^/]+)\/([^/]+)(\/pulls)?$/.exec(url.pathname);
    if (!m) return send(res, 404, { message: "Not Found" });
    const repo = `${m[1]}/${m[2]}`;
    if (!m[3]) return send(res, 200, { id: 1, name: m[2], full_name: repo, private: true, default_branch: "main", archived: false });
    if (req.method === "GET") {
      const head = url.searchParams.get("head");
      const state = url.searchParams.get("state") ?? "open";
      const found = pulls.filter((p) => p.repo === repo && (!head || `${m[1]}:${p.head}` === head) && (state === "all" || p.state === state));
      return send(res, 200, found.map(pullJson));
    }
    const body = JSON.parse(text || "{}");
    if (pulls.some((p) => p.repo === repo && p.head === body.head && p.state === "open"))
      return send(res, 422, { message: "Validation Failed", errors: [{ message: `A pull request already exists for ${m[1]}:${body.head}.` }] });
    const pull = { number: pulls.length + 1, repo, title: body.title, body: body.body, head: body.head, base: body.base, draft: !!body.draft, state: "open", merged: false };
    pulls.push(pull);
    return send(res, 201, pullJson(pull));
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  base = `http://127.0.0.1:${server.address().port}`;
  return {
    base,
    host: base.slice("http://".length),
    apiUrl: `${base}/api/v3`,
    /** den's `[github]` settings for this stand-in. */
    config: () =>
      `[github]\nclient_id = "test"\nclient_secret = "test"\napi_url = "${base}/api/v3"\nauthorize_url = "${base}/login/oauth/authorize"\ntoken_url = "${base}/login/oauth/access_token"\n`,
    pulls,
    authorizations,
    /** A bare repository `owner/name` with one commit on `main`. */
    createRepo(name) {
      const work = mkdtempSync(join(tmpdir(), "den-web-work-"));
      const git = (cwd, ...args) => execFileSync("git", args, { cwd, env: gitEnv, stdio: "ignore" });
      git(work, "init", "-q", "-b", "main");
      writeFileSync(join(work, "README.md"), `# ${name}\n`);
      git(work, "add", ".");
      git(work, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "init");
      mkdirSync(join(root, name.split("/")[0]), { recursive: true });
      git(root, "clone", "-q", "--bare", work, `${name}.git`);
      rmSync(work, { recursive: true, force: true });
      return `${base}/${name}.git`;
    },
    /** The commit `ref` points at in repository `name`, or null. */
    commitOf(name, ref) {
      try {
        return execFileSync("git", ["rev-parse", "--verify", "-q", ref], { cwd: join(root, `${name}.git`), env: gitEnv }).toString().trim();
      } catch {
        return null;
      }
    },
    /** GitHub's side of a merge: the pull request is closed with `merged_at` set. */
    merge(number) {
      const p = pulls.find((x) => x.number === number);
      p.state = "closed";
      p.merged = true;
    },
    close: () =>
      new Promise((ok) => server.close(ok)).then(() => rmSync(root, { recursive: true, force: true })),
  };
}
