// Sign-in at a real OpenID Connect provider, in Chromium: a page sends the
// browser to the provider, the user is picked on its form, and the
// browser comes back signed in, with the role its groups map to; a user
// whose groups map to no role is told so; signing out ends the session.
import { expect, test, type Page } from "@playwright/test";

/** Console errors and warnings of this server's pages (the provider's own
 * page loads styles from the internet, which the tests cannot reach). */
function ourProblems(page: Page, baseURL: string): string[] {
  const problems: string[] = [];
  page.on("console", (msg) => {
    const at = msg.location().url;
    if ((msg.type() === "error" || msg.type() === "warning") && (at === "" || at.startsWith(baseURL))) {
      problems.push(`${msg.type()}: ${msg.text()} (${at})`);
    }
  });
  page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
  return problems;
}

test("ana signs in at the provider and is an operator by her groups", async ({ page, baseURL }, testInfo) => {
  const problems = ourProblems(page, baseURL ?? "");
  await page.goto("/flows");
  // At the provider, with PKCE and a nonce.
  await expect(page).toHaveURL(/\/oauth2\/authorize\?.*code_challenge=.*nonce=/);
  await page.getByRole("button", { name: "ana", exact: true }).click();
  await expect(page).toHaveURL(/\/flows$/);
  await expect(page.getByTestId("link-state")).toHaveText("live");
  await expect(page.getByTestId("topbar-user")).toContainText("ana");
  await expect(page.getByTestId("topbar-user")).toContainText("operator");
  // An operator: the demo's rates can be changed.
  await expect(page.getByTestId("demo-panel").getByTestId("demo-rate").first()).toBeVisible();
  await page.screenshot({ path: testInfo.outputPath("oidc-operator.png") });
  expect((await page.request.get("/api/v1/audit")).status()).toBe(403);

  // Signing out ends the session here (not at the provider), and does not
  // send the browser straight back to it.
  await page.getByTestId("sign-out").click();
  await expect(page.getByTestId("signed-out")).toBeVisible();
  expect((await page.request.get("/api/v1/events")).status()).toBe(401);
  expect(problems.filter((p) => !p.includes("status of 401"))).toEqual([]);
});

test("carl's groups map to no role: he is told so, and gets no session", async ({ page }) => {
  await page.goto("/");
  await expect(page).toHaveURL(/\/oauth2\/authorize/);
  await page.getByRole("button", { name: "carl", exact: true }).click();
  await expect(page.getByText("carl signed in at the provider, but none of their groups (contractors) has a role here")).toBeVisible();
  expect((await page.request.get("/api/v1/events")).status()).toBe(401);
});

test("dora's group gives a viewer's role with a subject scope, kept in her session", async ({ page, baseURL }) => {
  const problems = ourProblems(page, baseURL ?? "");
  await page.goto("/tail");
  await expect(page).toHaveURL(/\/oauth2\/authorize/);
  await page.getByRole("button", { name: "dora", exact: true }).click();
  await expect(page).toHaveURL(/\/tail$/);
  await expect(page.getByTestId("link-state")).toHaveText("live");
  await expect(page.getByTestId("topbar-user")).toContainText("viewer · scoped: orders");
  const rows = page.getByTestId("tail-row");
  await expect.poll(async () => rows.count()).toBeGreaterThan(2);
  for (const subject of await page.locator('[data-testid="tail-row"] .c-subject').allTextContents()) {
    expect(subject).toMatch(/^orders\./);
  }
  const listed = await (await page.request.get("/api/v1/events?limit=300")).json();
  expect(listed.events.length).toBeGreaterThan(2);
  for (const e of listed.events) expect(e.subject).toMatch(/^orders\./);
  // A viewer: no control for the demo's rates, and the server refuses it.
  await page.goto("/flows");
  await expect(page.getByTestId("demo-panel").getByTestId("demo-read-only")).toBeVisible();
  await expect(page.getByTestId("demo-panel").getByTestId("demo-rate")).toHaveCount(0);
  expect((await page.request.put("/api/v1/demo", { data: { rates: { saga: 3 } } })).status()).toBe(403);
  // The customer id is masked for viewers, here too.
  const placed = await (await page.request.get("/api/v1/events?subject=orders.placed&limit=1")).json();
  const detail = await (await page.request.get(`/api/v1/events/${placed.events[0].id}`)).json();
  expect(detail.masked).toContain("customer");
  expect(detail.payload_text).not.toMatch(/c-\d{4}/);
  expect(problems.filter((p) => !p.includes("status of 403"))).toEqual([]);
});
