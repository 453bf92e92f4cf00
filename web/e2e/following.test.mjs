// Following a conversation: where the view opens, whether it follows new output, what shows the
// agent at work, and what stays in reach while text streams. Live (real sandbox, real OpenCode, a
// scripted model): run with `npm run e2e -- --streaming`.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { expect } from "./expect.mjs";
import { SHOTS, createSession, signedIn, startBrowser, startDen } from "./harness.mjs";
import { MODEL, gate, startScriptedModel } from "./scripted-model.mjs";

let den, browser, model, alice;
before(async () => {
  model = await startScriptedModel();
  den = await startDen({ model });
  browser = await startBrowser();
  alice = await signedIn(browser, den, "alice", { width: 1000, height: 700 });
  alice.context.setDefaultTimeout(60_000); // sandbox start and clone on a loaded 2-core machine
});
beforeEach(() => model.clear());
after(async () => {
  await browser?.close();
  await den?.stop();
  await model?.close();
});

async function scriptedSession(page, prompt) {
  const res = await page.request.post("/api/sessions", {
    headers: { "X-Den-Csrf": "1" },
    data: { repository: den.repo, model: `scripted/${MODEL}`, prompt },
  });
  assert.equal(res.status(), 201, await res.text());
  const { id } = await res.json();
  await page.goto(`/s/${id}`);
  return id;
}

const transcript = (page) => page.getByRole("list", { name: "Transcript" });
const promptBox = (page) => page.getByLabel("Prompt", { exact: true });
/** Pixels between the bottom of the view and the end of the page's scrolled content. */
const gapBelow = (page) =>
  page.evaluate(() => {
    const s = document.querySelector(".main");
    return s.scrollHeight - s.scrollTop - s.clientHeight;
  });
/** Waits until the view is at the end of the conversation. */
const atEnd = (page) =>
  page.waitForFunction(() => {
    const s = document.querySelector(".main");
    return s.scrollHeight - s.scrollTop - s.clientHeight < 30;
  });
/** Whether the element is inside the visible part of the scrolled page. */
const inView = (locator) =>
  locator.evaluate((el) => {
    const r = el.getBoundingClientRect();
    return r.bottom > 0 && r.top < window.innerHeight;
  });
const send = async (page, text) => {
  await promptBox(page).fill(text);
  await promptBox(page).press("Enter");
};
const longReply = (n, tag) => Array.from({ length: n }, (_, i) => `${tag} line ${i}.\n\n`);

