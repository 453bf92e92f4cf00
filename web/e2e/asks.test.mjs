// The person in the loop, in the browser: the agent's questions and, in `ask` mode, its
// permission asks, answered from the transcript. Real den, sandbox and OpenCode; scripted model.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { expect } from "./expect.mjs";
import { SHOTS, signedIn, startBrowser, startDen } from "./harness.mjs";
import { MODEL, startScriptedModel } from "./scripted-model.mjs";

let den, browser, model, alice;
before(async () => {
  model = await startScriptedModel();
  den = await startDen({ model });
  browser = await startBrowser();
  alice = await signedIn(browser, den, "alice");
  alice.context.setDefaultTimeout(60_000); // sandbox start on a loaded 2-core machine
});
beforeEach(() => model.clear());
after(async () => {
  await browser?.close();
  await den?.stop();
  await model?.close();
});

async function scriptedSession(page, prompt, approvalMode = "auto") {
  const res = await page.request.post("/api/sessions", {
    headers: { "X-Den-Csrf": "1" },
    data: { repository: den.repo, model: `scripted/${MODEL}`, prompt, approvalMode },
  });
  assert.equal(res.status(), 201, await res.text());
  const { id } = await res.json();
  await page.goto(`/s/${id}`);
  return id;
}

const transcript = (page) => page.getByRole("list", { name: "Transcript" });

describe("questions", () => {
  test("the agent's question shows its options; choosing one answers it and the turn goes on", async () => {
    const { page } = alice;
    model.push([
      {
        tool: "question",
        args: {
          questions: [
            {
              question: "Which colour should the button be?",
              header: "Button colour",
              options: [
                { label: "blue", description: "calm" },
                { label: "red", description: "loud" },
              ],
            },
          ],
        },
      },
    ]);
    model.push([{ text: ["Blue ", "it is."] }]);
    await scriptedSession(page, "make a button");
    const card = transcript(page).getByRole("region", { name: "The agent asks you" });
    await expect(card.getByText("Which colour should the button be?")).toBeVisible();
    // The agent waits for the person: the header and the tab title say so.
    await expect(page.getByLabel("State")).toContainText("Agent waiting");
    assert.match(await page.title(), /^\? /);
    await page.screenshot({ path: `${SHOTS}/question-pending.png` });
    await card.getByRole("button", { name: "blue" }).click();
    await card.getByRole("button", { name: "Answer" }).click();
    await expect(card.getByRole("note")).toContainText("Answered by alice: blue");
    await expect(transcript(page).getByText("Blue it is.")).toBeVisible();
    await expect(page.getByLabel("State")).toContainText("Agent idle");
  });
});

describe("approvals", () => {
  test("in ask mode a command waits: rejected with a message it does not run, allowed once it does", async () => {
    const { page } = alice;
    model.push([{ tool: "bash", args: { command: "echo ran > rejected.txt", description: "Write a file" } }]);
    model.push([{ text: ["Understood, ", "I will not."] }]);
    const id = await scriptedSession(page, "write rejected.txt", "ask");
    assert.equal(await page.getByLabel("Approval mode").inputValue(), "ask");
    const first = transcript(page).getByRole("region", { name: "The agent asks for permission" }).first();
    await expect(first.getByLabel("Command")).toContainText("echo ran > rejected.txt");
    await page.screenshot({ path: `${SHOTS}/permission-pending.png` });
    await first.getByLabel("Message to the agent").fill("not now");
    await first.getByRole("button", { name: "Reject" }).click();
    await expect(first.getByRole("note")).toContainText("Rejected by alice");
    await expect(first.getByRole("note")).toContainText("not now");
    await expect(transcript(page).getByText("Understood, I will not.")).toBeVisible();

    model.push([{ tool: "bash", args: { command: "echo ran > approved.txt", description: "Write a file" } }]);
    model.push([{ text: ["Done."] }]);
    await page.getByLabel("Prompt", { exact: true }).fill("write approved.txt");
    await page.getByLabel("Prompt", { exact: true }).press("Enter");
    const second = transcript(page).getByRole("region", { name: "The agent asks for permission" }).nth(1);
    await expect(second.getByLabel("Command")).toContainText("echo ran > approved.txt");
    await second.getByRole("button", { name: "Allow once" }).click();
    await expect(second.getByRole("note")).toContainText("Allowed once by alice");
    await expect(transcript(page).getByText("Done.")).toBeVisible();

    // The workspace has what was allowed and not what was rejected.
    const diff = await (await page.request.get(`/api/sessions/${id}/diff`)).json();
    const files = diff.files.map((f) => f.path);
    assert.ok(files.includes("approved.txt"), JSON.stringify(files));
    assert.ok(!files.includes("rejected.txt"), JSON.stringify(files));
  });
});
