// A GitHub REST stand-in for the browser tests, speaking GitHub's wire format for exactly the
// calls den makes about a session's pull request (like den-test-support's, which is Rust and
// in-process, so not usable from here): `GET /api/v3/repos/{o}/{r}` and
// `GET|POST /api/v3/repos/{o}/{r}/pulls`, `Authorization: Bearer <token>`, GitHub's errors
// (401 Bad credentials, 422 Validation Failed for a second open pull request on one head); and
// the OAuth web flow den uses to connect an account (`/login/oauth/authorize` redirects back
// with a code, `/login/oauth/access_token` exchanges it for the token, `/api/v3/user`).
import { createServer } from "node:http";

export async function startGithub(token) {
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
    let text = "";
    for await (const chunk of req) text += chunk;
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
    /** GitHub's side of a merge: the pull request is closed with `merged_at` set. */
    merge(number) {
      const p = pulls.find((x) => x.number === number);
      p.state = "closed";
      p.merged = true;
    },
    close: () => new Promise((ok) => server.close(ok)),
  };
}
