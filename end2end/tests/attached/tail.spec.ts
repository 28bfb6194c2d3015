// The live tail: the filter is applied by the server and kept in the URL,
// the inspector shows a published event exactly, payloads stay inert, and
// 100k events keep the DOM small.
import { expect, test } from "@playwright/test";
import { connect, headers, StringCodec, type NatsConnection } from "nats";
import { TailPage } from "../pages/tail";

const sc = StringCodec();
let nc: NatsConnection;

test.beforeAll(async () => {
  nc = await connect({ servers: process.env.E2E_NATS_URL });
});
test.afterAll(async () => {
  await nc.close();
});

function run(): string {
  return Math.random().toString(36).slice(2, 8);
}

test("the tail filter narrows results on the server and survives a reload", async ({ page }, testInfo) => {
  const tail = new TailPage(page);
  const base = `e2e.${run()}`;
  await tail.open({ subject: `${base}.>`, level: "error" });
  await expect(tail.filter("subject")).toHaveValue(`${base}.>`);
  await expect(page.getByTestId("tail-empty")).toContainText("No event matches");

  for (let i = 0; i < 20; i++) {
    nc.publish(`${base}.orders`, sc.encode(JSON.stringify({ level: "info", msg: `order ${i} placed` })));
  }
  for (let i = 0; i < 5; i++) {
    nc.publish(`${base}.payments`, sc.encode(JSON.stringify({ level: "error", msg: `card ${i} declined` })));
  }
  nc.publish(`elsewhere.${run()}`, sc.encode(JSON.stringify({ level: "error", msg: "not ours" })));
  await nc.flush();

  await expect(tail.rows).toHaveCount(5);
  await expect(tail.count).toHaveText("5 events");
  for (const row of await tail.rows.all()) {
    await expect(row).toContainText("error");
    await expect(row).toContainText(`${base}.payments`);
  }
  await page.screenshot({ path: testInfo.outputPath("tail-filtered.png"), fullPage: true });

  // A reload keeps the filter (it is the URL) and shows the same events.
  await page.reload();
  await expect(page.getByTestId("link-state")).toHaveText("live");
  await expect(tail.filter("level")).toHaveValue("error");
  await expect(tail.rows).toHaveCount(5);

  // Changing the filter in the form changes the URL; back restores it.
  await tail.filter("level").fill("info");
  await tail.apply();
  await expect(page).toHaveURL(/level=info/);
  await expect(tail.rows).toHaveCount(20);
  await page.goBack();
  await expect(page).toHaveURL(/level=error/);
  await expect(tail.rows).toHaveCount(5);
  expect(tail.consoleErrors, "no console errors or hydration warnings").toEqual([]);
});

test("the inspector shows a published event's payload and headers exactly", async ({ page }, testInfo) => {
  const tail = new TailPage(page);
  const id = run();
  const subject = `e2e.${id}.inspect`;
  await tail.open({ subject });
  const payload = {
    level: "warn",
    service: "checkout",
    msg: "slow payment",
    order_id: `o-${id}`,
    order: { id: 42, items: ["a", "b"] },
  };
  const h = headers();
  h.set("Trace-Id", "abc-123");
  nc.publish(subject, sc.encode(JSON.stringify(payload)), { headers: h });
  await nc.flush();

  await expect(tail.rows).toHaveCount(1);
  await tail.rows.first().click();
  await expect(tail.inspector).toBeVisible();
  await expect(page).toHaveURL(/event=\d+/);
  await expect(tail.field("subject")).toHaveText(subject);
  await expect(tail.field("level")).toHaveText("warn");
  await expect(tail.field("service")).toHaveText("checkout");
  await expect(tail.field("source")).toHaveText("core NATS");
  await expect(tail.field("headers")).toContainText("Trace-Id");
  await expect(tail.field("headers")).toContainText("abc-123");
  await expect(tail.field("tree")).toContainText("slow payment");
  const pretty = await tail.field("payload").textContent();
  expect(JSON.parse(pretty ?? "")).toEqual(payload);
  await expect(tail.field("nats-pub")).toContainText(`nats pub '${subject}' -H 'Trace-Id:abc-123'`);
  await page.screenshot({ path: testInfo.outputPath("tail-inspector.png"), fullPage: true });

  // The URL is a permalink: a reload opens the same event.
  await page.reload();
  await expect(tail.field("subject")).toHaveText(subject);
  await page.getByTestId("inspector-close").click();
  await expect(tail.inspector).toHaveCount(0);

  // Another event of the same flow, elsewhere: the related link finds both.
  nc.publish(`e2e.${id}.shipping`, sc.encode(JSON.stringify({ level: "info", msg: "shipped", order_id: `o-${id}` })));
  await nc.flush();
  await tail.rows.first().click();
  await page.getByTestId("inspector-related").click();
  await expect(page).toHaveURL(new RegExp(`field=order_id%3Do-${id}`));
  await expect(tail.rows).toHaveCount(2);
  expect(tail.consoleErrors).toEqual([]);
});

test("hostile payloads are shown as text and nothing in them runs", async ({ page }) => {
  const tail = new TailPage(page);
  const subject = `e2e.${run()}.xss`;
  await tail.open({ subject });
  const evil = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`;
  nc.publish(subject, sc.encode(evil));
  nc.publish(subject, sc.encode(JSON.stringify({ level: "error", msg: evil, [evil]: evil })));
  await nc.flush();

  await expect(tail.rows).toHaveCount(2);
  await expect(tail.rows.first()).toContainText("<img src=x");
  for (const row of await tail.rows.all()) {
    await row.click();
    await expect(tail.field("payload")).toContainText("<script>");
  }
  await page.waitForTimeout(300);
  expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
  expect(await page.locator("main img, main script").count()).toBe(0);
});

test("100k events in the tail keep the DOM small and scroll", async ({ page }, testInfo) => {
  test.setTimeout(120_000);
  const tail = new TailPage(page);
  const subject = `e2e.${run()}.bulk`;
  await tail.open({ subject });
  const total = 100_000;
  // Paced under what one frame per tick carries (1,000 events), so the
  // page gets every event rather than the newest of each burst; a tick the
  // machine delays may still leave some out, which the page counts.
  for (let i = 0; i < total; i += 300) {
    for (let j = i; j < Math.min(i + 300, total); j++) {
      nc.publish(subject, sc.encode(`{"level":"info","n":${j}}`));
    }
    await nc.flush();
    await new Promise((r) => setTimeout(r, 50));
  }
  await expect
    .poll(async () => (await tail.held()) + (await tail.skipped()), { timeout: 60_000 })
    .toBe(total);
  expect(await tail.held(), "the page holds (nearly) every event").toBeGreaterThanOrEqual(90_000);
  const rows = await tail.rows.count();
  expect(rows, "only the rows in sight are in the DOM").toBeLessThan(200);
  expect(rows).toBeGreaterThan(5);
  // Following: the newest event is in view.
  await expect(tail.row(`"n":${total - 1}}`)).toBeVisible();
  // Scrolled to the top: the oldest are.
  await tail.scroller.evaluate((el) => (el.scrollTop = 0));
  await expect.poll(async () => tail.firstN()).toBeLessThan(1_000);
  expect(await tail.rows.count()).toBeLessThan(200);
  await page.getByTestId("tail-follow").click();
  await expect(tail.row(`"n":${total - 1}}`)).toBeVisible();
  await page.screenshot({ path: testInfo.outputPath("tail-100k.png") });
});
