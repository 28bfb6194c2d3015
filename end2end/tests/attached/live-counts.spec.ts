// Events published to NATS by the test show up on the page, counted
// exactly per subject, without a reload.
import { expect, test } from "@playwright/test";
import { connect, StringCodec } from "nats";
import { OverviewPage } from "../pages/overview";

test("published events appear as live per-subject counts", async ({ page }, testInfo) => {
  const overview = new OverviewPage(page);
  await overview.open();

  const run = Math.random().toString(36).slice(2, 8);
  const orders = `e2e.${run}.orders`;
  const payments = `e2e.${run}.payments`;
  const nc = await connect({ servers: process.env.E2E_NATS_URL });
  const sc = StringCodec();
  try {
    const before = await overview.total();
    for (let i = 0; i < 30; i++) {
      nc.publish(orders, sc.encode(JSON.stringify({ level: "info", msg: `order ${i}` })));
    }
    await nc.flush();
    await expect(overview.rowCount(orders)).toHaveText("30");

    for (let i = 0; i < 12; i++) {
      nc.publish(payments, sc.encode(JSON.stringify({ level: "error", msg: "declined" })));
    }
    await nc.flush();
    await expect(overview.rowCount(payments)).toHaveText("12");
    // The earlier row did not move, and the total rose by exactly 42.
    await expect(overview.rowCount(orders)).toHaveText("30");
    await expect.poll(() => overview.total()).toBe(before + 42);
    await expect(overview.subjectsTable).toBeVisible();

    await page.screenshot({ path: testInfo.outputPath("overview-attached.png"), fullPage: true });
  } finally {
    await nc.close();
  }
  expect(overview.consoleErrors, "no console errors or hydration warnings").toEqual([]);
});
