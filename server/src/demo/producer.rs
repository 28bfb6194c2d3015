//! The demo producer: a handful of made-up services publishing JSON log
//! events on `logs.<service>` and metric events on `metrics.<service>`, at a
//! steady total rate with an occasional burst of errors. An ordinary NATS
//! client: what it publishes, the dashboard ingests like anyone's traffic.

use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

const SERVICES: [&str; 5] = ["orders", "payments", "inventory", "shipping", "users"];
const MESSAGES: [(&str, &str); 8] = [
    ("info", "request handled"),
    ("info", "order placed"),
    ("info", "payment authorised"),
    ("debug", "cache hit"),
    ("info", "stock reserved"),
    ("warn", "retrying upstream call"),
    ("info", "shipment scheduled"),
    ("error", "upstream timed out"),
];
/// Publish ticks per second; events are spread evenly over them.
const TICKS_PER_SEC: u32 = 20;

/// One demo event: a subject and its JSON payload.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoEvent {
    /// Where it is published.
    pub subject: String,
    /// The JSON payload.
    pub payload: String,
}

/// Makes the demo's events; deterministic for a given seed.
#[derive(Debug)]
pub struct Generator {
    rng: fastrand::Rng,
    n: u64,
}

impl Generator {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Generator {
            rng: fastrand::Rng::with_seed(seed),
            n: 0,
        }
    }

    /// The next event, stamped with `ts_ms` (Unix milliseconds).
    pub fn next_event(&mut self, ts_ms: u64) -> DemoEvent {
        self.n += 1;
        let service = SERVICES[self.rng.usize(..SERVICES.len())];
        // Every ~30 s of a 200/s stream, "payments" has a short error burst.
        let burst = (self.n / 2_000) % 3 == 2 && self.n % 2_000 < 150;
        if self.rng.u8(..4) == 0 {
            let latency = 5.0 + self.rng.f64() * 40.0 + if burst { 400.0 } else { 0.0 };
            DemoEvent {
                subject: format!("metrics.{service}"),
                payload: json!({
                    "name": "http_request_duration_ms",
                    "value": (latency * 10.0).round() / 10.0,
                    "ts": ts_ms,
                    "tags": {"service": service, "route": "/api"},
                })
                .to_string(),
            }
        } else {
            let (service, (level, msg)) = if burst && self.rng.bool() {
                ("payments", ("error", "card processor unavailable"))
            } else {
                (service, MESSAGES[self.rng.usize(..MESSAGES.len())])
            };
            DemoEvent {
                subject: format!("logs.{service}"),
                payload: json!({
                    "ts": ts_ms,
                    "level": level,
                    "service": service,
                    "msg": msg,
                    "request_id": format!("{:016x}", self.rng.u64(..)),
                })
                .to_string(),
            }
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Publishes `rate` events per second on `client` until `shutdown`.
pub async fn run(client: async_nats::Client, rate: u32, shutdown: CancellationToken) {
    let mut generator = Generator::new(now_ms());
    let mut tick = tokio::time::interval(Duration::from_secs(1) / TICKS_PER_SEC);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Spread `rate` over the ticks without losing the remainder.
    let mut owed: u64 = 0;
    tracing::info!(rate, "demo producer started");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        owed += u64::from(rate);
        let n = owed / u64::from(TICKS_PER_SEC);
        owed %= u64::from(TICKS_PER_SEC);
        let ts = now_ms();
        for _ in 0..n {
            let ev = generator.next_event(ts);
            if let Err(e) = client.publish(ev.subject, ev.payload.into()).await {
                tracing::debug!(error = %e, "demo publish failed");
            }
        }
    }
    tracing::info!("demo producer stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_json_on_logs_or_metrics_subjects() {
        let mut g = Generator::new(7);
        let mut levels = std::collections::BTreeSet::new();
        for _ in 0..5_000 {
            let ev = g.next_event(1);
            let v: serde_json::Value = serde_json::from_str(&ev.payload).expect("json");
            let (kind, service) = ev.subject.split_once('.').expect("two tokens");
            assert!(SERVICES.contains(&service), "{}", ev.subject);
            match kind {
                "logs" => {
                    levels.insert(v["level"].as_str().expect("level").to_string());
                    assert_eq!(v["service"], service);
                }
                "metrics" => assert!(v["value"].as_f64().is_some()),
                other => panic!("unexpected subject kind {other}"),
            }
        }
        assert!(
            levels.contains("error") && levels.contains("info"),
            "{levels:?}"
        );
    }

    #[test]
    fn same_seed_same_events() {
        let (mut a, mut b) = (Generator::new(3), Generator::new(3));
        for _ in 0..100 {
            assert_eq!(a.next_event(5), b.next_event(5));
        }
    }
}
