// What every page object shares: the page, its console problems, the top
// bar's connection state, the time bar, and the shortcuts overlay.
import { expect, type Locator, type Page } from "@playwright/test";
import { consoleProblems } from "./console";

export class BasePage {
  readonly linkState: Locator;
  readonly natsState: Locator;
  readonly strip: Locator;
  readonly pastBanner: Locator;
  readonly consoleErrors: string[];

  constructor(readonly page: Page) {
    this.linkState = page.getByTestId("link-state");
    this.natsState = page.getByTestId("nats-state");
    this.strip = page.getByTestId("timeline-strip");
    this.pastBanner = page.getByTestId("past-banner");
    this.consoleErrors = consoleProblems(page);
  }

  /** Goes to `url` and waits for the live connection. */
  async goto(url: string) {
    await this.page.goto(url);
    await expect(this.linkState).toHaveText("live");
  }

  /** The moment viewed, from the URL (`null` when live). */
  at(): number | null {
    const v = new URL(this.page.url()).searchParams.get("at");
    return v === null ? null : Number(v);
  }

  async backToLive() {
    await this.page.getByTestId("back-to-live").click();
    await expect(this.pastBanner).toHaveCount(0);
  }
}
