// The web client against a real den: what works without a running agent.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { expect } from "./expect.mjs";
import { SHOTS, createSession, signedIn, startBrowser, startDen } from "./harness.mjs";
import { startScriptedModel } from "./scripted-model.mjs";

// Sessions here run on the scripted model (no test reaches a hosted one); with no turn queued
// it answers each prompt with a fixed text.
let den, browser, alice, model;
before(async () => {
  model = await startScriptedModel();
  den = await startDen({ model, admins: ["root"] });
  browser = await startBrowser();
});
after(async () => {
  await browser?.close();
  await den?.stop();
  await model?.close();
});

describe("signing in", () => {
  test("the first-run link signs in as admin, who sets a password; the used link then explains itself", async () => {
    const fresh = await startDen({ users: [], sandboxes: false });
    try {
      const link = /https?:\/\/\S+\/api\/auth\/link\/\S+/.exec(fresh.stdout())?.[0];
      assert.ok(link, `no sign-in link in: ${fresh.stdout()}`);
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(link);
      await page.getByRole("heading", { name: "What should we build?" }).waitFor();
      await expect(page.getByRole("link", { name: /signed in as admin/ })).toBeVisible();

      // The admin has no password yet: settings sets one, and it signs in after signing out.
      await page.getByRole("link", { name: /signed in as admin/ }).click();
      const password = page.getByRole("region", { name: "Password" });
      await expect(password).toContainText(/no password yet/);
      assert.equal(await password.getByLabel("Current password").count(), 0);
      await password.getByLabel("New password", { exact: true }).fill("admin's own password");
      await password.getByLabel("Repeat new password").fill("admin's own password");
      await password.getByRole("button", { name: "Set password" }).click();
      await expect(password.getByRole("status")).toContainText(/Password set/);
      // Now it has one, changing it asks for it.
      await expect(password.getByLabel("Current password")).toBeVisible();
      await page.screenshot({ path: `${SHOTS}/settings-password.png` });
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.getByRole("heading", { name: "Sign in to den" }).waitFor();
      await page.getByLabel("Username").fill("admin");
      await page.getByLabel("Password").fill("admin's own password");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("heading", { name: "What should we build?" }).waitFor();
      await context.close();

      // The used link, opened again in a fresh browser, says what happened and what to do.
      const later = await browser.newContext();
      const again = await later.newPage();
      await again.goto(link);
      await again.getByRole("heading", { name: "Sign in to den" }).waitFor();
      await expect(again.getByRole("alert")).toContainText(/already used or has expired/);
      await expect(again.getByRole("alert")).toContainText(/den user link/);
      assert.equal(new URL(again.url()).search, "", "the error is taken off the address");
      await again.screenshot({ path: `${SHOTS}/sign-in-used-link.png` });
      await later.close();
    } finally {
      await fresh.stop();
    }
  });

  test("a wrong password shows an error and stays on the sign-in screen", async () => {
    const context = await browser.newContext({ baseURL: den.url });
    const page = await context.newPage();
    await page.goto("/");
    await page.getByRole("heading", { name: "Sign in to den" }).waitFor();
    await page.screenshot({ path: `${SHOTS}/sign-in.png` });
    await page.getByLabel("Username").fill("alice");
    await page.getByLabel("Password").fill("wrong");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("alert")).toContainText(/wrong username or password/i);
    assert.equal(await page.getByRole("heading", { name: "What should we build?" }).count(), 0);
    await context.close();
  });

  test("the right password lands on the home page, and a reload stays signed in", async () => {
    alice = await signedIn(browser, den, "alice");
    const { page } = alice;
    await expect(page.getByLabel("Sessions").getByText("No sessions yet.")).toBeVisible();
    await page.reload();
    // No flash of the sign-in screen while the sign-in state loads.
    const sawSignIn = page.getByRole("heading", { name: "Sign in to den" }).waitFor({ timeout: 1500 }).then(() => true, () => false);
    await page.getByRole("heading", { name: "What should we build?" }).waitFor();
    assert.equal(await sawSignIn, false);
    await page.getByLabel("Model").selectOption("openai/gpt-5.2");
    await page.screenshot({ path: `${SHOTS}/home.png` });
    // The system's dark preference is followed.
    await page.emulateMedia({ colorScheme: "dark" });
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.notEqual(bg, "rgb(255, 255, 255)");
    await page.screenshot({ path: `${SHOTS}/home-dark.png` });
    await page.emulateMedia({ colorScheme: "light" });
  });
});

