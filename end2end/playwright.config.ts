// Playwright runs the built `eventscope` binary twice (see webServer):
//  - "attached": watching a test NATS that scripts/test.sh started, so the
//    tests publish events and check what the page shows;
//  - "demo": with no arguments, i.e. demo mode (managed nats-server and the
//    built-in producer), exactly as the README's run command starts it.
// scripts/test.sh sets the variables below; it is the way to run these.
import { defineConfig } from "@playwright/test";
import * as path from "node:path";

function need(name: string): string {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run the end-to-end tests with scripts/test.sh`);
  }
  return v;
}

const bin = need("EVENTSCOPE_BIN");
const natsUrl = need("E2E_NATS_URL");
const attachedPort = need("E2E_ATTACHED_PORT");
const demoPort = need("E2E_DEMO_PORT");
const repoRoot = path.resolve(__dirname, "..");

export default defineConfig({
  testDir: "./tests",
  outputDir: "./test-results",
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  use: {
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    },
  },
  projects: [
    {
      name: "attached",
      testMatch: /attached\/.*\.spec\.ts/,
      use: { baseURL: `http://127.0.0.1:${attachedPort}` },
    },
    {
      name: "demo",
      testMatch: /demo\/.*\.spec\.ts/,
      use: { baseURL: `http://127.0.0.1:${demoPort}` },
    },
  ],
  webServer: [
    {
      command: `"${bin}" --nats-url ${natsUrl} --subject 'e2e.>' --addr 127.0.0.1:${attachedPort}`,
      url: `http://127.0.0.1:${attachedPort}/healthz`,
      cwd: repoRoot,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "pipe",
    },
    {
      command: `"${bin}" --addr 127.0.0.1:${demoPort}`,
      url: `http://127.0.0.1:${demoPort}/healthz`,
      cwd: repoRoot,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "pipe",
    },
  ],
});
