//! `GET /metrics`: Prometheus text about Eventscope itself (PRODUCT.md
//! F13), encoded by `prometheus-client`. Counters live where they are
//! counted (atomics in [`Stats`], the log's own stats); a collector reads
//! them at scrape time, so the hot path pays nothing for the exporter.

use crate::AppState;
use crate::stats::Stats;
use crate::store::SharedStore;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Reads the pipeline's counters at scrape time.
#[derive(Debug)]
struct PipelineCollector {
    stats: Arc<Stats>,
    store: SharedStore,
}

/// A labelled family: one metric (`ConstCounter`, `ConstGauge`) per label
/// set. (None: no family is written.)
fn family<'a, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    members: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, M)>,
) -> Result<(), std::fmt::Error> {
    let mut members = members.into_iter().peekable();
    let Some(kind) = members.peek().map(|(_, m)| m.metric_type()) else {
        return Ok(());
    };
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (set, m) in members {
        m.encode(family.encode_family(&set)?)?;
    }
    Ok(())
}

/// A family of counters with one label.
fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    labels: &[(&str, &str, u64)],
) -> Result<(), std::fmt::Error> {
    family(
        encoder,
        name,
        help,
        labels
            .iter()
            .map(|(key, value, n)| (vec![(*key, *value)], ConstCounter::new(*n))),
    )
}

