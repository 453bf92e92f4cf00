// The live parts: den's session actor, a real sandbox, the real OpenCode, and a scripted model.
// Run with `npm run e2e -- --streaming` (needs a den whose sessions run an agent).
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { expect } from "./expect.mjs";
import { SHOTS, createSession, signedIn, startBrowser, startDen } from "./harness.mjs";
import { startGithub } from "./github-standin.mjs";
import { MODEL, gate, startScriptedModel } from "./scripted-model.mjs";

const GITHUB_TOKEN = "ghp_streamingBrowserToken0123456789";
let den, browser, model, alice, github;
before(async () => {
  model = await startScriptedModel();
  github = await startGithub(GITHUB_TOKEN);
  den = await startDen({
    model,
    // den's own Anthropic provider, pointed at the scripted model: locked until a person adds a key.
    config: `[[providers]]\nname = "anthropic"\nbase_url = "${model.baseUrl}"\n\n${github.config()}\n[repositories]\nallowed_hosts = ["${github.host}"]\n`,
  });
  browser = await startBrowser();
  alice = await signedIn(browser, den, "alice");
  alice.context.setDefaultTimeout(60_000); // sandbox start and clone on a loaded 2-core machine
});
beforeEach(() => model.clear());
after(async () => {
  await browser?.close();
  await den?.stop();
  await model?.close();
  await github?.close();
});

/** Creates a session on the scripted model through the API (the picker lists only the five). */
async function scriptedSession(page, prompt, repository = den.repo) {
  const res = await page.request.post("/api/sessions", {
    headers: { "X-Den-Csrf": "1" },
    data: { repository, model: `scripted/${MODEL}`, prompt },
  });
  assert.equal(res.status(), 201, await res.text());
  const { id } = await res.json();
  await page.goto(`/s/${id}`);
  return id;
}

const transcript = (page) => page.getByRole("list", { name: "Transcript" });

describe("the sidebar in every tab", () => {
  test("a second tab sees sessions created and renamed in the first", async () => {
    const other = await alice.context.newPage();
    await other.goto("/");
    await other.getByRole("heading", { name: "What should we build?" }).waitFor();
    const id = await createSession(alice.page, den, "sidebar check");
    // Titled "sidebar check", or already with OpenCode's generated title: found by address.
    await expect(other.getByLabel("Sessions").locator(`a[href="/s/${id}"]`)).toBeVisible();
    await alice.page.getByRole("button", { name: "Rename" }).click();
    await alice.page.getByLabel("Session title").fill("Renamed live");
    await alice.page.getByLabel("Session title").press("Enter");
    await expect(other.getByLabel("Sessions").getByRole("link", { name: /Renamed live/ })).toBeVisible();
    await other.close();
    // The session's prompt runs on the scripted model (nothing was queued for it): its turn ends
    // here, so it cannot take a turn the next test queues.
    await expect(transcript(alice.page).getByText("(no scripted turn left)").first()).toBeVisible();
  });
});

