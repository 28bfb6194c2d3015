// The product's budget: the release wasm a first visit loads is at most
// 1 MB uncompressed, on every page. The site is built with `--split`: the
// main bundle (shell, time bar, live client) plus the page's own chunks and
// the chunks it shares with other pages. Counted as Chromium receives them
// (every `.wasm` response of a fresh browser context), once the page is live
// and its panels are drawn, in demo mode (every panel has data).
import { expect, test } from "@playwright/test";
import { BasePage } from "../pages/base";

const BUDGET = 1_000_000;
const PAGES = ["/", "/tail", "/explore", "/flows", "/cqrs", "/topology", "/schemas"];

for (const path of PAGES) {
  test(`a first visit of ${path} loads at most 1 MB of wasm`, async ({ browser }) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const loaded = new Map<string, number>();
    const pending: Promise<void>[] = [];
    page.on("response", (r) => {
      if (new URL(r.url()).pathname.endsWith(".wasm")) {
        pending.push(r.body().then((b) => void loaded.set(r.url(), b.length)));
      }
    });
    const base = new BasePage(page);
    await base.goto(path);
    await page.waitForLoadState("networkidle");
    await Promise.all(pending);
    const total = [...loaded.values()].reduce((a, b) => a + b, 0);
    const files = [...loaded].map(([url, n]) => `${url.split("/").pop()}: ${n}`).join(", ");
    console.log(`${path}: ${total} bytes of wasm (${files})`);
    expect(loaded.size, "the page loads its wasm").toBeGreaterThan(0);
    expect(total, `${path} loads ${files}`).toBeLessThanOrEqual(BUDGET);
    expect(base.consoleErrors, "no console errors or hydration warnings").toEqual([]);
    await context.close();
  });
}