describe("sessions", () => {
  let id;
  test("sending the first prompt creates the session and opens its page", async () => {
    const { page } = alice;
    id = await createSession(page, den);
    // On the scripted model: no browser test reaches a hosted one.
    const session = await (await page.request.get(`/api/sessions/${id}`)).json();
    assert.equal(session.model, den.model);
    // Titled after the first prompt, like the original product.
    await expect(page.getByRole("heading", { name: "Say hello", level: 1 })).toBeVisible();
    await expect(page.getByLabel("Sessions").getByRole("link", { name: /Say hello/ })).toBeVisible();
    // Reload-safe: the URL alone brings the page back.
    await page.reload();
    await expect(page.getByRole("heading", { name: "Say hello", level: 1 })).toBeVisible();
    await page.screenshot({ path: `${SHOTS}/session.png` });
  });

  test("the repository is offered again as a recent one", async () => {
    const { page } = alice;
    await page.goto("/");
    await page.getByRole("button", { name: `Use ${den.repo}` }).click();
    assert.equal(await page.getByLabel("Repository").inputValue(), den.repo);
  });

  test("the repository picker offers the admin's local repositories", async () => {
    const { page } = alice;
    await page.goto("/");
    // This den has no GitHub settings: the form says so (once the list came) and takes any URL.
    await expect(page.getByText("GitHub is not connected")).toBeVisible();
    const local = page.locator('#recent-repos option[label="demo (local)"]');
    assert.equal(await local.count(), 1);
    assert.equal(realpathSync(await local.getAttribute("value")), realpathSync(den.repo));
  });

  test("the sidebar shows each session's repository and model, and its search finds sessions by title or repository", async () => {
    const { page } = alice;
    // A second repository beside the test one (inside the allowed root), with a session on it.
    const other = join(dirname(den.repo), "gadget-repo");
    mkdirSync(other, { recursive: true });
    const git = (...args) => execFileSync("git", args, { cwd: other, stdio: "ignore" });
    git("init", "-q", "-b", "main");
    writeFileSync(join(other, "README.md"), "# gadget\n");
    git("add", ".");
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "init");
    const res = await page.request.post("/api/sessions", { headers: { "X-Den-Csrf": "1" }, data: { repository: other, model: den.model } });
    assert.equal(res.status(), 201, await res.text());
    await page.goto("/");
    const sidebar = page.getByLabel("Sessions");
    const gadget = sidebar.getByRole("link", { name: /gadget-repo/ });
    const hello = sidebar.getByRole("link", { name: /Say hello/ });
    await expect(gadget).toContainText("gadget-repo · scripted-model");
    await expect(hello).toContainText("demo · scripted-model");
    const search = sidebar.getByRole("searchbox", { name: "Search sessions" });
    await search.fill("GADGET");
    await expect(hello).toBeHidden();
    await expect(gadget).toBeVisible();
    await search.fill("say hello");
    await expect(gadget).toBeHidden();
    await expect(hello).toBeVisible();
    await search.fill("nothing like this");
    await expect(sidebar.getByText("No session matches “nothing like this”.")).toBeVisible();
    await search.fill("");
    await expect(gadget).toBeVisible();
    // Each item can be deleted from the list, after a confirmation.
    await gadget.hover();
    await sidebar.getByRole("button", { name: /^Delete session: gadget-repo/ }).click();
    await page.getByRole("dialog", { name: /Delete “gadget-repo”/ }).getByRole("button", { name: "Delete", exact: true }).click();
    await expect(gadget).toBeHidden();
    await expect(hello).toBeVisible();
    assert.equal((await page.request.get(`/api/sessions/${(await res.json()).id}`)).status(), 404);
  });

  test("rename", async () => {
    const { page } = alice;
    await page.goto(`/s/${id}`);
    await page.getByRole("button", { name: "Rename" }).click();
    await page.getByLabel("Session title").fill("Widget work");
    await page.getByLabel("Session title").press("Enter");
    await expect(page.getByRole("heading", { name: "Widget work", level: 1 })).toBeVisible();
    await expect(page.getByLabel("Sessions").getByRole("link", { name: /Widget work/ })).toBeVisible();
    await page.reload();
    await expect(page.getByRole("heading", { name: "Widget work", level: 1 })).toBeVisible();
    // Escape cancels a rename.
    await page.getByRole("button", { name: "Rename" }).click();
    await page.getByLabel("Session title").fill("Not this");
    await page.getByLabel("Session title").press("Escape");
    await expect(page.getByRole("heading", { name: "Widget work", level: 1 })).toBeVisible();
    await page.reload();
    await expect(page.getByRole("heading", { name: "Widget work", level: 1 })).toBeVisible();
  });

  test("another user sees none of it, and the URL says not found", async () => {
    const bob = await signedIn(browser, den, "bob");
    await expect(bob.page.getByLabel("Sessions").getByText("No sessions yet.")).toBeVisible();
    await bob.page.goto(`/s/${id}`);
    await expect(bob.page.getByRole("heading", { name: "Session not found" })).toBeVisible();
    assert.equal(await bob.page.getByText("Widget work").count(), 0);
    await bob.context.close();
  });

  test("delete asks first; cancel keeps the session, confirm removes it", async () => {
    const { page } = alice;
    await page.goto(`/s/${id}`);
    await page.getByRole("button", { name: "Delete", exact: true }).click();
    const dialog = page.getByRole("dialog", { name: "Delete this session?" });
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await expect(dialog).toBeHidden();
    await page.getByRole("button", { name: "Delete", exact: true }).click();
    await dialog.getByRole("button", { name: "Delete", exact: true }).click();
    await page.waitForURL((u) => u.pathname === "/");
    await expect(page.getByLabel("Sessions").getByText("No sessions yet.")).toBeVisible();
    await page.goto(`/s/${id}`);
    await expect(page.getByRole("heading", { name: "Session not found" })).toBeVisible();
  });
});

