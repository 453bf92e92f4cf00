// Fails when the built app's JavaScript is over budget (issue 5: at most 300 KB gzipped).
// Run after `npm run build`.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const LIMIT = 300 * 1024;
const assets = join(dirname(fileURLToPath(import.meta.url)), "../dist/assets");
let total = 0;
for (const name of readdirSync(assets).filter((n) => n.endsWith(".js"))) {
  const gz = gzipSync(readFileSync(join(assets, name)), { level: 9 }).length;
  console.log(`${name}: ${(gz / 1024).toFixed(1)} KB gzipped`);
  total += gz;
}
console.log(`total JavaScript: ${(total / 1024).toFixed(1)} KB gzipped (limit ${LIMIT / 1024} KB)`);
if (total === 0 || total > LIMIT) process.exit(1);
