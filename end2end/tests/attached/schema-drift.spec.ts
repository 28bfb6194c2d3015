// Schema watch: a steady payload shape, then a field changing type, raises
// one drift: a badge in the top bar, the schema marked on the Schemas page,
// the field's types shown; payload values stay text.
import { expect, test } from "@playwright/test";
import { SchemasPage } from "../pages/eda";
import { publishAll, times } from "../pages/nats";

test("a field changing type raises a drift badge", async ({ page }, testInfo) => {
  const schemas = new SchemasPage(page);
  await schemas.open();
  const key = "e2e.schema.pay · Paid"; // "e2e" is a name, not an id: kept
  const steady = times("e2e.schema.pay", 25, (i) => ({
    type: "Paid",
    amount: i + 0.5,
    note: "<img src=x onerror=\"window.__xss=1\">",
  }));
  await publishAll(steady);
  await expect(schemas.schema(key)).toBeVisible({ timeout: 20_000 });
  await expect(schemas.schema(key).getByTestId("drift-badge")).toHaveCount(0);

  await publishAll([["e2e.schema.pay", { type: "Paid", amount: "12.50", note: "x" }]]);
  await expect(page.getByTestId("drift-badge-top")).toBeVisible({ timeout: 20_000 });
  await expect(schemas.schema(key).getByTestId("drift-badge")).toHaveText("1 drift", { timeout: 20_000 });
  await expect(schemas.field(key, "amount")).toContainText("number 96% · string 4%");
  // The example is shown as text, never as HTML.
  await expect(schemas.field(key, "note")).toContainText("<img src=x");
  expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
  await page.screenshot({ path: testInfo.outputPath("schemas.png"), fullPage: true });

  // The drift is an event in the log: the tail shows it.
  await page.getByTestId("drift-events").click();
  await expect(page.getByTestId("tail-row").first()).toContainText("eventscope.schema.drift", { timeout: 20_000 });
  expect(schemas.consoleErrors, "no console errors or hydration warnings").toEqual([]);
});
