import { defineConfig } from "vitest/config";

// `npm run dev` proxies the API (and the session WebSocket) to a den on its default address,
// so the page and the API share an origin as they do when den serves the built app.
const den = process.env.WEB_DEN_URL ?? "http://127.0.0.1:8787";

export default defineConfig({
  // JSX via esbuild's automatic runtime: no React plugin needed (no fast refresh, fewer deps).
  esbuild: { jsx: "automatic" },
  build: { target: "es2022", sourcemap: false, chunkSizeWarningLimit: 600 },
  server: { proxy: { "/api": { target: den, ws: true, changeOrigin: false } } },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
