// Time travel: a moment in the URL (or picked on the strip) shows the
// counts, the tail and the chart as of then, marked as the past; two
// moments compare side by side; "Back to live" resumes the live views.
import { expect, test } from "@playwright/test";
import { publishAll, times } from "../pages/nats";
import { OverviewPage } from "../pages/overview";
import { TailPage } from "../pages/tail";

const publish = (subject: string, n: number) =>
  publishAll(times(subject, n, (i) => ({ level: "info", msg: `${subject} #${i}` })));

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("a moment shows the counts, tail and chart of then; back to live resumes", async ({ page }, testInfo) => {
  const overview = new OverviewPage(page);
  await overview.open();
  const prefix = `e2e.tt${Math.random().toString(36).slice(2, 7)}`;
  const [a, b] = [`${prefix}.before`, `${prefix}.after`];

  await publish(a, 4);
  await expect(overview.rowCount(a)).toHaveText("4");
  await pause(1_200);
  const t = Date.now();
  await pause(1_200);
  await publish(b, 6);
  await expect(overview.rowCount(b)).toHaveText("6");
  await pause(1_200);
  const t2 = Date.now();

  // Picking on the strip travels (and says so).
  const box = await overview.strip.boundingBox();
  expect(box).not.toBeNull();
  await overview.strip.click({ position: { x: box!.width * 0.98, y: box!.height / 2 } });
  await expect(overview.pastBanner).toBeVisible();
  await expect.poll(() => overview.at()).not.toBeNull();

  // The moment between the two bursts: only the first has happened.
  await overview.open(`?at=${t}`);
  await expect(overview.pastBanner).toContainText("Viewing the past");
  await expect(page.getByTestId("past-at")).toHaveText(new Date(t).toISOString());
  await expect(overview.rowCount(a)).toHaveText("4");
  await expect(overview.row(b)).toHaveCount(0);
  await expect(overview.rateChart).toHaveAttribute("data-at", String(t));
  await page.screenshot({ path: testInfo.outputPath("time-travel-overview.png"), fullPage: true });

  // The tail of then holds the first burst only.
  const tail = new TailPage(page);
  await tail.open({ subject: `${prefix}.>`, at: String(t) });
  await expect(tail.pastBanner).toBeVisible();
  await expect(tail.rows).toHaveCount(4);
  await expect(tail.row(b)).toHaveCount(0);
  await page.screenshot({ path: testInfo.outputPath("time-travel-tail.png"), fullPage: true });

  // Compare: pin the first moment, then view the second.
  await overview.open(`?at=${t}`);
  await page.getByTestId("pin-compare").click();
  await expect.poll(() => new URL(page.url()).searchParams.get("cmp")).toBe(String(t));
  await overview.open(`?at=${t2}&cmp=${t}`);
  const row = page.locator(`[data-testid="compare-row"][data-label="${b}"]`);
  await expect(row.getByTestId("compare-a")).toHaveText("0");
  await expect(row.getByTestId("compare-b")).toHaveText("6");
  await expect(row.getByTestId("compare-change")).toHaveText("+6");
  await page.screenshot({ path: testInfo.outputPath("time-travel-compare.png"), fullPage: true });

  // One click back to live: the banner goes, live counts resume.
  await overview.backToLive();
  expect(overview.at()).toBeNull();
  await expect(overview.rowCount(b)).toHaveText("6");
  await publish(b, 1);
  await expect(overview.rowCount(b)).toHaveText("7");
  expect(overview.consoleErrors, "no console errors or hydration warnings").toEqual([]);
});

test("playing from a moment moves it on, and pause stops it", async ({ page }) => {
  const overview = new OverviewPage(page);
  const start = Date.now() - 60_000;
  await overview.open(`?at=${start}`);
  await page.getByTestId("play-10x").click();
  await expect.poll(() => overview.at() ?? 0, { timeout: 5_000 }).toBeGreaterThan(start + 5_000);
  await page.getByTestId("pause").click();
  const stopped = overview.at();
  await pause(1_200);
  expect(overview.at()).toBe(stopped);
  await page.getByTestId("step-back").click();
  await expect.poll(() => overview.at()).toBe(stopped! - 1_000);
  // The same from the keyboard: ] one second on, [ one back, L live.
  await page.keyboard.press("]");
  await expect.poll(() => overview.at()).toBe(stopped);
  await page.keyboard.press("[");
  await expect.poll(() => overview.at()).toBe(stopped! - 1_000);
  await page.keyboard.press("L");
  await expect(overview.pastBanner).toHaveCount(0);
  expect(overview.at()).toBeNull();
});