describe("following the conversation", () => {
  test("a long session opens at its end; a new prompt and its answer are followed; scrolling up stops that and offers Jump to latest", async () => {
    const { page } = alice;
    model.push([{ text: longReply(150, "Old") }]);
    const id = await scriptedSession(page, "a long history");
    await expect(transcript(page).getByText("Old line 149.")).toBeVisible();
    // Opened afresh, the page lands at the end, not thousands of pixels above it.
    await page.goto(`/s/${id}`);
    await expect(transcript(page).getByText("Old line 149.")).toBeVisible();
    await atEnd(page);
    assert.ok(await inView(transcript(page).getByText("Old line 149.")));

    // A prompt: the person sees it and the working indicator before any output.
    const held = gate();
    const end = gate();
    model.push([{ hold: held.promise }, { text: longReply(40, "New") }, { hold: end.promise }, { text: ["The very end."] }]);
    await send(page, "continue please");
    const working = transcript(page).getByLabel("The agent is working");
    await expect(working).toBeVisible();
    assert.equal(await transcript(page).getByText("New line 0.").count(), 0, "the indicator shows before the first output");
    await atEnd(page);
    assert.ok(await inView(transcript(page).getByText("continue please")));
    assert.ok(await inView(working));
    assert.match(await page.title(), /^● /, "the tab title shows the agent at work");
    await expect(page.getByLabel("Sessions").getByRole("img", { name: "working" })).toBeVisible();
    await expect(page.getByLabel("State")).toContainText("Agent working");

    // New output is followed while the person is at the end.
    held.open();
    await expect(transcript(page).getByText("New line 39.")).toBeVisible();
    await atEnd(page);
    assert.ok(await inView(transcript(page).getByText("New line 39.")));

    // Scrolled up: no more following, and a way back.
    await page.mouse.move(500, 300);
    await page.mouse.wheel(0, -3000);
    const jump = page.getByRole("button", { name: "Jump to latest" });
    await expect(jump).toBeVisible();
    const before = await gapBelow(page);
    assert.ok(before > 500, `scrolled up ${before}px`);
    end.open();
    await transcript(page).getByText("The very end.").waitFor({ state: "attached" });
    await expect(page.getByLabel("State")).toContainText("Agent idle");
    assert.ok((await gapBelow(page)) > 500, "new output did not pull the reader back down");
    await jump.click();
    await atEnd(page);
    await expect(jump).toBeHidden();
    assert.ok(await inView(transcript(page).getByText("The very end.")));
    // Screen readers hear the turn's end, once, not each delta.
    await expect(page.getByRole("status", { name: "Agent announcements" })).toContainText("The agent finished.");
    assert.doesNotMatch(await page.title(), /^●/);
    await page.screenshot({ path: `${SHOTS}/session-following.png` });
  });

  test("a session made from the home page shows the agent at work while its sandbox starts, until the answer", async () => {
    const { page } = alice;
    const held = gate();
    model.push([{ hold: held.promise }, { text: ["Hello there."] }]);
    await createSession(page, den, "greet me");
    await expect(transcript(page).getByLabel("The agent is working")).toBeVisible();
    await expect(page.getByLabel("State")).toContainText("Agent working");
    held.open();
    await expect(transcript(page).getByText("Hello there.")).toBeVisible();
    await expect(page.getByLabel("State")).toContainText("Agent idle");
    await expect(transcript(page).getByLabel("The agent is working")).toBeHidden();
  });

  test("the queue stays pinned above the prompt box, and its buttons work while text streams", async () => {
    const { page } = alice;
    const held = gate();
    model.push([{ text: longReply(400, "Busy"), delayMs: 15 }, { hold: held.promise }]);
    await scriptedSession(page, "stream for a while");
    await expect(transcript(page).getByText("Busy line 2.")).toBeVisible();
    await send(page, "queued one");
    await send(page, "queued two");
    const queue = page.getByRole("region", { name: "Queued prompts" });
    await expect(queue.getByText("queued two")).toBeVisible();
    // Still streaming: the panel is in view, right above the prompt box.
    assert.equal(await transcript(page).getByText("Busy line 399.").count(), 0, "the reply is still streaming");
    const q = await queue.boundingBox();
    const box = await promptBox(page).boundingBox();
    assert.ok(q.y + q.height <= box.y && box.y - (q.y + q.height) < 80, `queue ${JSON.stringify(q)} above box ${JSON.stringify(box)}`);
    assert.ok(q.y >= 0 && box.y + box.height <= 700, "both in view");
    await queue.getByRole("button", { name: "Remove queued prompt: queued one" }).click();
    await expect(queue.getByText("queued one")).toBeHidden();
    await queue.getByRole("button", { name: "Clear all" }).click();
    await expect(queue).toBeHidden();
    await page.getByRole("button", { name: "Stop" }).click();
    await expect(transcript(page).getByText(/^Stopped/)).toBeVisible();
    held.open();
  });

  test("a follow-up typed while the previous send is in flight is sent after it, not dropped", async () => {
    const { page } = alice;
    model.push([{ text: ["Ready."] }]);
    await scriptedSession(page, "hello");
    await expect(transcript(page).getByText("Ready.")).toBeVisible();
    // Hold the first prompt's request, as a slow network would.
    const slow = gate();
    let calls = 0;
    await page.route("**/api/sessions/*/prompt", async (route) => {
      if (calls++ === 0) await slow.promise;
      await route.continue();
    });
    const held = gate();
    model.push([{ text: ["First answered."] }, { hold: held.promise }]);
    model.push([{ text: ["Second answered."] }]);
    await send(page, "first");
    await expect(promptBox(page)).toBeVisible();
    assert.equal(await promptBox(page).inputValue(), "", "the box empties at once");
    await send(page, "second");
    assert.equal(await promptBox(page).inputValue(), "");
    slow.open();
    await expect(transcript(page).getByText("First answered.")).toBeVisible();
    await expect(page.getByRole("region", { name: "Queued prompts" }).getByText("second")).toBeVisible();
    held.open();
    await expect(transcript(page).getByText("Second answered.")).toBeVisible();
    await page.unroute("**/api/sessions/*/prompt");
  });
});
