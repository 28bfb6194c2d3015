//! Process-wide counters shared by the stages (lock-free atomics). Each is
//! written by one stage and read by the hub, which reports them to browsers,
//! and later by `/metrics`.

use crate::store::StoreStats;
use app::wire::Health;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

impl Default for Stats {
    fn default() -> Self {
        Stats {
            ingested_core: AtomicU64::new(0),
            ingested_jetstream: AtomicU64::new(0),
            // 1 ms to about 16 s.
            ingest_to_frame: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            dropped_ingest: AtomicU64::new(0),
            checkpoint_micros: AtomicU64::new(0),
            slow_consumer_logged_ms: std::sync::atomic::AtomicI64::new(0),
            nats_slow_consumer: AtomicU64::new(0),
            js_seq_gaps: AtomicU64::new(0),
            js_redelivered: AtomicU64::new(0),
            ws_resyncs: AtomicU64::new(0),
            ws_clients: AtomicU64::new(0),
            ws_dropped_slow: AtomicU64::new(0),
            ws_refused: AtomicU64::new(0),
            ws_closed_bad: AtomicU64::new(0),
            nats_connected: AtomicBool::new(false),
            nats_connects: AtomicU64::new(0),
            not_utf8: AtomicU64::new(0),
            checkpoints_held: AtomicU64::new(0),
            projection_bytes: AtomicU64::new(0),
            checkpoint_bytes: AtomicU64::new(0),
            projection_budget: AtomicU64::new(0),
            checkpoints_dropped: AtomicU64::new(0),
            samples_over_series_cap: AtomicU64::new(0),
            samples_over_budget: AtomicU64::new(0),
            events_over_keys_cap: AtomicU64::new(0),
            tail_deferred: AtomicU64::new(0),
            ws_quota_refused: AtomicU64::new(0),
            js_recreated: AtomicU64::new(0),
            js_ack_unreadable: AtomicU64::new(0),
            audit_events: AtomicU64::new(0),
            audit_dropped: AtomicU64::new(0),
            audit_suppressed: AtomicU64::new(0),
            audit_published: AtomicU64::new(0),
            audit_unpublished: AtomicU64::new(0),
            internal_skipped: AtomicU64::new(0),
            hub_beat_ms: std::sync::atomic::AtomicI64::new(0),
            reconnected: tokio::sync::Notify::new(),
            schema_drifts: Default::default(),
            nats_client: std::sync::OnceLock::new(),
        }
    }
}

