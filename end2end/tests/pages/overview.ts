// Page object for the overview page: every selector the specs use lives
// here, by data-testid.
import { expect, type Locator, type Page } from "@playwright/test";
import { consoleProblems } from "./console";

export class OverviewPage {
  readonly linkState: Locator;
  readonly natsState: Locator;
  readonly totalEvents: Locator;
  readonly eventsPerSec: Locator;
  readonly subjectsTable: Locator;
  readonly rateChart: Locator;
  readonly legend: Locator;
  readonly consoleErrors: string[];

  constructor(readonly page: Page) {
    this.linkState = page.getByTestId("link-state");
    this.natsState = page.getByTestId("nats-state");
    this.totalEvents = page.getByTestId("total-events");
    this.eventsPerSec = page.getByTestId("events-per-sec");
    this.subjectsTable = page.getByTestId("subjects-table");
    this.rateChart = page.getByTestId("rate-chart");
    this.legend = page.getByTestId("rate-legend");
    this.consoleErrors = consoleProblems(page);
  }

  async open() {
    await this.page.goto("/");
    await expect(this.linkState).toHaveText("live");
    await expect(this.natsState).toHaveText("NATS: connected");
  }

  row(subject: string): Locator {
    return this.page.locator(`[data-testid="subject-row"][data-subject="${subject}"]`);
  }

  rowCount(subject: string): Locator {
    return this.row(subject).getByTestId("subject-count");
  }

  /** The total shown, as a number (thousands separators removed). */
  async total(): Promise<number> {
    return Number((await this.totalEvents.innerText()).replace(/,/g, ""));
  }

  /** Events in the rate chart's window, as the chart says. */
  async chartTotal(): Promise<number> {
    return Number(await this.rateChart.getAttribute("data-total"));
  }
}
