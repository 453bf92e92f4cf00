// Runs the browser tests: `npm run e2e` (what needs no agent: quick) or
// `npm run e2e -- --streaming` (also the live tests: real sandboxes, the real OpenCode, and a
// scripted model; what web/scripts/check runs). Uses node's own test runner; files run one after
// another (each starts its own den).
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const files = ["basic.test.mjs", "github.test.mjs", "security.test.mjs"];
if (process.argv.includes("--streaming")) files.push("streaming.test.mjs", "following.test.mjs");
const r = spawnSync(process.execPath, ["--test", "--test-concurrency=1", ...files.map((f) => join(here, f))], { stdio: "inherit" });
process.exit(r.status ?? 1);
