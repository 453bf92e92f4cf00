// The web client's lint: TypeScript's recommended rules and React's rules of hooks (a hook
// called conditionally, or an effect missing a dependency, is a bug a type check cannot see).
import js from "@eslint/js";
import reactHooks from "eslint-plugin-react-hooks";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "src/gen/", "node_modules/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["src/**/*.{ts,tsx}"],
    plugins: { "react-hooks": reactHooks },
    rules: {
      "react-hooks/rules-of-hooks": "error",
      "react-hooks/exhaustive-deps": "error",
      // `const { type: _type, ...rest } = e` is how a field is left out of a copy.
      "@typescript-eslint/no-unused-vars": ["error", { ignoreRestSiblings: true }],
    },
  },
  {
    // Node scripts and the browser tests (whose page.evaluate callbacks run in the browser).
    files: ["e2e/**/*.mjs", "scripts/**/*.mjs", "*.js", "*.ts"],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
);
