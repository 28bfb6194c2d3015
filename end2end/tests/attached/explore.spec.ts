// The metric explorer: choosing a metric and tags charts its percentiles
// and lists exactly the series taken, with their numbers.
import { expect, test } from "@playwright/test";
import { BasePage } from "../pages/base";
import { publishAll, times } from "../pages/nats";

test("choosing a metric and tags charts it and lists its series", async ({ page }, testInfo) => {
  const metric = `e2e_lat_${Math.random().toString(36).slice(2, 7)}`;
  await publishAll([
    ...times("e2e.metrics", 50, (i) => ({ name: metric, value: i + 1, tags: { route: "/pay" } })),
    ...times("e2e.metrics", 50, (i) => ({ name: metric, value: (i + 1) * 100, tags: { route: "/ship" } })),
  ]);

  const explore = new BasePage(page);
  await explore.goto("/explore");
  const select = page.getByTestId("explore-metric");
  await expect(select.locator(`option[value="${metric}"]`)).toHaveCount(1);
  await select.selectOption(metric);
  await expect.poll(() => new URL(page.url()).searchParams.get("metric")).toBe(metric);
  const rows = page.getByTestId("explore-row");
  await expect(rows).toHaveCount(2);
  const chart = page.getByTestId("explore-chart");
  await expect(chart).toHaveAttribute("data-total", "100");

  await page.getByTestId("explore-tags").fill("route=/pay");
  await page.getByTestId("explore-apply").click();
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toHaveAttribute("data-series", `${metric}{route=/pay}`);
  await expect(rows.first().getByTestId("explore-count")).toHaveText("50");
  // DDSketch: at most 1% relative error.
  const p50 = Number(await rows.first().getByTestId("explore-p50").innerText());
  expect(p50).toBeGreaterThan(24.5 * 0.99);
  expect(p50).toBeLessThan(25.5 * 1.01);
  await expect(chart).toHaveAttribute("data-total", "50");

  await page.getByTestId("explore-p90").click();
  await expect(page.getByTestId("explore-legend")).not.toContainText("p90");
  await expect(page.getByTestId("explore-legend")).toContainText("p99");
  await page.screenshot({ path: testInfo.outputPath("explore.png"), fullPage: true });

  // A link to it is served with its series and chart drawn, then hydrates.
  const link = `/explore?metric=${metric}&tags=${encodeURIComponent("route=/pay")}`;
  const html = await (await page.request.get(link)).text();
  expect(html.match(/data-testid="explore-row"/g) ?? []).toHaveLength(1);
  expect(html).toMatch(/data-testid="explore-chart"[^>]*data-total="50"/);
  await explore.goto(link);
  await expect(rows).toHaveCount(1);
  await expect(chart).toHaveAttribute("data-total", "50");

  // A hand-edited link with a bad percentile says what is wrong.
  await explore.goto(`/explore?metric=${metric}&p=75`);
  await expect(page.getByTestId("explore-error")).toContainText("75");
  expect(explore.consoleErrors).toEqual([]);
});
