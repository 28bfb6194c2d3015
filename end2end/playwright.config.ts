// Playwright runs the built `eventscope` binary four times (see webServer):
//  - "attached": watching a test NATS that scripts/test.sh started, so the
//    tests publish events and check what the page shows;
//  - "demo": with no arguments, i.e. demo mode (managed nats-server and the
//    built-in producer), exactly as the README's run command starts it;
//  - "signin": demo mode with sign-in on (`--auth users`), its users' hashes
//    made by the binary's `hash-password`;
//  - "oidc": demo mode signing in at a real OpenID Connect provider (PyPI
//    oidc-provider-mock, started here too).
// scripts/test.sh sets the variables below; it is the way to run these.
import { defineConfig } from "@playwright/test";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ACCESS_TABLES, USERS } from "./tests/signin/users";

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
const signinPort = need("E2E_SIGNIN_PORT");
const oidcPort = need("E2E_OIDC_PORT");
const providerPort = need("E2E_OIDC_PROVIDER_PORT");
const repoRoot = path.resolve(__dirname, "..");

// The "signin" server: demo mode with sign-in on, its users made by the
// binary's own `hash-password` (only hashes reach the config file).
// The passwords are the tests' (tests/signin/users.ts).
const signinConfig = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "eventscope-e2e-")), "eventscope.toml");
// The "oidc" server: demo mode signing in at a real OpenID Connect
// provider (PyPI oidc-provider-mock, on its own port), groups to roles.
const oidcConfig = path.join(path.dirname(signinConfig), "eventscope-oidc.toml");
fs.writeFileSync(
  oidcConfig,
  [
    'auth = "oidc"',
    'session_secret = "e2e-secret-e2e-secret-e2e-secret-e2e"',
    'default_role = "none"',
    "[oidc]",
    `issuer = "http://127.0.0.1:${providerPort}"`,
    'client_id = "eventscope-e2e"',
    'client_secret = "e2e-client-secret"',
    `redirect_url = "http://127.0.0.1:${oidcPort}/auth/callback"`,
    "[[role_mapping]]",
    'group = "ops"',
    'role = "operator"',
    // Auditors read the orders only, with customers masked.
    "[[role_mapping]]",
    'group = "auditors"',
    'role = "viewer"',
    'scope = "orders"',
    ACCESS_TABLES,
  ].join("\n"),
);
const providerUsers = [
  { sub: "ana", preferred_username: "ana", groups: ["everyone", "ops"] },
  { sub: "carl", preferred_username: "carl", groups: ["contractors"] },
  { sub: "dora", preferred_username: "dora", groups: ["auditors"] },
]
  .map((u) => `--user-claims '${JSON.stringify(u)}'`)
  .join(" ");
fs.writeFileSync(
  signinConfig,
  USERS.map(
    (u) =>
      execFileSync(bin, ["hash-password", "--name", u.name, "--role", u.role], {
        input: `${u.password}\n`,
        encoding: "utf8",
      }) + ("scope" in u ? `scope = "${u.scope}"\n` : ""),
  ).join("\n") + `\n${ACCESS_TABLES}\n`,
);

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
    {
      name: "signin",
      testMatch: /signin\/.*\.spec\.ts/,
      use: { baseURL: `http://127.0.0.1:${signinPort}` },
    },
    {
      name: "oidc",
      testMatch: /oidc\/.*\.spec\.ts/,
      use: { baseURL: `http://127.0.0.1:${oidcPort}` },
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
    {
      command: `"${bin}" --addr 127.0.0.1:${signinPort} --auth users --config "${signinConfig}" --demo-scenario saga=2 --demo-scenario logs=20`,
      url: `http://127.0.0.1:${signinPort}/healthz`,
      cwd: repoRoot,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "pipe",
    },
    {
      command: `oidc-provider-mock --port ${providerPort} --require-nonce true ${providerUsers}`,
      url: `http://127.0.0.1:${providerPort}/.well-known/openid-configuration`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "pipe",
    },
    {
      command: `"${bin}" --addr 127.0.0.1:${oidcPort} --config "${oidcConfig}" --demo-scenario saga=2 --demo-scenario logs=20`,
      url: `http://127.0.0.1:${oidcPort}/healthz`,
      cwd: repoRoot,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "pipe",
    },
  ],
});
