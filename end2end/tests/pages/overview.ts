// Page object for the overview page: every selector the specs use lives
// here, by data-testid.
import { expect, type Locator, type Page } from "@playwright/test";
import { BasePage } from "./base";

export class OverviewPage extends BasePage {
  readonly totalEvents: Locator;
  readonly eventsPerSec: Locator;
  readonly subjectsTable: Locator;
  readonly rateChart: Locator;
  readonly legend: Locator;

  constructor(page: Page) {
    super(page);
    this.totalEvents = page.getByTestId("total-events");
    this.eventsPerSec = page.getByTestId("events-per-sec");
    this.subjectsTable = page.getByTestId("subjects-table");
    this.rateChart = page.getByTestId("rate-chart");
    this.legend = page.getByTestId("rate-legend");
  }

  async open(query = "") {
    await this.goto(`/${query}`);
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
