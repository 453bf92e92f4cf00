// The session terminal (xterm.js over den's terminal WebSocket, a real shell in a real sandbox)
// and notifications when a turn ends in a hidden tab. Live: run with `npm run e2e -- --streaming`.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { expect } from "./expect.mjs";
import { signedIn, startBrowser, startDen } from "./harness.mjs";
import { MODEL, startScriptedModel } from "./scripted-model.mjs";

let den, browser, model, alice;
before(async () => {
  model = await startScriptedModel();
  den = await startDen({ model });
  browser = await startBrowser();
  alice = await signedIn(browser, den, "alice");
  alice.context.setDefaultTimeout(60_000); // sandbox start and clone on a loaded 2-core machine
});
after(async () => {
  await browser?.close();
  await den?.stop();
  await model?.close();
});

/** Creates a session on the scripted model and opens its page. */
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

describe("the terminal", () => {
  test("opens a shell in the session's sandbox: typed echo comes back", async () => {
    const { page } = alice;
    model.push([{ text: ["Sandbox ready."] }]);
    await scriptedSession(page, "start the sandbox");
    await expect(transcript(page).getByText("Sandbox ready.")).toBeVisible();
    // xterm.js is not in the page until a terminal opens.
    assert.equal(await page.evaluate(() => document.querySelector(".xterm") === null), true);
    await page.getByRole("button", { name: "Terminal" }).click();
    const screen = page.getByTestId("terminal-screen");
    await expect(page.getByLabel("Terminal").getByText("A shell in the session's sandbox")).toBeVisible();
    await screen.click();
    await page.keyboard.type("echo den-$((6 * 7))");
    await page.keyboard.press("Enter");
    await expect(screen.locator(".xterm-rows")).toContainText("den-42");
    await page.getByRole("button", { name: "Close terminal" }).click();
    await expect(screen).toBeHidden();
  });
});

/** Records every notification the page shows, and lets the test hide the tab. */
function observeNotifications() {
  window.__notifications = [];
  window.__hidden = false;
  Object.defineProperty(document, "visibilityState", { configurable: true, get: () => (window.__hidden ? "hidden" : "visible") });
  Object.defineProperty(document, "hidden", { configurable: true, get: () => window.__hidden });
  const Real = window.Notification;
  function Observed(title, options) {
    window.__notifications.push({ title, body: options?.body ?? "" });
    return new Real(title, options);
  }
  Object.defineProperty(Observed, "permission", { get: () => Real.permission });
  Observed.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Observed;
}

describe("notifications", () => {
  test("a turn that ends in a hidden tab notifies (once turned on) and marks the title until the tab is seen", async () => {
    const context = (await signedIn(browser, den, "bob")).context;
    context.setDefaultTimeout(60_000);
    await context.grantPermissions(["notifications"], { origin: den.url });
    await context.addInitScript(observeNotifications);
    const page = await context.newPage();

    // Off by default: turned on in Settings.
    await page.goto("/settings");
    const toggle = page.getByLabel("Notify me when a turn ends in a hidden tab");
    assert.equal(await toggle.isChecked(), false);
    await toggle.check();
    await page.waitForFunction(() => localStorage.getItem("den.notifications") === "on");

    model.push([{ text: ["First answer."] }]);
    await scriptedSession(page, "first question");
    await expect(transcript(page).getByText("First answer.")).toBeVisible();
    // Seen while visible: no notification.
    assert.deepEqual(await page.evaluate(() => window.__notifications), []);

    model.push([{ text: ["Second answer."] }]);
    await page.evaluate(() => {
      window.__hidden = true;
      document.dispatchEvent(new Event("visibilitychange"));
    });
    await page.getByLabel("Prompt", { exact: true }).fill("second question");
    await page.getByLabel("Prompt", { exact: true }).press("Enter");
    await page.waitForFunction(() => window.__notifications.length === 1);
    const [shown] = await page.evaluate(() => window.__notifications);
    assert.equal(shown.title, "The agent finished");
    await page.waitForFunction(() => document.title.startsWith("✔ "));

    await page.evaluate(() => {
      window.__hidden = false;
      document.dispatchEvent(new Event("visibilitychange"));
    });
    await page.waitForFunction(() => !document.title.startsWith("✔ "));

    // A failed turn in a hidden tab says so.
    model.push({ error: { status: 400, message: "scripted refusal" } });
    await page.evaluate(() => {
      window.__hidden = true;
      document.dispatchEvent(new Event("visibilitychange"));
    });
    await page.getByLabel("Prompt", { exact: true }).fill("third question");
    await page.getByLabel("Prompt", { exact: true }).press("Enter");
    await page.waitForFunction(() => window.__notifications.length === 2);
    const failed = (await page.evaluate(() => window.__notifications))[1];
    assert.equal(failed.title, "The turn failed");
    await page.waitForFunction(() => document.title.startsWith("✖ "));
    await context.close();
  });
});
