// A session on a GitHub repository, without a running agent: the person stores their token for
// the host in Settings → Git hosts (never shown again), opens the session's pull request from the
// Changes panel, and the header keeps its state current from GitHub.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { expect } from "./expect.mjs";
import { SHOTS, signedIn, startBrowser, startDen } from "./harness.mjs";
import { startGithub } from "./github-standin.mjs";

const TOKEN = "ghp_browserTestToken0123456789abcdef";
let github, den, browser, alice;
before(async () => {
  github = await startGithub(TOKEN);
  den = await startDen({
    sandboxes: false,
    config: `${github.config()}\n[repositories]\nallowed_hosts = ["${github.host}"]\n`,
  });
  browser = await startBrowser();
  alice = await signedIn(browser, den, "alice");
});
after(async () => {
  await browser?.close();
  await den?.stop();
  await github?.close();
});

describe("GitHub", () => {
  test("Settings → GitHub connects the GitHub account of a person signed in with a password", async () => {
    const { page } = alice;
    await page.goto("/settings");
    const section = page.getByRole("region", { name: "GitHub" });
    await expect(section.getByRole("status")).toContainText("Not connected.");
    await section.getByRole("button", { name: "Connect GitHub" }).click();
    // To GitHub (the stand-in approves at once) and back to this section.
    await page.waitForURL(/\/settings#github$/);
    await expect(section.getByRole("status")).toContainText("Connected as octocat.");
    assert.ok(!(await page.content()).includes(TOKEN), "the token is never shown");
    await page.screenshot({ path: `${SHOTS}/settings-github.png` });
    // Repositories now come from GitHub in the new-session picker, and no "not connected" note.
    await page.goto("/");
    await page.getByRole("heading", { name: "What should we build?" }).waitFor();
    await page.locator(`#recent-repos option[value="${github.base}/acme/widgets.git"]`).waitFor({ state: "attached" });
    assert.equal(await page.getByText("GitHub is not connected").count(), 0);
    await page.goto("/settings");
    await section.getByRole("button", { name: "Disconnect" }).click();
    await expect(section.getByRole("status")).toContainText("Not connected.");
  });


  test("the branch picker lists the repository's branches, the default chosen; a pick starts the session there", async () => {
    const { page } = alice;
    execFileSync("git", ["branch", "feature-x"], { cwd: den.repo, stdio: "ignore" });
    await page.goto("/");
    await page.getByLabel("Repository").fill(den.repo);
    const picker = page.getByLabel("Branch");
    await picker.waitFor();
    assert.equal(await picker.inputValue(), "main");
    assert.deepEqual(await picker.locator("option").allTextContents(), ["main (default)", "feature-x"]);
    await picker.selectOption("feature-x");
    await page.screenshot({ path: `${SHOTS}/home-branch-picker.png` });
    // This den runs no sandboxes, so the start itself is refused: what matters is what was sent.
    const sent = page.waitForRequest((r) => r.method() === "POST" && new URL(r.url()).pathname === "/api/sessions");
    await page.getByLabel("Prompt", { exact: true }).fill("work on the feature");
    await page.getByLabel("Prompt", { exact: true }).press("Enter");
    const body = (await sent).postDataJSON();
    assert.equal(body.repository, den.repo);
    assert.equal(body.baseBranch, "feature-x");
  });

  test("Settings → Git hosts stores a token, lists the host without it, and deletes it", async () => {
    const { page } = alice;
    await page.goto("/settings");
    const section = page.getByRole("region", { name: "Git hosts" });
    await expect(section.getByText("No git host credentials yet.")).toBeVisible();
    await section.getByLabel("Git host", { exact: true }).fill("https://git.example.com/acme/x.git");
    await section.getByLabel("Git username").fill("x-access-token");
    await section.getByLabel("Git token").fill("secret-for-example-com");
    await section.getByRole("button", { name: "Save credential" }).click();
    await expect(section.getByRole("status")).toContainText("Credential for git.example.com saved.");
    await expect(section.getByLabel("Git host credentials")).toContainText("git.example.com");
    await expect(section.getByLabel("Git host credentials")).toContainText("as x-access-token");
    await page.reload();
    await expect(section.getByLabel("Git host credentials")).toContainText("git.example.com");
    assert.equal(await page.getByText("secret-for-example-com").count(), 0, "the token is never shown");
    assert.ok(!(await page.content()).includes("secret-for-example-com"));
    // A bad host is refused with den's reason, and nothing is stored.
    await section.getByLabel("Git host", { exact: true }).fill("not a host");
    await section.getByLabel("Git username").fill("me");
    await section.getByLabel("Git token").fill("t");
    await section.getByRole("button", { name: "Save credential" }).click();
    await expect(section.getByRole("alert")).toBeVisible();
    await section.getByRole("button", { name: "Delete credential for git.example.com" }).click();
    await expect(section.getByText("No git host credentials yet.")).toBeVisible();
  });

  test("Open pull request opens it once; the header shows it and follows its state on GitHub", async () => {
    const { page } = alice;
    await page.goto("/settings");
    const section = page.getByRole("region", { name: "Git hosts" });
    await section.getByLabel("Git host", { exact: true }).fill(github.host);
    await section.getByLabel("Git username").fill("x-access-token");
    await section.getByLabel("Git token").fill(TOKEN);
    await section.getByRole("button", { name: "Save credential" }).click();
    await expect(section.getByLabel("Git host credentials")).toContainText(github.host);

    // den asks the repository for its branches before making a session: it must exist.
    const repository = github.createRepo("acme/widgets");
    const res = await page.request.post("/api/sessions", {
      headers: { "X-Den-Csrf": "1" },
      data: { repository },
    });
    assert.equal(res.status(), 201, await res.text());
    const { id, workBranch } = await res.json();
    await page.goto(`/s/${id}`);
    await page.getByRole("button", { name: /^Changes/ }).click();
    const changes = page.getByRole("region", { name: "Changes" });
    assert.equal(await page.getByRole("link", { name: /Pull request #/ }).count(), 0, "no pull request yet");
    await changes.getByRole("button", { name: "Open pull request" }).click();
    await expect(changes.getByRole("status")).toContainText("Opened pull request #1");
    const header = page.getByRole("link", { name: "Pull request #1: open" });
    await expect(header).toBeVisible();
    assert.equal(await header.getAttribute("href"), `${github.base}/acme/widgets/pull/1`);
    // The panel now links to it instead of offering a second one.
    await expect(changes.getByRole("link", { name: "View pull request #1" })).toBeVisible();
    assert.equal(github.pulls.length, 1);
    assert.equal(github.pulls[0].head, workBranch);
    assert.equal(github.pulls[0].base, "main", "the repository's default branch");
    await page.screenshot({ path: `${SHOTS}/session-pull-request.png` });

    // Merged on GitHub: the header says so when the page next asks (here, a reload).
    github.merge(1);
    await page.reload();
    await expect(page.getByRole("link", { name: "Pull request #1: merged" })).toBeVisible();
    assert.ok(github.authorizations.every((a) => a === `Bearer ${TOKEN}`), "den sent the stored token");
    assert.ok(!(await page.content()).includes(TOKEN));
  });
});
