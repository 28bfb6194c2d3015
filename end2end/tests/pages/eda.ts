// Page objects for the event-driven views: flows, topology, schemas.
import { expect, type Locator, type Page } from "@playwright/test";
import { BasePage } from "./base";

export class FlowsPage extends BasePage {
  readonly rows: Locator;
  readonly detail: Locator;
  readonly demoRows: Locator;

  constructor(page: Page) {
    super(page);
    this.rows = page.getByTestId("flow-row");
    this.detail = page.getByTestId("flow-detail");
    this.demoRows = page.getByTestId("demo-row");
  }

  async open(query = "") {
    await this.goto(`/flows${query}`);
  }

  /** The count on a status card (`started`, `completed`, ...). */
  async count(status: string): Promise<number> {
    const text = await this.page.getByTestId(`flows-${status}`).locator(".card-value").innerText();
    return Number(text.replace(/[^0-9]/g, ""));
  }

  rowsWithStatus(status: string): Locator {
    return this.page.locator(`[data-testid="flow-row"][data-status="${status}"]`);
  }

  steps(): Locator {
    return this.detail.getByTestId("flow-step");
  }
}

export class CqrsPage extends BasePage {
  readonly rows: Locator;

  constructor(page: Page) {
    super(page);
    this.rows = page.getByTestId("cqrs-row");
  }

  async open(query = "") {
    await this.goto(`/cqrs${query}`);
  }

  /** A read model's table, by the projection's name. */
  model(name: string): Locator {
    return this.page.locator(`[data-testid="read-model"][data-name="${name}"]`);
  }
}

export class TopologyPage extends BasePage {
  readonly graph: Locator;

  constructor(page: Page) {
    super(page);
    this.graph = page.getByTestId("topology-graph");
  }

  async open() {
    await this.goto("/topology");
  }

  node(id: string): Locator {
    return this.page.locator(`[data-testid="topology-node"][data-id="${id}"]`);
  }

  edge(from: string, to: string): Locator {
    return this.page.locator(`[data-testid="topology-edge"][data-from="${from}"][data-to="${to}"]`);
  }
}

export class SchemasPage extends BasePage {
  constructor(page: Page) {
    super(page);
  }

  async open() {
    await this.goto("/schemas");
  }

  schema(key: string): Locator {
    return this.page.locator(`[data-testid="schema"][data-key="${key}"]`);
  }

  field(key: string, path: string): Locator {
    return this.schema(key).locator(`[data-testid="schema-field"][data-path="${path}"]`);
  }
}

/** Waits until `locator` has at least one element. */
export async function someOf(locator: Locator, timeout = 20_000) {
  await expect.poll(() => locator.count(), { timeout }).toBeGreaterThan(0);
}
