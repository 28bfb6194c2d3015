//! The demo producer: publishes the scenarios' flows (`scenarios`) when
//! their messages fall due, and background logs and metrics from made-up
//! services (JSON log events on `logs.<service>`, metric events on
//! `metrics.<service>`, with an occasional burst of errors). Each
//! scenario's rate can be changed while it runs ([`DemoControl`]). An
//! ordinary NATS client: what it publishes, the dashboard ingests like
//! anyone's traffic.

use super::scenarios::{Message, Outcome, Scenario, Scripts};
use app::api::{DemoScenario, DemoState};
use serde_json::json;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
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
/// Publish ticks per second; events are spread evenly over them, and a
/// flow's steps go out within 10 ms of when they fall due.
const TICKS_PER_SEC: u32 = 100;

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
    /// Each service's work queue depth (a random walk that climbs during
    /// incidents and drains after).
    depth: [f64; SERVICES.len()],
}

impl Generator {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Generator {
            rng: fastrand::Rng::with_seed(seed),
            n: 0,
            depth: [4.0; SERVICES.len()],
        }
    }

    /// The next event, stamped with `ts_ms` (Unix milliseconds).
    pub fn next_event(&mut self, ts_ms: u64) -> DemoEvent {
        self.n += 1;
        let which = self.rng.usize(..SERVICES.len());
        let service = SERVICES[which];
        // Every ~30 s of a 200/s stream, "payments" has a short error burst.
        let burst = (self.n / 2_000) % 3 == 2 && self.n % 2_000 < 150;
        if self.rng.u8(..8) == 0 {
            // Queue depth: drifts around a few, climbs while payments burns.
            let d = &mut self.depth[which];
            let push = if burst && service == "payments" {
                12.0
            } else {
                0.0
            };
            *d = (*d + self.rng.f64() * 4.0 - 2.1 + push - (*d - 4.0) * 0.02).clamp(0.0, 2_000.0);
            DemoEvent {
                subject: format!("metrics.{service}"),
                payload: json!({
                    "name": "queue_depth",
                    "value": d.round(),
                    "ts": ts_ms,
                    "tags": {"service": service, "queue": format!("{service}.work")},
                })
                .to_string(),
            }
        } else if self.rng.u8(..7) == 0 {
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

/// The process's monotonic clock (`event::now_ms`): the schedule never
/// stalls on a wall-clock step.
fn now_ms() -> u64 {
    u64::try_from(crate::event::now_ms()).unwrap_or(0)
}

/// Messages scheduled at most; past it no new flow starts (counted).
const MAX_PENDING: usize = 100_000;

/// The demo's dials and counters, shared by the producer, the API and the
/// UI: each scenario's rate (changeable while it runs) and what it has
/// generated so far.
#[derive(Debug)]
pub struct DemoControl {
    state: parking_lot::Mutex<BTreeMap<Scenario, DemoScenario>>,
    pending: AtomicU64,
}

impl DemoControl {
    /// Every scenario at the rate `rates` gives it (missing ones off).
    pub fn new(rates: &BTreeMap<Scenario, f64>) -> Self {
        DemoControl {
            state: parking_lot::Mutex::new(
                Scenario::ALL
                    .into_iter()
                    .map(|s| {
                        (
                            s,
                            DemoScenario {
                                name: s.name().to_string(),
                                rate: rates.get(&s).copied().unwrap_or(0.0),
                                unit: s.unit().to_string(),
                                ..DemoScenario::default()
                            },
                        )
                    })
                    .collect(),
            ),
            pending: AtomicU64::new(0),
        }
    }

    /// Sets `scenario`'s rate (0 stops new flows; those under way finish).
    pub fn set_rate(&self, scenario: Scenario, rate: f64) {
        if let Some(s) = self.state.lock().get_mut(&scenario) {
            s.rate = rate.clamp(0.0, MAX_RATE);
        }
    }

    /// A copy of the state, for the API.
    pub fn snapshot(&self) -> DemoState {
        DemoState {
            running: true,
            scenarios: self.state.lock().values().cloned().collect(),
            pending: self.pending.load(Ordering::Relaxed),
        }
    }

    fn rates(&self) -> Vec<(Scenario, f64)> {
        self.state
            .lock()
            .iter()
            .map(|(k, v)| (*k, v.rate))
            .collect()
    }

    fn record(&self, scenario: Scenario, f: impl FnOnce(&mut DemoScenario)) {
        if let Some(s) = self.state.lock().get_mut(&scenario) {
            f(s);
        }
    }
}

/// Highest rate a scenario accepts (flows or events per second).
pub const MAX_RATE: f64 = 100_000.0;

/// A message waiting for its time.
struct Due {
    at_ms: u64,
    order: u64,
    scenario: Scenario,
    message: Message,
}

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        (self.at_ms, self.order) == (o.at_ms, o.order)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    // Earliest first out of a max-heap.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.at_ms, o.order).cmp(&(self.at_ms, self.order))
    }
}

/// The stream the account events are kept in.
pub const ACCOUNT_STREAM: &str = "ACCOUNTS";

/// The durable consumer the demo's "statements" service reads the account
/// events with.
pub const STATEMENTS_CONSUMER: &str = "statements";

