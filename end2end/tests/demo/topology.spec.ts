// The demo's traffic as a graph: the order saga's services and subjects,
// with "consumes" edges inferred from causation; an edge opens the tail.
import { expect, test } from "@playwright/test";
import { TopologyPage } from "../pages/eda";
import { TailPage } from "../pages/tail";

test("topology: the saga's graph, and an edge opens the tail", async ({ page }, testInfo) => {
  const topo = new TopologyPage(page);
  await topo.open();
  await expect(topo.graph).toBeVisible({ timeout: 20_000 });
  for (const id of ["svc:orders", "sub:orders.placed", "svc:payments", "sub:payments.authorised", "svc:inventory"]) {
    await expect(topo.node(id)).toBeVisible();
  }
  await expect(topo.edge("svc:orders", "sub:orders.placed")).toHaveCount(1);
  const consumed = topo.edge("sub:orders.placed", "svc:payments");
  await expect(consumed).toHaveCount(1);
  // Fan-out: one registration, three consumers.
  for (const svc of ["email", "analytics", "crm"]) {
    await expect(topo.edge("sub:users.registered", `svc:${svc}`)).toHaveCount(1);
  }
  // Request/reply: payments asks fraud; the answer on payments' inbox makes
  // fraud a consumer of the request's subject, with a replies edge back.
  await expect(topo.edge("svc:payments", "sub:fraud.check")).toHaveCount(1);
  await expect(topo.edge("sub:fraud.check", "svc:fraud")).toHaveCount(1);
  const replies = topo.edge("svc:fraud", "svc:payments");
  await expect(replies).toHaveCount(1);
  await expect(replies).toHaveClass(/edge-replies/);
  await expect(page.locator('[data-testid="topology-node"][data-id^="sub:_INBOX"]')).toHaveCount(0);
  // The account subjects feed their JetStream stream, which delivers to
  // the statements consumer (polled every 5 s).
  await expect(topo.node("con:ACCOUNTS/statements")).toBeVisible({ timeout: 20_000 });
  await expect(topo.edge("sub:accounts.*.deposited", "str:ACCOUNTS")).toHaveCount(1);
  await expect(topo.edge("str:ACCOUNTS", "con:ACCOUNTS/statements")).toHaveCount(1);
  // The flow starts on the left: orders before what it publishes, before payments.
  const x = async (id: string) => Number(await topo.node(id).locator("rect").getAttribute("x"));
  expect(await x("svc:orders")).toBeLessThan(await x("sub:orders.placed"));
  expect(await x("sub:orders.placed")).toBeLessThan(await x("svc:payments"));

  await page.waitForTimeout(1_000);
  await page.screenshot({ path: testInfo.outputPath("topology.png"), fullPage: true });

  // Logs and metrics join the graph on demand: each service's logs subject.
  await expect(topo.node("sub:logs.orders")).toHaveCount(0);
  await page.getByTestId("topology-telemetry").check();
  await expect(topo.edge("svc:orders", "sub:logs.orders")).toHaveCount(1, { timeout: 20_000 });
  await page.getByTestId("topology-telemetry").uncheck();
  await expect(topo.node("sub:logs.orders")).toHaveCount(0, { timeout: 20_000 });

  await consumed.dispatchEvent("click");
  await expect(page).toHaveURL(/\/tail\?subject=orders\.placed/);
  await expect(page.getByTestId("tail-row").first()).toContainText("orders.placed", { timeout: 20_000 });
  expect(topo.consoleErrors, "no console errors or hydration warnings").toEqual([]);
});

test("inspector: a request shows its reply inbox and its flow", async ({ page }) => {
  const tail = new TailPage(page);
  await tail.open({ subject: "fraud.check" });
  await expect(tail.rows.first()).toContainText("fraud.check", { timeout: 20_000 });
  await tail.rows.first().click();
  await expect(tail.field("reply")).toContainText("_INBOX.payments.");
  const flow = tail.field("flow");
  await expect(flow).toContainText("ord-");
  await flow.click();
  await expect(page).toHaveURL(/\/flows\?flow=ord-/);
  await expect(page.getByTestId("flow-detail")).toBeVisible({ timeout: 20_000 });
  // The answer's step is fraud's, named by its header.
  await expect(page.getByTestId("flow-step").filter({ hasText: "fraud" }).first()).toBeVisible();
  expect(tail.consoleErrors, "no console errors or hydration warnings").toEqual([]);
});