describe("settings", () => {
  test("create an API token: shown once, listed by name, then revoked", async () => {
    const { page } = alice;
    await page.getByRole("link", { name: /Settings/ }).click();
    await expect(page.getByText("No tokens yet.")).toBeVisible();
    await page.getByLabel("Token name").fill("laptop");
    await page.getByRole("button", { name: "Create token" }).click();
    const token = await page.getByLabel("New token").textContent();
    assert.match(token ?? "", /^den_/);
    await expect(page.getByLabel("Tokens").getByText("laptop")).toBeVisible();
    await page.screenshot({ path: `${SHOTS}/settings.png` });
    // The token works, and is never shown again.
    const me = await fetch(`${den.url}/api/auth/me`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(me.status, 200);
    await page.reload();
    await expect(page.getByLabel("Tokens").getByText("laptop")).toBeVisible();
    assert.equal(await page.getByText(token ?? "").count(), 0);
    await page.getByRole("button", { name: "Revoke laptop" }).click();
    await expect(page.getByText("No tokens yet.")).toBeVisible();
    const after = await fetch(`${den.url}/api/auth/me`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(after.status, 401);
  });

  test("a provider key unlocks its models in the picker; deleting it locks them again", async () => {
    const { page } = alice;
    const sonnet = "anthropic/claude-sonnet-4-5-20250929";
    const option = () => page.getByLabel("Model").locator(`option[value="${sonnet}"]`);
    await page.goto("/");
    await page.getByLabel("Model").selectOption(sonnet);
    assert.equal(await option().textContent(), "🔒 Claude Sonnet 4.5");
    await expect(page.getByRole("status")).toContainText("Claude Sonnet 4.5 is locked: needs your Anthropic key");
    await page.getByRole("link", { name: "Add key" }).click();
    await page.getByRole("heading", { name: "Providers" }).waitFor();
    const key = "sk-ant-api03-browser-test-key-K9x2";
    await page.getByLabel("Anthropic key").fill(key);
    await page.getByLabel("Anthropic key").press("Enter");
    await expect(page.getByLabel("Provider keys")).toContainText("…K9x2");
    assert.equal(await page.getByText(key).count(), 0, "the key is never shown back");
    await page.screenshot({ path: `${SHOTS}/settings-providers.png` });

    await page.goto("/");
    await page.getByLabel("Model").selectOption(sonnet);
    assert.equal(await option().textContent(), "Claude Sonnet 4.5");
    await expect(page.getByText(/per million tokens/)).toBeVisible();
    assert.equal(await page.getByText(/is locked/).count(), 0);

    await page.goto("/settings#providers");
    await page.getByRole("button", { name: "Delete Anthropic key" }).click();
    await expect(page.getByRole("button", { name: "Delete Anthropic key" })).toBeHidden();
    await page.goto("/");
    await page.getByLabel("Model").selectOption(sonnet);
    assert.equal(await option().textContent(), "🔒 Claude Sonnet 4.5");
    await expect(page.getByRole("status")).toContainText("is locked");
    await page.goto("/settings");
  });

  test("an admin sets a person's monthly cap; the person sees it and may only go lower", async () => {
    const admin = await signedIn(browser, den, "root");
    await admin.page.goto("/settings#budget");
    const table = admin.page.getByLabel("Everyone's budgets");
    await expect(table).toContainText("bob");
    await admin.page.getByLabel("Cap for bob").fill("25");
    await admin.page.getByLabel("Cap for bob").press("Enter");
    await expect(table.getByRole("row", { name: /bob/ })).toContainText("$25.00");
    await admin.page.screenshot({ path: `${SHOTS}/settings-budgets.png` });

    const person = await signedIn(browser, den, "bob");
    const { page } = person;
    await page.goto("/settings#budget");
    await expect(page.getByLabel("Monthly budget")).toContainText("$25.00 a month");
    assert.equal(await page.getByLabel("Everyone's budgets").count(), 0, "only admins see everyone's");
    await page.getByLabel("Your monthly cap in US dollars").fill("30");
    await page.getByRole("button", { name: "Set my cap" }).click();
    await expect(page.getByRole("alert")).toContainText("lower than the admin's cap");
    await expect(page.getByLabel("Monthly budget")).toContainText("$25.00 a month");

    await admin.page.getByRole("button", { name: "Default cap for bob" }).click();
    await expect(table.getByRole("row", { name: /bob/ })).toContainText("default");
    await admin.context.close();
    await person.context.close();
  });

  test("sign out returns to the sign-in screen, in the other tabs at their next request too", async () => {
    const { page } = alice;
    const other = await alice.context.newPage();
    await other.goto("/settings");
    await expect(other.getByText("No tokens yet.")).toBeVisible();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in to den" }).waitFor();
    await page.reload();
    await page.getByRole("heading", { name: "Sign in to den" }).waitFor();
    await other.getByLabel("Token name").fill("too late");
    await other.getByRole("button", { name: "Create token" }).click();
    await other.getByRole("heading", { name: "Sign in to den" }).waitFor();
    await other.close();
  });
});

describe("layout", () => {
  test("a 360px phone: no sideways scrolling, the sessions menu opens", async () => {
    const { context, page } = await signedIn(browser, den, "alice", { width: 360, height: 740 });
    await createSession(page, den, "phone");
    await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
    await expect(page.getByRole("status", { name: "Connection: Live" })).toBeVisible();
    const header = await page.locator(".session-head").boundingBox();
    assert.ok(header.height <= 110, `the session header takes ${header.height}px of 740`);
    await page.screenshot({ path: `${SHOTS}/session-phone.png` });
    await page.getByRole("button", { name: "Sessions menu" }).click();
    await expect(page.getByLabel("Sessions").getByRole("link", { name: /phone/ })).toBeVisible();
    // The open drawer dims the page; a tap beside it closes it.
    await page.mouse.click(345, 400);
    await expect(page.getByLabel("Sessions").getByRole("link", { name: /phone/ })).toBeHidden();
    await context.close();
  });

  test("fields' borders and warning text meet WCAG AA contrast, in light and dark mode", async () => {
    const { context, page } = await signedIn(browser, den, "bob");
    for (const colorScheme of ["light", "dark"]) {
      await page.emulateMedia({ colorScheme });
      const measured = await page.evaluate(() => {
        // Relative luminance and contrast ratio as WCAG 2 defines them.
        const rgb = (css) => {
          const probe = document.createElement("span");
          probe.style.color = css;
          document.body.append(probe);
          const [r, g, b] = getComputedStyle(probe).color.match(/\d+(\.\d+)?/g).map(Number);
          probe.remove();
          return [r, g, b];
        };
        const lum = ([r, g, b]) =>
          [r, g, b].map((c) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4)).reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
        const ratio = (a, b) => {
          const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
          return (hi + 0.05) / (lo + 0.05);
        };
        const vars = getComputedStyle(document.documentElement);
        const bg = rgb(vars.getPropertyValue("--bg"));
        const bg2 = rgb(vars.getPropertyValue("--bg2"));
        const field = rgb(getComputedStyle(document.querySelector("textarea")).borderTopColor);
        const warn = rgb(vars.getPropertyValue("--warn"));
        return { field: Math.min(ratio(field, bg), ratio(field, bg2)), warn: Math.min(ratio(warn, bg), ratio(warn, bg2)) };
      });
      assert.ok(measured.field >= 3, `${colorScheme}: field border ${measured.field.toFixed(2)}:1`);
      assert.ok(measured.warn >= 4.5, `${colorScheme}: warning text ${measured.warn.toFixed(2)}:1`);
    }
    await context.close();
  });

  test("axe-core finds no serious accessibility violation on home, a session and settings, in light and dark mode", async () => {
    const axe = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
    const { context, page } = await signedIn(browser, den, "bob");
    const id = await createSession(page, den, "accessibility check");
    const found = [];
    for (const colorScheme of ["light", "dark"]) {
      await page.emulateMedia({ colorScheme });
      for (const [path, ready] of [
        ["/", page.getByRole("heading", { name: "What should we build?" })],
        [`/s/${id}`, page.getByRole("status", { name: "Connection: Live" })],
        ["/settings", page.getByRole("heading", { name: "Providers" })],
      ]) {
        await page.goto(path);
        await ready.waitFor();
        // Through DevTools, not a <script> tag: den's Content-Security-Policy refuses inline scripts.
        await page.evaluate(axe);
        const violations = await page.evaluate(async () => {
          const r = await window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] });
          return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
        });
        for (const v of violations) found.push(`${colorScheme} ${path === "/" || path === "/settings" ? path : "session"} ${v}`);
      }
    }
    await page.emulateMedia({ colorScheme: "light" });
    assert.deepEqual(found, []);
    await context.close();
  });

  test("a page that fails to render says so, instead of going blank", async () => {
    const { context, page } = await signedIn(browser, den, "bob");
    const id = "00000000-0000-4000-8000-000000000000";
    // A session record the page cannot draw (no repository): the failure is caught and told.
    await page.route(`**/api/sessions/${id}`, (route) =>
      route.fulfill({ json: { id, title: "broken", status: "idle", model: "m", createdAt: "2026-01-01T00:00:00Z", updatedAt: "2026-01-01T00:00:00Z", lastActivityAt: "2026-01-01T00:00:00Z" } }),
    );
    await page.goto(`/s/${id}`);
    await expect(page.getByRole("alert").filter({ hasText: "Something went wrong on this page" })).toBeVisible();
    // The rest of the app still works.
    await page.getByLabel("Sessions").getByRole("link", { name: "New session" }).click();
    await expect(page.getByRole("heading", { name: "What should we build?" })).toBeVisible();
    await context.close();
  });

  test("a long title is cut short on one line and leaves the session's actions beside it", async () => {
    const { context, page } = await signedIn(browser, den, "bob");
    const id = await createSession(page, den, "long title");
    const long = "A very long session title that goes on and on ".repeat(3).trim();
    const res = await page.request.patch(`/api/sessions/${id}`, { headers: { "X-Den-Csrf": "1" }, data: { title: long } });
    assert.equal(res.status(), 200, await res.text());
    const title = page.getByRole("heading", { level: 1, name: long });
    await expect(title).toBeVisible();
    const t = await title.boundingBox();
    const del = await page.getByRole("button", { name: "Delete", exact: true }).boundingBox();
    assert.ok(t.height < 40, `the title takes one line (${t.height}px)`);
    assert.ok(del.y < t.y + t.height, "the actions stay on the title's row");
    assert.ok((await page.locator(".session-head").boundingBox()).height < 110, "the header stays short");
    await page.screenshot({ path: `${SHOTS}/session-long-title.png` });
    await context.close();
  });

  test("client-side routes survive a reload; unknown ones say so", async () => {
    const res = await fetch(`${den.url}/settings`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /<div id="root">/);
    const { context, page } = await signedIn(browser, den, "bob");
    await page.goto("/no/such/page");
    await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
    await context.close();
  });
});
