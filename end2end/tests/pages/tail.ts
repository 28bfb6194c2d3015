// Page object for the live tail and its inspector: every selector the
// specs use lives here, by data-testid.
import type { Locator, Page } from "@playwright/test";
import { BasePage } from "./base";

export class TailPage extends BasePage {
  readonly rows: Locator;
  readonly count: Locator;
  readonly scroller: Locator;
  readonly inspector: Locator;

  constructor(page: Page) {
    super(page);
    this.rows = page.getByTestId("tail-row");
    this.count = page.getByTestId("tail-count");
    this.scroller = page.getByTestId("tail-scroll");
    this.inspector = page.getByTestId("inspector");
  }

  /** Opens `/tail` with these filter parameters and waits for the live link. */
  async open(params: Record<string, string> = {}) {
    const q = new URLSearchParams(params).toString();
    await this.goto(q ? `/tail?${q}` : "/tail");
  }

  /** The number of events the page says it holds. */
  async held(): Promise<number> {
    return Number((await this.count.innerText()).replace(/[^0-9]/g, ""));
  }

  /** Matching events the server left out, as the page reports them. */
  async skipped(): Promise<number> {
    const note = this.page.getByTestId("tail-skipped");
    if ((await note.count()) === 0) return 0;
    return Number((await note.innerText()).split(" ")[0].replace(/,/g, ""));
  }

  /** The `n` field of the first row in the DOM (the bulk test's payloads). */
  async firstN(): Promise<number> {
    const text = await this.rows.first().innerText();
    const m = text.match(/"n":(\d+)/);
    return m ? Number(m[1]) : Number.NaN;
  }

  filter(name: string): Locator {
    return this.page.getByTestId(`filter-${name}`);
  }

  async apply() {
    await this.page.getByTestId("filter-apply").click();
  }

  row(text: string): Locator {
    return this.rows.filter({ hasText: text });
  }

  field(name: string): Locator {
    return this.inspector.getByTestId(`inspector-${name}`);
  }
}