fn plain_counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    n: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(n);
    c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: i64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for PipelineCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.stats;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let (store, dictionaries) = {
            let log = self.store.read();
            let dictionaries: Vec<_> = log
                .dictionaries()
                .map(|(name, d)| {
                    (
                        name,
                        d.overflowed(),
                        d.too_long(),
                        d.bytes() as i64,
                        d.retired(),
                    )
                })
                .collect();
            (log.stats(), dictionaries)
        };
        // Counter names get `_total` appended by the encoder.
        counter(
            &mut e,
            "eventscope_events_ingested",
            "Messages received from NATS, by source kind",
            &[
                ("source", "core", load(&s.ingested_core)),
                ("source", "jetstream", load(&s.ingested_jetstream)),
            ],
        )?;
        plain_counter(
            &mut e,
            "eventscope_events_decode_failed",
            "Events whose payload decoded as nothing (kept as raw bytes)",
            store.raw,
        )?;
        counter(
            &mut e,
            "eventscope_events_dropped",
            "Events lost, by reason",
            &[
                ("reason", "nats_slow_consumer", s.nats_dropped()),
                ("reason", "ingest_queue_full", load(&s.dropped_ingest)),
                ("reason", "larger_than_store_cap", store.too_large),
                ("reason", "jetstream_sequence_gap", load(&s.js_seq_gaps)),
                (
                    "reason",
                    "jetstream_ack_unreadable",
                    load(&s.js_ack_unreadable),
                ),
            ],
        )?;
        plain_counter(
            &mut e,
            "eventscope_events_duplicate",
            "Events whose Nats-Msg-Id was seen before (kept, flagged, not folded)",
            store.duplicates,
        )?;
        let spent = ConstCounter::new(load(&s.checkpoint_micros) as f64 / 1e6);
        spent.encode(e.encode_descriptor(
            "eventscope_checkpoint_seconds",
            "Seconds the hub spent copying its state into time-travel checkpoints (ingest waits meanwhile)",
            None,
            spent.metric_type(),
        )?)?;
        family(
            &mut e,
            "eventscope_dictionary_overflow",
            "Strings the log's dictionaries did not keep (read as \"(overflow)\"; the event keeps its own text where it has one), by dictionary and reason",
            dictionaries
                .iter()
                .flat_map(|(name, full, too_long, _, _)| {
                    [("full", *full), ("too_long", *too_long)].map(|(reason, n)| {
                        (
                            vec![("dictionary", *name), ("reason", reason)],
                            ConstCounter::new(n),
                        )
                    })
                }),
        )?;
        family(
            &mut e,
            "eventscope_dictionary_bytes",
            "Bytes each of the log's dictionaries holds (each at most a fortieth of the log's cap)",
            dictionaries.iter().map(|(name, _, _, bytes, _)| {
                (vec![("dictionary", *name)], ConstGauge::new(*bytes))
            }),
        )?;
        family(
            &mut e,
            "eventscope_dictionary_retired",
            "Strings the log's dictionaries let go, nearly full, because no event still held used them (their ids are not reused; a projection still counting one reads \"(forgotten)\"), by dictionary",
            dictionaries.iter().map(|(name, _, _, _, retired)| {
                (vec![("dictionary", *name)], ConstCounter::new(*retired))
            }),
        )?;
        counter(
            &mut e,
            "eventscope_event_parts_cut",
            "Parts of events the log did not keep whole: correlation ids over 255 bytes (cut), reply subjects over 255 bytes (left out), metric samples past 65,535 in one event (left out)",
            &[
                ("part", "correlation_id", store.correlation_ids_cut),
                ("part", "reply_subject", store.reply_subjects_dropped),
                ("part", "samples", store.samples_cut),
            ],
        )?;
        plain_counter(
            &mut e,
            "eventscope_messages_cut",
            "Warn-or-worse log messages longer than 256 bytes, grouped by their start (the event keeps the whole text)",
            store.messages_cut,
        )?;
        plain_counter(
            &mut e,
            "eventscope_store_evicted",
            "Events evicted from the log to stay under its byte cap",
            store.evicted,
        )?;
        gauge(
            &mut e,
            "eventscope_store_bytes",
            "Bytes the event log holds",
            store.bytes as i64,
        )?;
        gauge(
            &mut e,
            "eventscope_store_cap_bytes",
            "The event log's byte cap",
            store.cap_bytes as i64,
        )?;
        gauge(
            &mut e,
            "eventscope_store_events",
            "Events the log holds",
            store.events as i64,
        )?;
        gauge(
            &mut e,
            "eventscope_ws_clients",
            "WebSocket clients connected",
            load(&s.ws_clients) as i64,
        )?;
        plain_counter(
            &mut e,
            "eventscope_ws_resyncs",
            "WebSocket clients that fell behind and were sent a fresh snapshot",
            load(&s.ws_resyncs),
        )?;
        plain_counter(
            &mut e,
            "eventscope_jetstream_redelivered",
            "JetStream messages a durable consumer delivered again because no run acknowledged them (handed on now)",
            load(&s.js_redelivered),
        )?;
        plain_counter(
            &mut e,
            "eventscope_ws_refused",
            "WebSocket upgrades refused: the server held its most connections (4,096), or the address opened them too fast (429)",
            load(&s.ws_refused),
        )?;
        family(
            &mut e,
            "eventscope_audit_records",
            "Audit records (sign-ins, refusals, changes): written, dropped (the hub's queue was full; the tracing log has them), suppressed (refusals and failed sign-ins past 20 a second), published to NATS (--audit-to-nats) and unpublished (its queue full or the publish failed)",
            [
                ("written", &s.audit_events),
                ("dropped", &s.audit_dropped),
                ("suppressed", &s.audit_suppressed),
                ("published", &s.audit_published),
                ("unpublished", &s.audit_unpublished),
            ]
            .map(|(outcome, n)| (vec![("outcome", outcome)], ConstCounter::new(load(n)))),
        )?;
        plain_counter(
            &mut e,
            "eventscope_internal_skipped",
            "Messages on NATS's internal subjects ($SYS, $JS.API, $KV, $O) that a wildcard subscription received and ingest left out (name them in --subject to watch them)",
            load(&s.internal_skipped),
        )?;
        plain_counter(
            &mut e,
            "eventscope_ws_closed_bad",
            "WebSocket clients closed after 20 messages the server could not read",
            load(&s.ws_closed_bad),
        )?;
        plain_counter(
            &mut e,
            "eventscope_tail_refreshes_deferred",
            "Tail-view refreshes put off to the next tick because tail views had used their quarter of the hub's tick (many costly tail filters)",
            load(&s.tail_deferred),
        )?;
        plain_counter(
            &mut e,
            "eventscope_ws_quota_refused",
            "Subscriptions refused because the live connections of the client's address held the most one address may (--ws-per-address)",
            load(&s.ws_quota_refused),
        )?;
        plain_counter(
            &mut e,
            "eventscope_ws_dropped_slow",
            "WebSocket clients dropped because a frame could not be sent within 5 s",
            load(&s.ws_dropped_slow),
        )?;
        plain_counter(
            &mut e,
            "eventscope_nats_slow_consumer",
            "Slow-consumer notices from the NATS client (the messages lost are eventscope_events_dropped{reason=\"nats_slow_consumer\"}; notices are themselves dropped when many come at once)",
            load(&s.nats_slow_consumer),
        )?;
        plain_counter(
            &mut e,
            "eventscope_nats_messages_in",
            "Messages the ingest connection read from NATS on every subscription (events, JetStream API replies), kept or dropped",
            s.nats_messages_in(),
        )?;
        plain_counter(
            &mut e,
            "eventscope_nats_connects",
            "Times the ingest connection to NATS was made (1 plus reconnects)",
            load(&s.nats_connects),
        )?;
        plain_counter(
            &mut e,
            "eventscope_jetstream_stream_recreated",
            "JetStream streams found deleted and made again (sequences restarted): read again from their start",
            load(&s.js_recreated),
        )?;
        plain_counter(
            &mut e,
            "eventscope_events_not_utf8",
            "Events kept whose subject or headers held bytes that are not UTF-8 (shown as U+FFFD)",
            load(&s.not_utf8),
        )?;
        let drifts: Vec<(&str, &str, u64)> = crate::stats::DRIFT_KINDS
            .iter()
            .zip(&s.schema_drifts)
            .map(|(kind, n)| ("kind", *kind, load(n)))
            .collect();
        counter(
            &mut e,
            "eventscope_schema_drift",
            "Schema drifts raised, by kind (each is also an event on eventscope.schema.drift)",
            &drifts,
        )?;
        gauge(
            &mut e,
            "eventscope_checkpoints",
            "Time-travel checkpoints held now, each a copy of every projection's state (at most 64, and within --projection-bytes with the live state)",
            load(&s.checkpoints_held) as i64,
        )?;
        family(
            &mut e,
            "eventscope_projection_bytes",
            "Bytes the projections hold: the live state (as weighed each second) and what the time-travel checkpoints hold beyond it",
            [
                ("live", &s.projection_bytes),
                ("checkpoints", &s.checkpoint_bytes),
            ]
            .map(|(state, n)| (vec![("state", state)], ConstGauge::new(load(n) as i64))),
        )?;
        gauge(
            &mut e,
            "eventscope_projection_budget_bytes",
            "The byte budget of the projections and checkpoints together (--projection-bytes)",
            load(&s.projection_budget) as i64,
        )?;
        counter(
            &mut e,
            "eventscope_projection_left_out",
            "What the projections left out: metric samples of series past the 1,000 tracked (series_cap); samples and user-defined projections' values at the byte budget, which takes no new series, sketch buckets or groups, and puts a sample outside a bucket's range at its nearest end in the quantile sketch (budget); events counted under \"(overflow)\" in a per-subject, per-service or per-error table holding 10,000 keys (keys_cap; keys with nothing in the last hour are let go each minute)",
            &[
                ("reason", "series_cap", load(&s.samples_over_series_cap)),
                ("reason", "budget", load(&s.samples_over_budget)),
                ("reason", "keys_cap", load(&s.events_over_keys_cap)),
            ],
        )?;
        plain_counter(
            &mut e,
            "eventscope_checkpoints_dropped",
            "Time-travel checkpoints let go to stay within --projection-bytes (time travel then folds further, or reaches less far back)",
            load(&s.checkpoints_dropped),
        )?;
        gauge(
            &mut e,
            "eventscope_nats_buffered_bytes",
            "Bytes the NATS client holds for ingest's subscriptions, waiting for the receive loop (bounded by --nats-buffer-bytes)",
            s.nats_buffered_bytes() as i64,
        )?;
        gauge(
            &mut e,
            "eventscope_nats_connected",
            "1 while the NATS connection is up",
            i64::from(s.nats_connected.load(Ordering::Relaxed)),
        )?;
        Ok(())
    }
}

/// The registry served at `/metrics`.
pub fn registry(stats: Arc<Stats>, store: SharedStore) -> Registry {
    let mut registry = Registry::default();
    registry.register(
        "eventscope_ingest_to_frame_seconds",
        "Per live frame: seconds from receiving the oldest event it carries to sending it",
        stats.ingest_to_frame.clone(),
    );
    registry.register_collector(Box::new(PipelineCollector { stats, store }));
    registry
}

/// `GET /metrics`.
pub async fn handler(State(state): State<AppState>) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.metrics) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {e}"),
        )
            .into_response(),
    }
}