describe("a turn", () => {
  test("progress steps, streamed text, and a tool chip that turns to done with its diff", async () => {
    const { page } = alice;
    model.push([
      { text: ["Writing ", "the ", "file."], delayMs: 50 },
      { tool: "write", args: { filePath: "hello.txt", content: "hi there\n" } },
    ]);
    model.push([{ text: ["Done writing."] }]);
    await scriptedSession(page, "write hello.txt please");
    await expect(page.getByRole("list", { name: "Progress" }).getByText("Ready")).toBeVisible();
    await expect(transcript(page).getByText("write hello.txt please")).toBeVisible();
    await expect(transcript(page).getByText("Writing the file.")).toBeVisible();
    const chip = page.getByRole("button", { name: /write hello\.txt \(done\)/ });
    await chip.waitFor();
    await chip.click();
    await expect(page.getByLabel("Diff")).toContainText("+hi there");
    await expect(transcript(page).getByText("Done writing.")).toBeVisible();
    await expect(page.getByText(/out tokens/)).toBeVisible();
    await page.screenshot({ path: `${SHOTS}/session-turn.png` });
  });

  test("the Changes panel lists what the turn changed, with its diff; Push says why it cannot", async () => {
    const { page } = alice;
    model.push([{ tool: "write", args: { filePath: "notes.py", content: "one = 1\ntwo = 2\n" } }]);
    model.push([{ text: ["Noted."] }]);
    await scriptedSession(page, "take notes");
    await expect(transcript(page).getByText("Noted.")).toBeVisible();
    // The summary arrives with the turn's end (`diff_changed`).
    await page.getByRole("button", { name: "Changes (1)" }).click();
    const changes = page.getByRole("region", { name: "Changes" });
    const file = changes.getByRole("button", { name: /notes\.py/ });
    await expect(file).toContainText("+2");
    await file.click();
    await expect(changes.getByLabel("Diff")).toContainText("+two = 2");
    // The code is coloured as Python (its numbers), the diff's own lines are not.
    const numbers = changes.getByLabel("Diff").locator(".add .hljs-number");
    await expect(numbers).toBeVisible();
    assert.deepEqual(await numbers.allTextContents(), ["1", "2"]);
    // This den's test repository is a local path: there is no remote to push to.
    await changes.getByRole("button", { name: "Push" }).click();
    await expect(changes.getByRole("alert")).toContainText("not on a git host den pushes to");
    await page.screenshot({ path: `${SHOTS}/session-changes.png` });
  });

  test("a private GitHub repository: Push sends the branch, Open pull request opens it, the header shows it", async () => {
    const { page } = alice;
    const repository = github.createRepo("acme/widgets");
    const put = await page.request.put(`/api/git-credentials/${github.host}`, {
      headers: { "X-Den-Csrf": "1" },
      data: { username: "x-access-token", token: GITHUB_TOKEN },
    });
    assert.equal(put.status(), 204);
    model.push([{ tool: "write", args: { filePath: "feature.txt", content: "new feature\n" } }]);
    model.push([{ text: ["Feature written."] }]);
    const id = await scriptedSession(page, "write the feature", repository);
    await expect(transcript(page).getByText("Feature written.")).toBeVisible();
    await page.getByRole("button", { name: "Changes (1)" }).click();
    const changes = page.getByRole("region", { name: "Changes" });
    await expect(changes.getByRole("button", { name: /feature\.txt/ })).toBeVisible();
    await changes.getByRole("button", { name: "Push" }).click();
    const { workBranch } = await (await page.request.get(`/api/sessions/${id}`)).json();
    await expect(changes.getByRole("status")).toContainText(`Pushed ${workBranch}`);
    await expect(changes.getByRole("status")).toContainText("uncommitted work was committed first");
    assert.ok(github.commitOf("acme/widgets", `refs/heads/${workBranch}`), "the branch reached the remote");
    assert.equal(github.commitOf("acme/widgets", "refs/heads/main")?.length, 40);
    await changes.getByRole("button", { name: "Open pull request" }).click();
    await expect(changes.getByRole("status")).toContainText("Opened pull request #1");
    await expect(page.getByRole("link", { name: "Pull request #1: open" })).toBeVisible();
    assert.equal(github.pulls[0].head, workBranch);
    await page.screenshot({ path: `${SHOTS}/session-push-pull-request.png` });
    assert.ok(!(await page.content()).includes(GITHUB_TOKEN));
  });

  test("a reload in the middle of a reply ends with the same transcript, no duplicates", async () => {
    const { page } = alice;
    const held = gate();
    model.push([{ text: ["First half. "] }, { hold: held.promise }, { text: ["Second half."] }]);
    const id = await scriptedSession(page, "stream slowly");
    const watcher = await alice.context.newPage(); // never reloads
    await watcher.goto(`/s/${id}`);
    await expect(transcript(page).getByText("First half.")).toBeVisible();
    await page.reload();
    await expect(transcript(page).getByText("First half.")).toBeVisible();
    held.open();
    await expect(transcript(page).getByText(/First half\. Second half\./)).toBeVisible();
    await expect(transcript(watcher).getByText(/First half\. Second half\./)).toBeVisible();
    await expect(page.getByText(/out tokens/)).toBeVisible();
    await expect(watcher.getByText(/out tokens/)).toBeVisible();
    // textContent, not innerText: rows scrolled out of view are not rendered (content-visibility).
    assert.equal(await transcript(page).textContent(), await transcript(watcher).textContent());
    assert.equal(await transcript(page).getByLabel("Your message").count(), 1);
    await watcher.close();
  });

  test("stop a running turn; a follow-up queues, can be edited or removed, and runs when queued", async () => {
    const { page } = alice;
    const never = gate();
    model.push([{ text: ["Working on it"] }, { hold: never.promise }]);
    await scriptedSession(page, "long job");
    await expect(transcript(page).getByText("Working on it")).toBeVisible();
    // While it runs, follow-ups queue visibly.
    await page.getByLabel("Prompt", { exact: true }).fill("second thought");
    await page.getByLabel("Prompt", { exact: true }).press("Enter");
    const queue = page.getByRole("region", { name: "Queued prompts" });
    await expect(queue.getByText("second thought")).toBeVisible();
    await queue.getByRole("button", { name: "Remove queued prompt: second thought" }).click();
    await expect(queue).toBeHidden();
    await page.getByLabel("Prompt", { exact: true }).fill("then this");
    await page.getByLabel("Prompt", { exact: true }).press("Enter");
    const queued = page.getByRole("region", { name: "Queued prompts" });
    await expect(queued.getByText("then this")).toBeVisible();
    // A waiting prompt can be edited; what runs is the edited text.
    await queued.getByRole("button", { name: "Edit queued prompt: then this" }).click();
    await queued.getByLabel("Edit queued prompt").fill("then this, edited");
    await queued.getByLabel("Edit queued prompt").press("Enter");
    await expect(queued.getByText("then this, edited")).toBeVisible();
    model.push([{ text: ["Follow-up answered."] }]);
    // Escape in the prompt box does not stop the turn (a stray key must not): the Stop button does.
    await page.getByLabel("Prompt", { exact: true }).press("Escape");
    await page.getByRole("button", { name: "Stop" }).click();
    // The model had not finished: no usage is known, and none is made up ("0 in / 0 out · $0.0000").
    await expect(transcript(page).getByText("Stopped", { exact: true })).toBeVisible();
    assert.equal(await transcript(page).getByText(/0 in \/ 0 out|\$0\.0000/).count(), 0);
    await expect(transcript(page).getByText("Follow-up answered.")).toBeVisible();
    await expect(transcript(page).getByText("then this, edited")).toBeVisible();
    never.open();
  });

  test("pause and resume", async () => {
    const { page } = alice;
    model.push([{ text: ["Ready when you are."] }]);
    await scriptedSession(page, "hello");
    await expect(transcript(page).getByText("Ready when you are.")).toBeVisible();
    await page.getByRole("button", { name: "Pause" }).click();
    await expect(page.getByRole("img", { name: "Sandbox: paused" })).toBeVisible();
    await expect(page.getByLabel("State")).toContainText("Sandbox paused · Agent idle");
    // The pause and the resume leave readable markers, not a second block of steps.
    await expect(transcript(page).getByRole("note").filter({ hasText: /^Paused at \d\d:\d\d\S*( [AP]M)? — paused by you · / })).toBeVisible();
    await page.getByRole("button", { name: "Resume" }).click();
    await expect(page.getByRole("img", { name: "Sandbox: running" })).toBeVisible();
    await expect(transcript(page).getByRole("note").filter({ hasText: /^Resumed from snapshot at \d\d:\d\d/ })).toBeVisible();
    assert.equal(await transcript(page).getByText("Restore snapshot").count(), 0);
    // A prompt to a paused session simply works.
    await page.getByRole("button", { name: "Pause" }).click();
    await expect(page.getByRole("img", { name: "Sandbox: paused" })).toBeVisible();
    model.push([{ text: ["Back again."] }]);
    await page.getByLabel("Prompt", { exact: true }).fill("are you there?");
    await page.getByLabel("Prompt", { exact: true }).press("Enter");
    await expect(transcript(page).getByText("Back again.")).toBeVisible();
  });

  test("5,000 streamed deltas stay smooth: the page keeps answering and its DOM stays small", async () => {
    const { page } = alice;
    await page.addInitScript(() => {
      window.__longTasks = [];
      new PerformanceObserver((list) => window.__longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: "longtask", buffered: true });
    });
    model.push([{ text: Array.from({ length: 5000 }, (_, i) => `w${i} `) }]);
    await scriptedSession(page, "talk a lot");
    // Typing while it streams is never blocked for long.
    await page.getByLabel("Prompt", { exact: true }).fill("still typing");
    await expect(transcript(page).getByText(/w4999/)).toBeVisible();
    assert.equal(await page.getByLabel("Prompt", { exact: true }).inputValue(), "still typing");
    const longest = await page.evaluate(() => Math.max(0, ...window.__longTasks));
    assert.ok(longest < 1000, `the page was blocked for ${longest} ms`);
    const nodes = await page.evaluate(() => document.querySelectorAll("*").length);
    assert.ok(nodes < 3000, `${nodes} DOM nodes`);
  });

  test("a failed turn shows its error, and Retry sends the prompt again", async () => {
    const { page } = alice;
    model.push({ error: { status: 400, message: "scripted refusal" } });
    await scriptedSession(page, "try this");
    const alert = transcript(page).getByRole("alert");
    await expect(alert).toContainText("scripted refusal");
    // Once the turn has ended, the failure is told once (not again in a banner or the turn's footer).
    await page.waitForFunction(() => !document.querySelector('[aria-label="State"]').textContent.includes("working"));
    const told = await page.evaluate(() => document.querySelector("main").textContent.split("scripted refusal").length - 1);
    assert.equal(told, 1, "the failure is shown once");
    model.push([{ text: ["Second time lucky."] }]);
    await alert.getByRole("button", { name: "Retry" }).click();
    await expect(transcript(page).getByText("Second time lucky.")).toBeVisible();
  });

  test("a dropped connection resumes from the last event it had: no gap, no duplicate", async () => {
    const context = await browser.newContext({ baseURL: den.url });
    // Keep a handle on the page's sockets, so the test can cut the connection.
    await context.addInitScript(() => {
      const Native = window.WebSocket;
      window.__sockets = [];
      window.WebSocket = class extends Native {
        constructor(...args) {
          super(...args);
          window.__sockets.push(this);
        }
      };
    });
    await context.addCookies(await alice.context.cookies());
    context.setDefaultTimeout(60_000);
    const page = await context.newPage();
    const held = gate();
    model.push([{ text: ["Before the drop. "] }, { hold: held.promise }, { text: ["After the drop."] }]);
    const id = await scriptedSession(page, "survive a drop");
    const watcher = await alice.context.newPage();
    await watcher.goto(`/s/${id}`);
    await expect(transcript(page).getByText("Before the drop.")).toBeVisible();
    await page.evaluate(() => window.__sockets.at(-1).close());
    await expect(page.getByRole("status", { name: "Connection: Reconnecting…" })).toBeVisible();
    await expect(page.getByRole("status", { name: "Connection: Live" })).toBeVisible();
    const urls = await page.evaluate(() => window.__sockets.map((s) => s.url));
    assert.match(urls.at(-1), /after=[1-9]\d*/, "the reconnect asks only for what it lacks");
    held.open();
    await expect(transcript(page).getByText(/Before the drop\. After the drop\./)).toBeVisible();
    await expect(page.getByText(/out tokens/)).toBeVisible();
    await expect(watcher.getByText(/out tokens/)).toBeVisible();
    assert.equal(await transcript(page).textContent(), await transcript(watcher).textContent());
    await watcher.close();
    await context.close();
  });
});

