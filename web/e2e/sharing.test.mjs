// Fork, "Try variants" and read-only share links, with real sandboxes, the real OpenCode and
// the scripted model. Run with `npm run e2e -- --streaming`.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { expect } from "./expect.mjs";
import { SHOTS, signedIn, startBrowser, startDen } from "./harness.mjs";
import { MODEL, gate, startScriptedModel } from "./scripted-model.mjs";

let den, browser, model, alice;
before(async () => {
  model = await startScriptedModel();
  den = await startDen({ model });
  browser = await startBrowser();
  alice = await signedIn(browser, den, "alice");
  alice.context.setDefaultTimeout(60_000); // sandbox starts on a loaded 2-core machine
});
beforeEach(() => model.clear());
after(async () => {
  await browser?.close();
  await den?.stop();
  await model?.close();
});

const transcript = (page) => page.getByRole("list", { name: "Transcript" });

/** A session on the scripted model whose first turn has finished; returns its id. */
async function finishedSession(page, prompt, reply) {
  model.push([{ text: [reply] }]);
  const res = await page.request.post("/api/sessions", {
    headers: { "X-Den-Csrf": "1" },
    data: { repository: den.repo, model: `scripted/${MODEL}`, prompt },
  });
  assert.equal(res.status(), 201, await res.text());
  const { id } = await res.json();
  await page.goto(`/s/${id}`);
  await expect(transcript(page).getByText(reply)).toBeVisible();
  await expect(page.getByLabel("State")).toContainText("Agent idle");
  return id;
}

describe("fork", () => {
  test("Fork opens a new session with the source's conversation, which its next prompt continues", async () => {
    const { page } = alice;
    const source = await finishedSession(page, "Remember the word quince", "I will remember quince.");
    await page.getByRole("button", { name: "More", exact: true }).click();
    await page.getByRole("button", { name: "Fork", exact: true }).click();
    await page.waitForURL((url) => /\/s\/[0-9a-f-]+$/.test(url.pathname) && !url.pathname.endsWith(source));
    await expect(page.getByRole("heading", { name: /\(fork\)$/ })).toBeVisible();
    // The source's turn is the fork's history.
    await expect(transcript(page).getByText("Remember the word quince")).toBeVisible();
    await expect(transcript(page).getByText("I will remember quince.")).toBeVisible();
    model.push([{ text: ["The word was quince."] }]);
    await page.getByLabel("Prompt", { exact: true }).fill("Which word?");
    await page.getByLabel("Prompt", { exact: true }).press("Enter");
    await expect(transcript(page).getByText("The word was quince.")).toBeVisible();
    const last = model.requests.filter((r) => r.agent).at(-1);
    assert.match(JSON.stringify(last.body.messages), /Remember the word quince/, "the fork's request carries the source's conversation");
    await page.screenshot({ path: `${SHOTS}/fork.png` });
    // The source still has only its own turn.
    await page.goto(`/s/${source}`);
    await expect(transcript(page).getByText("I will remember quince.")).toBeVisible();
    assert.equal(await transcript(page).getByText("The word was quince.").count(), 0);
  });

  test("Try variants sends one prompt to each fork and shows them side by side", async () => {
    const { page } = alice;
    // The source writes a file, so every variant starts with that change in its diff. (The
    // variants' turns run at once and take the scripted replies in any order: text only.)
    model.push([{ tool: "write", args: { filePath: "shared.txt", content: "from the source\n" } }]);
    await finishedSession(page, "Start of variants", "Ready for variants.");
    model.push([{ text: ["one variant"] }]);
    model.push([{ text: ["another variant"] }]);
    await page.getByRole("button", { name: "More", exact: true }).click();
    await page.getByRole("button", { name: "Try variants…" }).click();
    const dialog = page.getByRole("dialog", { name: "Try variants" });
    await dialog.getByLabel("Variants").fill("2");
    await dialog.getByLabel("Prompt").fill("Write a file");
    await dialog.getByRole("button", { name: "Start 2 variants" }).click();
    await page.waitForURL(/\/variants\?/);
    page.setDefaultTimeout(180_000); // two sandboxes restore at once on a loaded machine
    for (const n of [1, 2]) {
      const variant = page.getByRole("region", { name: new RegExp(`variant ${n}/2`) });
      await expect(variant.getByLabel("Variant state")).toContainText("done");
      await expect(variant.getByText("shared.txt").first()).toBeVisible();
    }
    assert.equal(await page.getByRole("region", { name: /^Variant / }).count(), 2);
    page.setDefaultTimeout(60_000);
    await page.screenshot({ path: `${SHOTS}/variants.png` });
  });
});

describe("share links", () => {
  test("a share link opened in a browser with no den cookie shows the transcript streaming, until revoked", async () => {
    const { page } = alice;
    await finishedSession(page, "Shared beginnings", "Hello, viewers.");
    await page.getByRole("button", { name: "More", exact: true }).click();
    await page.getByRole("button", { name: "Share…" }).click();
    const dialog = page.getByRole("dialog", { name: "Share read-only" });
    await dialog.getByRole("button", { name: "Create link" }).click();
    const link = await dialog.getByLabel("Share link", { exact: true }).inputValue();
    assert.match(link, /\/share\/dsh_/);

    const stranger = await browser.newContext();
    stranger.setDefaultTimeout(60_000);
    const viewer = await stranger.newPage();
    await viewer.goto(link);
    await expect(viewer.getByRole("status", { name: "Viewer" })).toContainText("Live");
    await expect(transcript(viewer).getByText("Shared beginnings")).toBeVisible();
    await expect(transcript(viewer).getByText("Hello, viewers.")).toBeVisible();
    // Nothing to act with: no prompt box, no session actions, no sign-in.
    assert.equal(await viewer.getByLabel("Prompt", { exact: true }).count(), 0);
    assert.equal(await viewer.getByRole("button", { name: /More|Fork|Share|Delete|Changes/ }).count(), 0);

    // A turn streams to the viewer while it runs.
    const held = gate();
    model.push([{ text: ["Streaming to "] }, { hold: held.promise, text: ["everyone."] }]);
    await dialog.getByRole("button", { name: "Close" }).click();
    await page.getByLabel("Prompt", { exact: true }).fill("Say something live");
    await page.getByLabel("Prompt", { exact: true }).press("Enter");
    await expect(transcript(viewer).getByText("Say something live")).toBeVisible();
    await expect(transcript(viewer).getByText(/Streaming to/)).toBeVisible();
    held.open();
    await expect(transcript(viewer).getByText("Streaming to everyone.")).toBeVisible();
    await viewer.screenshot({ path: `${SHOTS}/share-viewer.png` });

    // Revoking closes the open viewer.
    await page.getByRole("button", { name: "More", exact: true }).click();
    await page.getByRole("button", { name: "Share…" }).click();
    await page.getByRole("dialog", { name: "Share read-only" }).getByRole("button", { name: "Revoke" }).click();
    await expect(viewer.getByRole("heading", { name: "This link does not work" })).toBeVisible();
    await stranger.close();
  });
});
