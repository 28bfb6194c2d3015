// Keyboard shortcuts (listed on the `?` overlay) and the theme switch,
// which survives a reload.
import { expect, test } from "@playwright/test";
import { publishAll, times } from "../pages/nats";
import { OverviewPage } from "../pages/overview";
import { TailPage } from "../pages/tail";

test("the ? overlay lists the shortcuts and the theme switch is kept", async ({ page }, testInfo) => {
  const overview = new OverviewPage(page);
  await overview.open();
  const html = page.locator("html");
  const first = await html.getAttribute("data-theme");
  expect(["dark", "light"]).toContain(first);

  await page.keyboard.press("?");
  const overlay = page.getByTestId("shortcuts");
  await expect(overlay).toBeVisible();
  await expect(overlay).toContainText("back to live");
  await page.screenshot({ path: testInfo.outputPath("shortcuts.png") });
  await page.keyboard.press("Escape");
  await expect(overlay).toHaveCount(0);

  await page.getByTestId("theme-toggle").click();
  const other = first === "dark" ? "light" : "dark";
  await expect(html).toHaveAttribute("data-theme", other);
  await overview.open();
  await expect(html).toHaveAttribute("data-theme", other);
  await page.screenshot({ path: testInfo.outputPath(`overview-${other}.png`), fullPage: true });
  await page.keyboard.press("t");
  await expect(html).toHaveAttribute("data-theme", first!);

  await page.keyboard.press("2");
  await expect(page).toHaveURL(/\/tail$/);
  await page.keyboard.press("5");
  await expect(page).toHaveURL(/\/cqrs$/);
  await page.keyboard.press("7");
  await expect(page).toHaveURL(/\/schemas$/);
  await page.keyboard.press("1");
  await expect(page).toHaveURL(/\/$/);
  expect(overview.consoleErrors, "no console errors or hydration warnings").toEqual([]);
});

test("j and k walk the tail's events into the inspector; Esc closes it", async ({ page }) => {
  const subject = `e2e.k${Math.random().toString(36).slice(2, 7)}`;
  const tail = new TailPage(page);
  await tail.open({ subject });
  await publishAll(times(subject, 3, (i) => ({ msg: `key ${i}` })));
  await expect(tail.rows).toHaveCount(3);
  const ids = await tail.rows.evaluateAll((rows) => rows.map((r) => r.getAttribute("data-id")));
  const event = () => new URL(page.url()).searchParams.get("event");

  await page.keyboard.press("j");
  await expect.poll(event).toBe(ids[2]);
  await expect(tail.inspector).toBeVisible();
  await expect(tail.field("payload")).toContainText("key 2");
  await page.keyboard.press("k");
  await expect.poll(event).toBe(ids[1]);
  await expect(tail.field("payload")).toContainText("key 1");
  await page.keyboard.press("Escape");
  await expect(tail.inspector).toHaveCount(0);
  expect(new URL(page.url()).searchParams.get("subject")).toBe(subject);

  await page.keyboard.press("/");
  await expect(tail.filter("q")).toBeFocused();
  await page.keyboard.type("key 1");
  await page.keyboard.press("Enter");
  await expect(tail.rows).toHaveCount(1);
  await expect(tail.rows.first()).toContainText("key 1");
  expect(tail.consoleErrors).toEqual([]);
});