/// The demo's statements service: reads the account stream through a
/// durable JetStream consumer, a batch every half second, and acknowledges
/// what it read (so the topology shows a consumer with little pending).
async fn statements_service(client: async_nats::Client, shutdown: CancellationToken) {
    use async_nats::jetstream::consumer::pull;
    use futures::StreamExt;
    let js = async_nats::jetstream::new(client);
    let consumer = async {
        js.get_stream(ACCOUNT_STREAM)
            .await?
            .get_or_create_consumer(
                STATEMENTS_CONSUMER,
                pull::Config {
                    durable_name: Some(STATEMENTS_CONSUMER.to_string()),
                    description: Some("demo: account statements".to_string()),
                    ..Default::default()
                },
            )
            .await
            .map_err(Into::<Box<dyn std::error::Error + Send + Sync>>::into)
    }
    .await;
    let consumer: async_nats::jetstream::consumer::Consumer<pull::Config> = match consumer {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "demo: no statements consumer");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let batch = consumer
            .fetch()
            .max_messages(100)
            .expires(Duration::from_millis(200))
            .messages()
            .await;
        let Ok(mut batch) = batch else { continue };
        while let Some(Ok(m)) = batch.next().await {
            let _ = m.ack().await;
        }
    }
}

async fn ensure_account_stream(client: &async_nats::Client) {
    let js = async_nats::jetstream::new(client.clone());
    let made = js
        .get_or_create_stream(async_nats::jetstream::stream::Config {
            name: ACCOUNT_STREAM.to_string(),
            subjects: vec!["accounts.>".to_string()],
            max_age: Duration::from_secs(24 * 3_600),
            max_bytes: 64 << 20,
            ..Default::default()
        })
        .await;
    if let Err(e) = made {
        tracing::warn!(error = %e, "demo: no JetStream stream for the account events; publishing them on core NATS only");
    }
}

/// Publishes every scenario at the rates in `control` on `client` until
/// `shutdown`; flows under way when a rate drops to 0 still finish.
pub async fn run(
    client: async_nats::Client,
    control: std::sync::Arc<DemoControl>,
    seed: u64,
    shutdown: CancellationToken,
) {
    // Every await of the producer (a JetStream request, a publish waiting
    // for room while NATS is down) ends at shutdown, not when NATS answers.
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = produce(client, control, seed, shutdown.clone()) => {}
    }
    tracing::info!("demo producer stopped");
}

async fn produce(
    client: async_nats::Client,
    control: std::sync::Arc<DemoControl>,
    seed: u64,
    shutdown: CancellationToken,
) {
    ensure_account_stream(&client).await;
    tokio::spawn(statements_service(client.clone(), shutdown.clone()));
    let mut generator = Generator::new(seed);
    let mut scripts = Scripts::new(seed);
    scripts.v2_from_ms = now_ms() + 60_000;
    let mut queue: BinaryHeap<Due> = BinaryHeap::new();
    let mut owed: BTreeMap<Scenario, f64> = BTreeMap::new();
    let mut order = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1) / TICKS_PER_SEC);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = now_ms();
    tracing::info!(scenarios = ?control.rates(), "demo producer started");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = now_ms();
        let dt = now.saturating_sub(last).min(1_000) as f64 / 1_000.0;
        last = now;
        for (scenario, rate) in control.rates() {
            let o = owed.entry(scenario).or_default();
            *o += rate * dt;
            if rate == 0.0 {
                *o = 0.0;
            }
            let n = o.floor();
            *o -= n;
            for _ in 0..n as u64 {
                if scenario == Scenario::Logs {
                    let ev = generator.next_event(now);
                    if client.publish(ev.subject, ev.payload.into()).await.is_ok() {
                        control.record(scenario, |s| s.published += 1);
                    }
                    continue;
                }
                if queue.len() >= MAX_PENDING {
                    break;
                }
                let script = scripts.next(scenario, now);
                control.record(scenario, |s| {
                    if script.correlation.is_some() {
                        s.started += 1;
                    }
                    match script.outcome {
                        Some(Outcome::Completed) => s.completed += 1,
                        Some(Outcome::Compensated) => s.compensated += 1,
                        Some(Outcome::Stalled) => s.stalled += 1,
                        None => {}
                    }
                });
                for message in script.messages {
                    order += 1;
                    queue.push(Due {
                        at_ms: now + message.delay_ms,
                        order,
                        scenario,
                        message,
                    });
                }
            }
        }
        while queue.peek().is_some_and(|d| d.at_ms <= now) {
            let Some(due) = queue.pop() else { break };
            let mut headers = async_nats::HeaderMap::new();
            for (k, v) in &due.message.headers {
                headers.insert(k.as_str(), v.as_str());
            }
            let Message {
                subject,
                payload,
                reply,
                ..
            } = due.message;
            let sent = match reply {
                Some(reply) => {
                    client
                        .publish_with_reply_and_headers(subject, reply, headers, payload.into())
                        .await
                }
                None => {
                    client
                        .publish_with_headers(subject, headers, payload.into())
                        .await
                }
            };
            match sent {
                Ok(()) => control.record(due.scenario, |s| s.published += 1),
                Err(e) => tracing::debug!(error = %e, "demo publish failed"),
            }
        }
        control.pending.store(queue.len() as u64, Ordering::Relaxed);
    }
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
        // Request latency and queue depth, and payments' queue climbs in
        // its incident.
        let mut g = Generator::new(7);
        let (mut names, mut payments_max) = (std::collections::BTreeSet::new(), 0.0f64);
        for _ in 0..20_000 {
            let ev = g.next_event(1);
            let v: serde_json::Value = serde_json::from_str(&ev.payload).expect("json");
            if let Some(name) = v["name"].as_str() {
                names.insert(name.to_string());
                if name == "queue_depth" && ev.subject == "metrics.payments" {
                    payments_max = payments_max.max(v["value"].as_f64().expect("value"));
                }
            }
        }
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["http_request_duration_ms", "queue_depth"]
        );
        assert!(payments_max > 50.0, "{payments_max}");
    }

    #[test]
    fn same_seed_same_events() {
        let (mut a, mut b) = (Generator::new(3), Generator::new(3));
        for _ in 0..100 {
            assert_eq!(a.next_event(5), b.next_event(5));
        }
    }
}
