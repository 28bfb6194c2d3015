// The overview's events-per-second chart redraws as events are published,
// its legend names the levels seen, and its window can be changed.
import { expect, test } from "@playwright/test";
import { publishAll, times } from "../pages/nats";
import { OverviewPage } from "../pages/overview";

test("the rate chart counts published events by level", async ({ page }, testInfo) => {
  const overview = new OverviewPage(page);
  await overview.open();
  await expect(overview.rateChart).toBeVisible();
  await expect(overview.rateChart.locator("svg")).toHaveCount(1);
  const before = await overview.chartTotal();

  const subject = `e2e.${Math.random().toString(36).slice(2, 8)}.chart`;
  await publishAll([
    ...times(subject, 40, (i) => ({ level: "error", msg: `boom ${i}` })),
    ...times(subject, 60, (i) => ({ level: "info", msg: `ok ${i}` })),
  ]);
  await expect.poll(() => overview.chartTotal()).toBeGreaterThanOrEqual(before + 100);
  await expect(overview.legend).toContainText("error");
  await expect(overview.legend).toContainText("info");
  await expect(page.getByTestId("top_subjects")).toContainText(subject);
  await expect(page.getByTestId("top_errors")).toContainText("boom");

  const svgBefore = await overview.rateChart.innerHTML();
  await page.getByTestId("chart-window-1m").click();
  await expect(page.getByTestId("chart-window-1m")).toHaveAttribute("aria-pressed", "true");
  await expect.poll(() => overview.rateChart.innerHTML()).not.toBe(svgBefore);
  await page.screenshot({ path: testInfo.outputPath("overview-chart.png"), fullPage: true });
  expect(overview.consoleErrors, "no console errors or hydration warnings").toEqual([]);
});
