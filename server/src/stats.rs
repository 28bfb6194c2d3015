//! Process-wide counters shared by the stages (lock-free atomics). Each is
//! written by one stage and read by the hub, which reports them to browsers,
//! and later by `/metrics`.

use crate::store::StoreStats;
use app::wire::Health;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters about the pipeline's health.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages received from NATS.
    pub ingested: AtomicU64,
    /// Messages dropped because the hub's queue was full.
    pub dropped_ingest: AtomicU64,
    /// Slow-consumer notices from the NATS client.
    pub nats_slow_consumer: AtomicU64,
    /// JetStream stream sequences skipped (removed before we read them).
    pub js_seq_gaps: AtomicU64,
    /// WebSocket clients that fell behind and were resynced.
    pub ws_resyncs: AtomicU64,
    /// WebSocket clients connected now.
    pub ws_clients: AtomicU64,
    /// Whether the NATS connection is up.
    pub nats_connected: AtomicBool,
    /// Times the NATS connection was (re)established.
    pub nats_connects: AtomicU64,
    /// Woken on every (re)connection, so JetStream sources re-attach at
    /// once instead of waiting for missed heartbeats.
    pub reconnected: tokio::sync::Notify,
}

impl Stats {
    /// The counters as the wire reports them (overflow is the hub's own).
    pub fn health(&self, store: &StoreStats) -> Health {
        Health {
            dropped_ingest: self.dropped_ingest.load(Ordering::Relaxed),
            overflow_subjects: 0,
            nats_slow_consumer: self.nats_slow_consumer.load(Ordering::Relaxed),
            resyncs: self.ws_resyncs.load(Ordering::Relaxed),
            store_events: store.events,
            store_bytes: store.bytes,
            store_cap_bytes: store.cap_bytes,
            evicted: store.evicted,
            too_large: store.too_large,
            duplicates: store.duplicates,
            undecoded: store.raw,
            seq_gaps: self.js_seq_gaps.load(Ordering::Relaxed),
        }
    }
}
