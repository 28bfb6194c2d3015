// Collects what the page says in its console that a clean page never says:
// errors, warnings (hydration mismatches are warnings) and uncaught errors.
import type { Page } from "@playwright/test";

export function consoleProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error" || msg.type() === "warning") {
      problems.push(`${msg.type()}: ${msg.text()}`);
    }
  });
  page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
  return problems;
}
