// The page's WebSocket reconnects by itself after the server restarts, and
// the views it watched come back live. This spec runs its own Eventscope
// (the same binary, on a free port) so that it can stop and start it.
import { expect, test } from "@playwright/test";
import { type ChildProcess, spawn } from "node:child_process";
import * as net from "node:net";
import { connect, StringCodec } from "nats";
import { OverviewPage } from "../pages/overview";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function startServer(port: number, subject: string): Promise<ChildProcess> {
  const child = spawn(
    process.env.EVENTSCOPE_BIN!,
    ["--nats-url", process.env.E2E_NATS_URL!, "--subject", subject, "--addr", `127.0.0.1:${port}`],
    { stdio: "ignore" },
  );
  await expect
    .poll(
      async () => {
        try {
          return (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
        } catch {
          return 0;
        }
      },
      { timeout: 30_000 },
    )
    .toBe(200);
  return child;
}

async function stopServer(child: ChildProcess) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

test("the live connection comes back after the server restarts", async ({ page }, testInfo) => {
  const port = await freePort();
  const prefix = `e2e.rc${Math.random().toString(36).slice(2, 7)}`;
  let server = await startServer(port, `${prefix}.>`);
  try {
    const overview = new OverviewPage(page);
    await overview.goto(`http://127.0.0.1:${port}/`);

    await stopServer(server);
    await expect(overview.linkState).toContainText("reconnecting");
    await page.screenshot({ path: testInfo.outputPath("reconnecting.png") });

    server = await startServer(port, `${prefix}.>`);
    await expect(overview.linkState).toHaveText("live", { timeout: 20_000 });
    await expect(overview.natsState).toHaveText("NATS: connected");

    // The counts view was restored on the new connection: new events show.
    const nc = await connect({ servers: process.env.E2E_NATS_URL });
    const sc = StringCodec();
    try {
      await expect
        .poll(
          async () => {
            nc.publish(`${prefix}.after`, sc.encode(JSON.stringify({ msg: "back" })));
            await nc.flush();
            return overview.row(`${prefix}.after`).count();
          },
          { timeout: 20_000 },
        )
        .toBeGreaterThan(0);
    } finally {
      await nc.close();
    }
    // The only console noise allowed is the browser's own report of the
    // refused connection attempts while the server was down.
    const other = overview.consoleErrors.filter((m) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(m));
    expect(other).toEqual([]);
  } finally {
    await stopServer(server);
  }
});
