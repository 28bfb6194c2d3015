// The server renders pages with the counts it has (and the overview with
// its chart and top lists), so the first paint (and a browser without the
// wasm bundle) shows real numbers; the page then hydrates over the same
// numbers without a warning.
import { expect, test } from "@playwright/test";
import { publishAll, times } from "../pages/nats";
import { OverviewPage } from "../pages/overview";
import { TailPage } from "../pages/tail";

test("the server-rendered overview already holds the counts", async ({ page, request }) => {
  const subject = `e2e.fp${Math.random().toString(36).slice(2, 7)}`;
  await publishAll(times(subject, 5, (i) => ({ msg: `first ${i}` })));
  await expect
    .poll(async () => (await (await request.get(`/api/v1/events?subject=${subject}`)).json()).events.length)
    .toBe(5);

  // The HTML as the server sends it, before any script runs.
  const html = await (await request.get("/")).text();
  const row = html.match(new RegExp(`data-subject="${subject.replace(/\./g, "\\.")}"[^]*?data-testid="subject-count"[^>]*>([^<]*)<`));
  expect(row, "the subject's row is in the server-rendered HTML").not.toBeNull();
  expect(row![1]).toBe("5");
  // The chart and the top lists are drawn with data too: the subject among
  // the busiest, and the chart's SVG (not its "waiting" note).
  const busiest = html.match(/data-testid="top_subjects"[^]*?<\/ol>/);
  expect(busiest, "the busiest subjects are in the server-rendered HTML").not.toBeNull();
  expect(busiest![0]).toContain(subject);
  expect(html).toMatch(/data-testid="rate-chart"[^>]*>\s*(<\?xml[^>]*>\s*)?<svg/);
  // The time bar's density strip, on every page: bars, not a note.
  expect(html).not.toContain("Waiting for the live connection");
  for (const path of ["/", "/tail", "/flows"]) {
    const page = await (await request.get(path)).text();
    const strip = page.match(/data-testid="timeline-strip"[^>]*>[^]*?<\/svg>/);
    expect(strip, `the strip is in ${path}`).not.toBeNull();
    expect(strip![0], `the strip of ${path} has bars`).toContain("<rect");
  }

  // The tail is served with the newest matching events too.
  const tailHtml = await (await request.get(`/tail?subject=${subject}`)).text();
  expect(tailHtml.match(/data-testid="tail-row"/g) ?? []).toHaveLength(5);
  expect(tailHtml).toContain("first 4");
  const tail = new TailPage(page);
  await tail.open({ subject });
  await expect(tail.rows).toHaveCount(5);
  expect(tail.consoleErrors).toEqual([]);

  // And the hydrated overview agrees, without hydration warnings.
  const overview = new OverviewPage(page);
  await overview.open();
  await expect(overview.rowCount(subject)).toHaveText("5");
  expect(overview.consoleErrors).toEqual([]);
});
