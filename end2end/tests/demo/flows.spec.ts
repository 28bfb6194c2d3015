// The demo's flows on the Flows page: sagas complete and are compensated,
// a compensated saga opens as a timeline of its steps, and the demo's rates
// can be changed from the page. On the CQRS page: the CQRS pair shows its
// lag, and the read models are live and rebuilt for a moment.
import { expect, test } from "@playwright/test";
import { CqrsPage, FlowsPage, TopologyPage, someOf } from "../pages/eda";

test("flows: statuses, a saga's timeline and demo rates", async ({ page, request }, testInfo) => {
  const flows = new FlowsPage(page);
  await flows.open();
  await someOf(flows.rows);
  await expect.poll(() => flows.count("completed"), { timeout: 20_000 }).toBeGreaterThan(0);
  // Sagas whose payment is declined or stock is missing are compensated.
  await expect.poll(() => flows.count("compensated"), { timeout: 30_000 }).toBeGreaterThan(0);

  // The chart of flows ending, drawn by the server, counts completions.
  await expect(page.getByTestId("flows-chart")).toBeVisible();
  await expect(page.getByTestId("flows-legend")).toContainText("completed");

  // A status card filters the list, and the filter is in the URL.
  await page.getByTestId("flows-compensated").click();
  await expect(page).toHaveURL(/status=compensated/);
  await someOf(flows.rowsWithStatus("compensated"));
  await expect(flows.rowsWithStatus("completed")).toHaveCount(0);

  // One compensated saga, step by step.
  const saga = flows.rowsWithStatus("compensated").filter({ hasText: "ord-" }).first();
  await saga.click();
  await expect(page).toHaveURL(/flow=ord-/);
  await expect(flows.detail.getByTestId("flow-status")).toHaveText("compensated");
  await expect(flows.detail.getByTestId("flow-stopped-at")).toHaveText(/payments|inventory/);
  await expect(flows.steps().first()).toContainText("orders.placed");
  await expect(flows.detail.locator('[data-testid="flow-step"][data-role="compensation"]').first()).toBeVisible();
  const steps = await flows.steps().count();
  await expect(flows.detail.locator("svg circle")).toHaveCount(steps);

  // The flow is a link: reloading shows it again.
  await page.reload();
  await expect(flows.detail.getByTestId("flow-status")).toHaveText("compensated");

  await page.screenshot({ path: testInfo.outputPath("flows.png"), fullPage: true });

  // The demo's rates: a rate being typed survives the table's refresh
  // (the counts move on every 2 s; the row is updated in place).
  const fanoutRow = page.locator('[data-testid="demo-row"][data-scenario="fanout"]');
  const fanout = fanoutRow.getByTestId("demo-rate");
  const published = fanoutRow.locator("td").last();
  const before = await published.innerText();
  await fanout.fill("7");
  await expect(published).not.toHaveText(before, { timeout: 10_000 });
  await expect(fanout).toHaveValue("7");
  // Set the fan-out to 0 from the page, then back.
  await fanout.fill("0");
  await fanout.press("Enter");
  await expect
    .poll(async () => (await (await request.get("/api/v1/demo")).json()).scenarios.find((s: { name: string }) => s.name === "fanout").rate)
    .toBe(0);
  await fanout.fill("1");
  await fanout.press("Enter");
  await expect
    .poll(async () => (await (await request.get("/api/v1/demo")).json()).scenarios.find((s: { name: string }) => s.name === "fanout").rate)
    .toBe(1);
  expect(flows.consoleErrors, "no console errors or hydration warnings").toEqual([]);
});

// The table's number format (format::value): whole above 1,000, else two
// decimals (four below 1).
// A read model's value as the page shows it: whole numbers with separators
// when every value shown is whole (the page shows the first 25 groups),
// else by size.
const bySize = (v: number) =>
  Math.abs(v) >= 1000 ? v.toFixed(0) : Math.abs(v) >= 1 || v === 0 ? v.toFixed(2) : v.toFixed(4);
const shown = (v: number, whole: boolean) =>
  whole ? (v < 0 ? "-" : "") + Math.abs(v).toLocaleString("en-US") : bySize(v);

test("cqrs: the demo's pair with its lag; its account balances, live and rebuilt for a moment", async ({ page, request }, testInfo) => {
  const cqrs = new CqrsPage(page);
  await cqrs.open();
  // The demo's inventory pair, with a measured lag.
  await someOf(cqrs.rows);
  await expect(cqrs.rows.first()).toContainText("inventory");
  await expect(cqrs.rows.first().getByTestId("cqrs-p50")).not.toHaveText("0 ms", { timeout: 20_000 });

  const model = cqrs.model("account_balances");
  await expect(model.getByTestId("read-model-row").first()).toBeVisible({ timeout: 20_000 });
  await page.screenshot({ path: testInfo.outputPath("cqrs.png"), fullPage: true });

  // A moment a little in the past: the page shows exactly what the log
  // folds to as of then.
  await page.waitForTimeout(1_500);
  const t = Date.now() - 1_000;
  // (The API's `at` is an event id or an RFC 3339 time; the page's is ms.)
  const iso = encodeURIComponent(new Date(t).toISOString());
  const then = await (await request.get(`/api/v1/projections/account_balances?at=${iso}`)).json();
  expect(then.live).toBe(false);
  const groups: { key: string; value: number }[] = then.body.groups;
  expect(groups.length).toBeGreaterThan(0);
  await cqrs.open(`?at=${t}`);
  await expect(cqrs.pastBanner).toBeVisible();
  const whole = groups.slice(0, 25).every((g) => Number.isInteger(g.value));
  for (const g of groups.slice(0, 3)) {
    const row = model.locator(`[data-testid="read-model-row"][data-key="${g.key}"]`);
    await expect(row.getByTestId("read-model-value")).toHaveText(shown(g.value, whole));
  }
  // The demo's balances are whole: one format down the column, no ".00".
  expect(whole).toBe(true);
  await expect(model.getByTestId("read-model-value").first()).not.toContainText(".");
  expect(cqrs.consoleErrors, "no console errors or hydration warnings").toEqual([]);
});

test("the event-driven pages are served with data, then hydrate over it", async ({ page, request }) => {
  // Wait until the demo has finished a few flows.
  await expect
    .poll(async () => (await (await request.get("/api/v1/projections/flows?window=15m")).json()).body.counts.completed, { timeout: 20_000 })
    .toBeGreaterThan(2);
  const html = async (path: string) => (await request.get(path)).text();
  // As the server sends them, before any script runs.
  const flowsHtml = await html("/flows");
  expect(flowsHtml).toMatch(/data-testid="flow-row" data-status="completed"/);
  expect(flowsHtml).toMatch(/data-testid="flows-chart"[^>]*>\s*(<\?xml[^>]*>\s*)?<svg/);
  expect(await html("/cqrs")).toContain('data-testid="cqrs-row"');
  expect(await html("/topology")).toContain('data-id="svc:orders"');
  expect(await html("/schemas")).toMatch(/data-testid="schema" data-key="[^"]+"/);
  // Hydrating over that data gives no warnings, and the pages go live.
  const flows = new FlowsPage(page);
  await flows.open();
  await expect(flows.rows.first()).toBeVisible();
  await new CqrsPage(page).open();
  await expect(page.getByTestId("cqrs-row").first()).toBeVisible();
  await new TopologyPage(page).open();
  await expect(page.locator('[data-testid="topology-node"][data-id="svc:orders"]')).toBeVisible();
  expect(flows.consoleErrors, "no console errors or hydration warnings").toEqual([]);
});
