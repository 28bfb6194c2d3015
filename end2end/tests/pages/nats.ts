// Publishing test events to the test NATS (`E2E_NATS_URL`).
import { connect, StringCodec } from "nats";

const sc = StringCodec();

/** Publishes each `[subject, payload]` in order (objects as JSON), then flushes. */
export async function publishAll(messages: Array<[string, unknown]>) {
  const nc = await connect({ servers: process.env.E2E_NATS_URL });
  try {
    for (const [subject, payload] of messages) {
      nc.publish(subject, sc.encode(typeof payload === "string" ? payload : JSON.stringify(payload)));
    }
    await nc.flush();
  } finally {
    await nc.close();
  }
}

/** `n` messages to `subject`, the i-th made by `make(i)`. */
export function times(subject: string, n: number, make: (i: number) => unknown): Array<[string, unknown]> {
  return Array.from({ length: n }, (_, i) => [subject, make(i)] as [string, unknown]);
}