describe("a person's own key", () => {
  test("added in settings, it passes its test, unlocks Claude and runs a turn; deleted, the lock returns", async () => {
    const { page } = alice;
    const key = "sk-ant-api03-browser-turn-key-R7t5";
    const sonnet = "anthropic/claude-sonnet-4-5-20250929";
    const option = () => page.getByLabel("Model").locator(`option[value="${sonnet}"]`);
    model.requireKey(key);
    await page.goto("/");
    await page.getByLabel("Model").selectOption(sonnet);
    assert.equal(await option().textContent(), "🔒 Claude Sonnet 4.5");
    await page.getByRole("link", { name: "Add key" }).click();
    await page.getByRole("heading", { name: "Providers" }).waitFor();

    // A mistyped key: the provider's own refusal shows when tested.
    await page.getByLabel("Anthropic key", { exact: true }).fill("sk-ant-api03-mistyped-0000");
    await page.getByLabel("Anthropic key", { exact: true }).press("Enter");
    await page.getByRole("button", { name: "Test Anthropic key" }).click();
    await expect(page.getByRole("status", { name: "Anthropic key test" })).toContainText("invalid x-api-key");
    await page.getByLabel("Anthropic key", { exact: true }).fill(key);
    await page.getByLabel("Anthropic key", { exact: true }).press("Enter");
    await expect(page.getByLabel("Provider keys")).toContainText("…R7t5");
    await page.getByRole("button", { name: "Test Anthropic key" }).click();
    await expect(page.getByRole("status", { name: "Anthropic key test" })).toContainText("the key works");
    assert.equal(await page.getByText(key).count(), 0, "the key is never shown back");

    // The lock is gone; a turn on Claude reaches the stand-in with the key den added.
    model.push([{ text: ["Hello ", "from Claude's ", "stand-in."] }]);
    await page.goto("/");
    await page.getByLabel("Model").selectOption(sonnet);
    assert.equal(await option().textContent(), "Claude Sonnet 4.5");
    await page.getByLabel("Repository").fill(den.repo);
    await page.getByLabel("Prompt", { exact: true }).fill("Say hello, Claude");
    await page.getByLabel("Prompt", { exact: true }).press("Enter");
    await page.waitForURL(/\/s\/[0-9a-f-]+$/);
    await expect(transcript(page).getByText("Hello from Claude's stand-in.")).toBeVisible();
    await expect(page.getByLabel("Session usage")).toContainText(/model requests? · \$0\.\d{4}/);
    await expect(transcript(page).getByLabel("Metered usage").first()).toBeVisible();
    const agent = model.requests.filter((r) => r.api === "anthropic" && r.agent);
    assert.ok(agent.length >= 1, "the turn reached the Anthropic stand-in");
    for (const r of agent) {
      assert.equal(r.key, key);
      assert.equal(r.body.model, "claude-sonnet-4-5-20250929");
    }
    await page.screenshot({ path: `${SHOTS}/session-own-key.png` });

    // Deleted: the lock returns.
    await page.goto("/settings#providers");
    await page.getByRole("button", { name: "Delete Anthropic key" }).click();
    await expect(page.getByRole("button", { name: "Delete Anthropic key" })).toBeHidden();
    await page.goto("/");
    await page.getByLabel("Model").selectOption(sonnet);
    assert.equal(await option().textContent(), "🔒 Claude Sonnet 4.5");
    await expect(page.getByRole("status")).toContainText("is locked");
  });

  test("a person sets a monthly cap of their own and removes it", async () => {
    const { page } = alice;
    await page.goto("/settings#budget");
    const budget = page.getByLabel("Monthly budget");
    await expect(budget).toContainText("no cap a month");
    await page.getByLabel("Your monthly cap in US dollars").fill("12.5");
    await page.getByRole("button", { name: "Set my cap" }).click();
    await expect(budget).toContainText("$12.50 a month");
    await page.reload();
    await expect(page.getByLabel("Monthly budget")).toContainText("$12.50 a month");
    await page.getByRole("button", { name: "Remove my cap" }).click();
    await expect(page.getByLabel("Monthly budget")).toContainText("no cap a month");
  });
});
