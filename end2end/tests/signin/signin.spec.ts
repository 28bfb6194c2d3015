// Sign-in with roles, in Chromium, against a server started with
// `--auth users`: nothing is readable before signing in; a viewer sees the
// demo's rates but no control to change them, and the server refuses the
// change anyway; an operator changes them; the admin reads the audit trail
// of it all; signing out ends the session. The pages run under the app's
// Content-Security-Policy with no console error.
import { expect, test, type Page } from "@playwright/test";
import { consoleProblems } from "../pages/console";
import { password } from "./users";

async function signIn(page: Page, name: "vera" | "otto" | "ada" | "sam", next = "/flows") {
  await page.goto(next);
  await expect(page).toHaveURL(/\/login\?next=/);
  await page.getByLabel("User").fill(name);
  await page.getByLabel("Password").fill(password(name));
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(new RegExp(`${next.replace("?", "\\?")}$`));
  await expect(page.getByTestId("link-state")).toHaveText("live");
  await expect(page.getByTestId("topbar-user")).toContainText(name);
}

test("a viewer reads but cannot change; the server refuses it too", async ({ page }, testInfo) => {
  const problems = consoleProblems(page);
  // Not signed in: the page sends you to sign in, the API says 401.
  await page.goto("/flows");
  await expect(page).toHaveURL(/\/login\?next=%2Fflows$/);
  expect((await page.request.get("/api/v1/events")).status()).toBe(401);
  await page.getByLabel("User").fill("vera");
  await page.getByLabel("Password").fill("not her password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("signin-error")).toHaveText("Wrong user name or password.");
  await page.screenshot({ path: testInfo.outputPath("signin-refused.png") });

  await signIn(page, "vera");
  await expect(page.getByTestId("topbar-user")).toContainText("viewer");
  const demo = page.getByTestId("demo-panel");
  await expect(demo).toBeVisible();
  await expect(demo.getByTestId("demo-rate-fixed").first()).toBeVisible();
  await expect(demo.getByTestId("demo-rate")).toHaveCount(0);
  await expect(demo.getByTestId("demo-read-only")).toBeVisible();
  await page.screenshot({ path: testInfo.outputPath("viewer-flows.png"), fullPage: true });
  // The page's own session, straight to the API: refused by role.
  const change = await page.request.put("/api/v1/demo", { data: { rates: { saga: 3 } } });
  expect(change.status()).toBe(403);
  expect((await change.json()).error).toContain("needs the operator role");
  expect((await page.request.get("/api/v1/events?limit=1")).status()).toBe(200);
  expect((await page.request.get("/api/v1/audit")).status()).toBe(403);

  // Signing out ends it: the pages ask to sign in again.
  await page.getByTestId("sign-out").click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto("/");
  await expect(page).toHaveURL(/\/login\?next=%2F$/);
  expect((await page.request.get("/api/v1/events")).status()).toBe(401);
  // (The demo panel's poll may have asked once more as the session ended:
  // the browser logs that 401, as it should.)
  expect(problems.filter((p) => !p.includes("status of 401"))).toEqual([]);
});

test("an operator changes the demo's rates; the admin reads the audit trail", async ({ page, browser }) => {
  const problems = consoleProblems(page);
  await signIn(page, "otto");
  const saga = page.locator('[data-testid="demo-row"][data-scenario="saga"]');
  const rate = saga.getByTestId("demo-rate");
  await expect(rate).toBeVisible();
  await rate.fill("4");
  await rate.press("Enter");
  await expect.poll(async () => (await (await page.request.get("/api/v1/demo")).json()).scenarios.find((s: { name: string }) => s.name === "saga").rate).toBe(4);
  expect(problems).toEqual([]);

  // Vera, in a browser of her own, tries the same and is refused.
  const viewer = await browser.newContext({ baseURL: test.info().project.use.baseURL });
  const signedIn = await viewer.request.post("/login", {
    form: { user: "vera", password: password("vera"), next: "/" },
    maxRedirects: 0,
  });
  expect(signedIn.status()).toBe(303);
  expect((await viewer.request.put("/api/v1/demo", { data: { rates: { saga: 1 } } })).status()).toBe(403);
  await viewer.close();

  // The admin, in a browser of their own, finds otto's change and vera's
  // refusal in the audit trail, and in the live tail.
  const context = await browser.newContext({ baseURL: test.info().project.use.baseURL });
  const admin = await context.newPage();
  await signIn(admin, "ada", "/tail?subject=eventscope.audit.%3E");
  await expect(admin.getByTestId("topbar-user")).toContainText("admin");
  const trail = await (await admin.request.get("/api/v1/audit?limit=200")).json();
  const records = trail.events.map((e: { subject: string; message: string }) => `${e.subject} ${e.message}`);
  expect(records.some((r: string) => r.startsWith("eventscope.audit.change") && r.includes("otto changed /api/v1/demo"))).toBe(true);
  expect(records.some((r: string) => r.startsWith("eventscope.audit.denied") && r.includes("vera"))).toBe(true);
  expect(records.some((r: string) => r.startsWith("eventscope.audit.sign_in_failed"))).toBe(true);
  await expect(admin.getByTestId("tail-row").filter({ hasText: "otto changed /api/v1/demo" }).first()).toBeVisible();
  await context.close();
});

test("a scoped viewer sees only their subjects, and masked fields are marked", async ({ page }, testInfo) => {
  const problems = consoleProblems(page);
  await signIn(page, "sam", "/tail");
  await expect(page.getByTestId("topbar-user")).toContainText("viewer · scoped: orders");
  // The live tail: the demo publishes orders, payments, users, logs…;
  // only orders reach this reader.
  const rows = page.getByTestId("tail-row");
  await expect.poll(async () => rows.count()).toBeGreaterThan(3);
  const shown = await page.locator('[data-testid="tail-row"] .c-subject').allTextContents();
  expect(shown.length).toBeGreaterThan(3);
  for (const subject of shown) expect(subject).toMatch(/^orders\./);
  // The API, with the page's own session: the same.
  const listed = await (await page.request.get("/api/v1/events?limit=500")).json();
  expect(listed.events.length).toBeGreaterThan(3);
  for (const e of listed.events) expect(e.subject).toMatch(/^orders\./);
  const unscoped = await page.request.get("/api/v1/events?subject=payments.>&limit=10");
  expect((await unscoped.json()).events).toEqual([]);
  expect((await page.request.get("/api/v1/timeline")).status()).toBe(403);
  const top = await (await page.request.get("/api/v1/projections/top_subjects?window=15m")).json();
  expect(top.scoped).toBe(true);
  for (const item of top.body.items) expect(item.key).toMatch(/^orders\./);

  // The inspector: the customer id is masked for viewers, and says so.
  await page.goto("/tail?subject=orders.placed");
  await expect(page.getByTestId("link-state")).toHaveText("live");
  await expect(rows.first()).toBeVisible();
  await rows.first().click();
  const inspector = page.getByTestId("inspector");
  await expect(inspector.getByTestId("inspector-masked")).toContainText("customer");
  await expect(inspector.locator(".jt-masked").first()).toHaveText('"[masked]"');
  await expect(inspector.getByTestId("inspector-tree")).not.toContainText("c-0");
  await page.screenshot({ path: testInfo.outputPath("scoped-inspector.png"), fullPage: true });

  // The overview: charts of every subject are not drawn for this reader.
  await page.goto("/");
  await expect(page.getByTestId("link-state")).toHaveText("live");
  await expect(page.getByTestId("chart-empty").first()).toContainText("subject scope");
  await page.screenshot({ path: testInfo.outputPath("scoped-overview.png"), fullPage: true });
  expect(problems).toEqual([]);
});

test("the admin sees the stored payload unmasked", async ({ page }) => {
  await signIn(page, "ada", "/tail?subject=orders.placed");
  const rows = page.getByTestId("tail-row");
  await expect(rows.first()).toBeVisible();
  await rows.first().click();
  const inspector = page.getByTestId("inspector");
  await expect(inspector.getByTestId("inspector-tree")).toContainText("c-");
  await expect(inspector.getByTestId("inspector-masked")).toHaveCount(0);
  await expect(page.getByTestId("topbar-user")).not.toContainText("scoped");
});
