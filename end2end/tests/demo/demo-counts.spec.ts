// The README's run command (no arguments: demo mode) gives a page whose
// counts rise with no events published by the test.
import { expect, test } from "@playwright/test";
import { OverviewPage } from "../pages/overview";

test("demo mode shows counts rising on its own", async ({ page }, testInfo) => {
  const overview = new OverviewPage(page);
  await overview.open();

  await expect.poll(() => overview.total(), { timeout: 20_000 }).toBeGreaterThan(0);
  const first = await overview.total();
  await expect.poll(() => overview.total(), { timeout: 20_000 }).toBeGreaterThan(first);
  await expect(overview.row("logs.orders")).toBeVisible();
  await expect(overview.row("metrics.payments")).toBeVisible();
  await expect(overview.eventsPerSec).not.toHaveText("0");

  await page.waitForTimeout(1_500); // let the rates settle for the picture
  await page.screenshot({ path: testInfo.outputPath("overview-demo.png"), fullPage: true });
  expect(overview.consoleErrors, "no console errors or hydration warnings").toEqual([]);
});