/// Counters about the pipeline's health.
#[derive(Debug)]
pub struct Stats {
    /// Messages received over core subscriptions.
    pub ingested_core: AtomicU64,
    /// Messages received from JetStream sources.
    pub ingested_jetstream: AtomicU64,
    /// Per live frame, seconds from receiving its oldest event to sending it.
    pub ingest_to_frame: Histogram,
    /// Messages dropped because the hub's queue was full.
    pub dropped_ingest: AtomicU64,
    /// Microseconds the hub spent copying its state into time-travel
    /// checkpoints (ingest waits meanwhile).
    pub checkpoint_micros: AtomicU64,
    /// Slow-consumer notices from the NATS client.
    pub nats_slow_consumer: AtomicU64,
    /// When a slow-consumer warning was last logged (Unix ms; at most one
    /// per 10 s).
    pub slow_consumer_logged_ms: std::sync::atomic::AtomicI64,
    /// JetStream stream sequences skipped (removed before we read them).
    pub js_seq_gaps: AtomicU64,
    /// JetStream messages a durable consumer delivered again (never
    /// acknowledged: in flight when a run stopped, or an ack lost).
    pub js_redelivered: AtomicU64,
    /// WebSocket clients that fell behind and were resynced.
    pub ws_resyncs: AtomicU64,
    /// WebSocket clients connected now.
    pub ws_clients: AtomicU64,
    /// WebSocket clients dropped because they stopped reading.
    pub ws_dropped_slow: AtomicU64,
    /// WebSocket upgrades refused because the server held its most
    /// connections.
    pub ws_refused: AtomicU64,
    /// Audit records written (`eventscope.audit.*`).
    pub audit_events: AtomicU64,
    /// Audit records the hub's queue had no room for (kept in the tracing
    /// log only).
    pub audit_dropped: AtomicU64,
    /// Refusals and failed sign-ins past the audit trail's rate, left out.
    pub audit_suppressed: AtomicU64,
    /// Audit records published to NATS (`--audit-to-nats`).
    pub audit_published: AtomicU64,
    /// Audit records not published to NATS: its queue was full, or the
    /// publish failed (the log and the tracing log have them).
    pub audit_unpublished: AtomicU64,
    /// Messages on NATS's internal subjects (`$SYS`, `$JS.API`, `$KV`,
    /// `$O`) a wildcard subscription received and ingest left out.
    pub internal_skipped: AtomicU64,
    /// WebSocket clients closed for sending too many messages the server
    /// could not read.
    pub ws_closed_bad: AtomicU64,
    /// Whether the NATS connection is up.
    pub nats_connected: AtomicBool,
    /// Times the NATS connection was (re)established.
    pub nats_connects: AtomicU64,
    /// Events whose subject or headers were not UTF-8 (read with U+FFFD).
    pub not_utf8: AtomicU64,
    /// Time-travel checkpoints held now (each a copy of every projection).
    pub checkpoints_held: AtomicU64,
    /// The live projections' weight in bytes (when last copied).
    pub projection_bytes: AtomicU64,
    /// What the checkpoints hold beyond it, in bytes.
    pub checkpoint_bytes: AtomicU64,
    /// Their byte budget together (`--projection-bytes`).
    pub projection_budget: AtomicU64,
    /// Checkpoints let go to stay within that budget.
    pub checkpoints_dropped: AtomicU64,
    /// Metric samples of series past the 1,000 the projections track.
    pub samples_over_series_cap: AtomicU64,
    /// Samples and values the projections left out at their byte budget
    /// (or a distinct-count bucket's cap).
    pub samples_over_budget: AtomicU64,
    /// Events the projections counted under "(overflow)" in a full
    /// per-subject, per-service or per-error table.
    pub events_over_keys_cap: AtomicU64,
    /// Tail-view refreshes put off to the next tick: the tick's share for
    /// tail views was spent.
    pub tail_deferred: AtomicU64,
    /// Subscriptions refused because the client's address held its most.
    pub ws_quota_refused: AtomicU64,
    /// JetStream streams found deleted and made again (read from their new
    /// start).
    pub js_recreated: AtomicU64,
    /// JetStream messages whose ack subject could not be read (no stream
    /// sequence): dropped.
    pub js_ack_unreadable: AtomicU64,
    /// When the live hub last ticked (Unix ms; 0 before its first tick):
    /// readiness fails when it stops turning.
    pub hub_beat_ms: std::sync::atomic::AtomicI64,
    /// Woken on every (re)connection, so JetStream sources re-attach at
    /// once instead of waiting for missed heartbeats.
    pub reconnected: tokio::sync::Notify,
    /// Schema drifts raised: new field, missing field, type change.
    pub schema_drifts: [AtomicU64; 3],
    /// The ingest connection's own counters (set once it is made).
    pub nats_client: std::sync::OnceLock<std::sync::Arc<async_nats::Statistics>>,
}

/// The kinds of schema drift, in the order of [`Stats::schema_drifts`].
pub const DRIFT_KINDS: [&str; 3] = ["new_field", "missing_field", "type_change"];

impl Stats {
    /// Messages the ingest connection read from NATS, on every
    /// subscription (core, JetStream, API replies). What it read but no
    /// source received was dropped by the client (a slow consumer: its
    /// subscription's buffer was full); async-nats's slow-consumer
    /// notices are only a lower bound of that.
    pub fn nats_messages_in(&self) -> u64 {
        self.nats_client
            .get()
            .map_or(0, |c| c.in_messages.load(Ordering::Relaxed))
    }

    /// Messages the NATS client read but dropped because a subscription's
    /// buffer was full (a slow consumer), counted per message.
    pub fn nats_dropped(&self) -> u64 {
        self.nats_client
            .get()
            .map_or(0, |c| c.slow_consumer_dropped.load(Ordering::Relaxed))
    }

    /// Bytes the NATS client holds for ingest's subscriptions, not yet
    /// taken by the receive loop (`--nats-buffer-bytes` bounds it).
    pub fn nats_buffered_bytes(&self) -> u64 {
        self.nats_client
            .get()
            .map_or(0, |c| c.buffered_bytes.load(Ordering::Relaxed))
    }

    /// The counters as the wire reports them (overflow is the hub's own).
    pub fn health(&self, store: &StoreStats) -> Health {
        Health {
            dropped_ingest: self.dropped_ingest.load(Ordering::Relaxed),
            overflow_subjects: 0,
            nats_slow_consumer: self.nats_dropped(),
            resyncs: self.ws_resyncs.load(Ordering::Relaxed),
            store_events: store.events,
            store_bytes: store.bytes,
            store_cap_bytes: store.cap_bytes,
            evicted: store.evicted,
            too_large: store.too_large,
            duplicates: store.duplicates,
            undecoded: store.raw,
            seq_gaps: self.js_seq_gaps.load(Ordering::Relaxed),
            schema_drifts: self
                .schema_drifts
                .iter()
                .map(|a| a.load(Ordering::Relaxed))
                .sum(),
        }
    }
}
