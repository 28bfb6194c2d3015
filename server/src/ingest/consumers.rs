//! JetStream consumers, polled (PRODUCT.md F8: "consumers where knowable").
//! Every few seconds the streams and their consumers are listed through the
//! JetStream API; for each consumer we keep what it reads (its filter, else
//! its stream's subjects), how far it has got, what is pending, and its
//! delivery rate between two polls. The topology draws them as nodes fed
//! by the subjects they read.
//!
//! This is live state from the server, not from the log: it is shown for
//! "now" only (a view of the past leaves it out). Eventscope's own
//! consumers (marked by [`OWN_CONSUMER`]) are left out.

use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Description Eventscope gives the consumers it creates to read streams.
pub const OWN_CONSUMER: &str = "eventscope: reads this stream for the dashboard";

/// Streams (and consumers per stream) listed at most per poll.
const MAX_CONSUMERS: usize = 500;

/// One consumer as last polled.
#[derive(Clone, Debug, PartialEq)]
pub struct JsConsumer {
    /// Its stream.
    pub stream: String,
    /// Its name.
    pub name: String,
    /// Subjects it reads: its filters, else its stream's subjects.
    pub subjects: Vec<String>,
    /// Its stream's subjects.
    pub stream_subjects: Vec<String>,
    /// Messages delivered (its consumer sequence).
    pub delivered: u64,
    /// Messages in the stream it has not been delivered yet.
    pub pending: u64,
    /// Delivered, not yet acknowledged.
    pub ack_pending: u64,
    /// Messages redelivered.
    pub redelivered: u64,
    /// Deliveries per second between the last two polls.
    pub per_sec: f64,
}

/// The consumers of the last poll, and when it was (Unix ms).
#[derive(Clone, Debug, Default)]
pub struct ConsumerTable {
    /// By stream, then name.
    pub consumers: Vec<JsConsumer>,
    /// When they were polled.
    pub polled_ms: i64,
    /// Why the last poll failed, if it did (no JetStream, no permission).
    pub error: Option<String>,
}

/// The table shared by the poller (writer) and the topology (reader).
pub type SharedConsumers = Arc<parking_lot::RwLock<ConsumerTable>>;

async fn poll(js: &async_nats::jetstream::Context) -> Result<Vec<JsConsumer>, String> {
    let mut out = Vec::new();
    let mut streams = js.streams();
    while let Some(info) = streams.next().await {
        let info = info.map_err(|e| format!("listing streams: {e}"))?;
        let stream = js
            .get_stream(&info.config.name)
            .await
            .map_err(|e| format!("stream {}: {e}", info.config.name))?;
        let mut consumers = stream.consumers();
        while let Some(c) = consumers.next().await {
            let c = c.map_err(|e| format!("consumers of {}: {e}", info.config.name))?;
            if c.config.description.as_deref() == Some(OWN_CONSUMER) {
                continue;
            }
            let mut subjects = c.config.filter_subjects.clone();
            if !c.config.filter_subject.is_empty() {
                subjects.push(c.config.filter_subject.clone());
            }
            if subjects.is_empty() {
                subjects = info.config.subjects.clone();
            }
            out.push(JsConsumer {
                stream: c.stream_name.clone(),
                name: c.name.clone(),
                subjects,
                stream_subjects: info.config.subjects.clone(),
                delivered: c.delivered.consumer_sequence,
                pending: c.num_pending,
                ack_pending: c.num_ack_pending as u64,
                redelivered: c.num_redelivered as u64,
                per_sec: 0.0,
            });
            if out.len() >= MAX_CONSUMERS {
                return Ok(out);
            }
        }
    }
    out.sort_by(|a, b| (&a.stream, &a.name).cmp(&(&b.stream, &b.name)));
    Ok(out)
}

/// Polls `client`'s JetStream every `every` into `table` until `shutdown`.
pub async fn watch(
    client: async_nats::Client,
    table: SharedConsumers,
    every: Duration,
    shutdown: CancellationToken,
) {
    let js = async_nats::jetstream::new(client);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: HashMap<(String, String), (u64, i64)> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = crate::event::now_ms();
        // (A stop does not wait for a poll: with NATS down it waits for
        // its whole timeout.)
        let polled = tokio::select! {
            _ = shutdown.cancelled() => return,
            polled = tokio::time::timeout(every.max(Duration::from_secs(2)), poll(&js)) => polled,
        };
        match polled {
            Ok(Ok(mut consumers)) => {
                for c in &mut consumers {
                    let key = (c.stream.clone(), c.name.clone());
                    if let Some((delivered, at)) = last.get(&key)
                        && now > *at
                    {
                        c.per_sec = c.delivered.saturating_sub(*delivered) as f64 * 1_000.0
                            / (now - at) as f64;
                    }
                    last.insert(key, (c.delivered, now));
                }
                last.retain(|k, _| {
                    consumers
                        .iter()
                        .any(|c| (&c.stream, &c.name) == (&k.0, &k.1))
                });
                *table.write() = ConsumerTable {
                    consumers,
                    polled_ms: now,
                    error: None,
                };
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "jetstream consumers not listed");
                table.write().error = Some(e);
            }
            Err(_) => {
                table.write().error = Some("listing JetStream consumers timed out".to_string());
            }
        }
    }
}
