// A small `expect` over Playwright locators: each assertion waits (up to the context's default
// timeout) for the condition, so tests never sleep to synchronise.
export function expect(locator) {
  return {
    toBeVisible: () => locator.first().waitFor({ state: "visible" }),
    toBeHidden: () => locator.first().waitFor({ state: "hidden" }),
    async toContainText(pattern) {
      const re = pattern instanceof RegExp ? pattern : new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
      await locator.filter({ hasText: re }).first().waitFor({ state: "visible" });
    },
  };
}
