// The web client under den's security headers: the app works with a strict Content-Security-
// Policy (no inline script, only den's own scripts), and the policy really stops what it should.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { expect } from "./expect.mjs";
import { createSession, signedIn, startBrowser, startDen } from "./harness.mjs";
import { startScriptedModel } from "./scripted-model.mjs";

let den, browser, model;
before(async () => {
  model = await startScriptedModel();
  den = await startDen({ model });
  browser = await startBrowser();
});
after(async () => {
  await browser?.close();
  await den?.stop();
  await model?.close();
});

/** Records every CSP violation a page of `context` reports, before any of den's code runs. */
async function recordViolations(context) {
  await context.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
    });
  });
}

test("the app runs under its content security policy, which stops an injected inline script", async () => {
  const response = await fetch(`${den.url}/`);
  const policy = response.headers.get("content-security-policy") ?? "";
  assert.match(policy, /script-src 'self'(;|$)/, policy);
  assert.match(policy, /frame-ancestors 'none'/, policy);
  assert.equal(response.headers.get("x-content-type-options"), "nosniff");
  assert.equal(response.headers.get("referrer-policy"), "no-referrer");

  const { context, page } = await signedIn(browser, den, "alice");
  context.setDefaultTimeout(60_000); // sandbox start and clone on a loaded 2-core machine
  await recordViolations(context);
  // A turn whose markdown carries code (highlighted) and a remote image: the policy keeps the
  // browser from fetching it (a transcript must not be able to ping a tracker).
  model.push([{ text: ["Here:\n\n```python\nprint(1 + 2)\n```\n\n", "![pixel](https://tracker.example/p.png)\n"] }]);
  await createSession(page, den, "show me code");
  await expect(page.getByText("print")).toBeVisible();
  await page.getByRole("link", { name: /signed in as alice/ }).click();
  await page.getByRole("region", { name: "Password" }).waitFor();
  await page.goBack();
  await expect(page.getByText("print")).toBeVisible();
  const pixel = "img-src blocked https://tracker.example";
  const seen = await page.evaluate(() => window.__violations);
  assert.ok(seen.some((v) => v.startsWith(pixel)), `the remote image was not blocked: ${JSON.stringify(seen)}`);
  assert.deepEqual(seen.filter((v) => !v.startsWith(pixel)), [], "the app itself broke the policy");

  // The policy is live: an inline script injected into the page does not run, and is reported.
  const ran = await page.evaluate(async () => {
    const script = document.createElement("script");
    script.textContent = "window.__injected = true";
    document.body.append(script);
    await new Promise((r) => setTimeout(r, 0)); // let the violation event be dispatched
    return window.__injected === true;
  });
  assert.equal(ran, false, "an inline script ran despite the policy");
  const violations = await page.evaluate(() => window.__violations);
  assert.ok(violations.some((v) => v.startsWith("script-src")), JSON.stringify(violations));
  await context.close();
});
