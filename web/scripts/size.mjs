// Fails when the built app's JavaScript is over budget (issue 5: at most 300 KB gzipped), or
// when the main bundle carries the terminal emulator (xterm.js is loaded only when a terminal
// opens). Run after `npm run build`.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const LIMIT = 300 * 1024;
const dist = join(dirname(fileURLToPath(import.meta.url)), "../dist");
const assets = join(dist, "assets");
// The entry script index.html loads: everything else is a chunk loaded on demand.
const entry = /src="\/assets\/([^"]+\.js)"/.exec(readFileSync(join(dist, "index.html"), "utf8"))?.[1];
let total = 0;
let failed = false;
for (const name of readdirSync(assets).filter((n) => n.endsWith(".js"))) {
  const code = readFileSync(join(assets, name));
  const gz = gzipSync(code, { level: 9 }).length;
  console.log(`${name}: ${(gz / 1024).toFixed(1)} KB gzipped${name === entry ? " (main bundle)" : " (loaded on demand)"}`);
  total += gz;
  if (name === entry && code.includes("xterm-helper-textarea")) {
    console.log("the main bundle includes xterm.js: import it dynamically");
    failed = true;
  }
}
console.log(`total JavaScript: ${(total / 1024).toFixed(1)} KB gzipped (limit ${LIMIT / 1024} KB)`);
if (!entry || total === 0 || total > LIMIT || failed) process.exit(1);
