//! `/metrics` parses as Prometheus text and its counters match what was
//! published to a real nats-server.

mod common;

use common::*;
use eventscope::config::Config;
use std::collections::HashMap;

fn parse(body: &str) -> HashMap<String, f64> {
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    scrape
        .samples
        .into_iter()
        .filter_map(|s| {
            let mut labels: Vec<String> =
                s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            let key = if labels.is_empty() {
                s.metric.clone()
            } else {
                format!("{}{{{}}}", s.metric, labels.join(","))
            };
            match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => Some((key, v)),
                _ => None,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_match_what_was_published() {
    let Harness {
        mut nats,
        running,
        client,
        mut ws,
        mut mirror,
        probes,
    } = Harness::start(|url| Config::attach(url, &["m.>"]), "m.probe").await;

    for i in 0..100 {
        let p = format!(r#"{{"level":"info","n":{i}}}"#);
        client.publish("m.logs", p.into()).await.expect("publish");
    }
    for _ in 0..3 {
        client
            .publish("m.blob", bytes::Bytes::from_static(&[0xff, 0xfe]))
            .await
            .expect("publish");
    }
    within("flush", client.flush()).await.expect("flush");
    mirror
        .until(&mut ws, "all stored", |s| {
            s.health.store_events >= probes + 103
        })
        .await;

    let (status, body) = get(running.addr, "/metrics").await;
    assert_eq!(status, 200);
    let m = parse(&body);
    let get = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in {body}"));
    assert_eq!(
        get("eventscope_events_ingested_total{source=core}"),
        (probes + 103) as f64
    );
    assert_eq!(
        get("eventscope_events_ingested_total{source=jetstream}"),
        0.0
    );
    assert_eq!(get("eventscope_events_decode_failed_total"), 3.0);
    assert_eq!(
        get("eventscope_events_dropped_total{reason=ingest_queue_full}"),
        0.0
    );
    assert_eq!(get("eventscope_store_events"), (probes + 103) as f64);
    assert_eq!(
        get("eventscope_store_bytes"),
        running.store.read().stats().bytes as f64
    );
    assert_eq!(get("eventscope_ws_clients"), 1.0);
    assert_eq!(get("eventscope_ws_resyncs_total"), 0.0);
    assert_eq!(get("eventscope_nats_slow_consumer_total"), 0.0);
    assert_eq!(
        get("eventscope_events_dropped_total{reason=nats_slow_consumer}"),
        0.0
    );
    assert_eq!(get("eventscope_nats_connects_total"), 1.0);
    assert_eq!(
        get("eventscope_checkpoints"),
        running
            .stats
            .checkpoints_held
            .load(std::sync::atomic::Ordering::Relaxed) as f64
    );
    // The projections' weight within their budget (the default, 128 MiB):
    // the live state is at least its hour of per-second history.
    assert_eq!(
        get("eventscope_projection_budget_bytes"),
        (128u64 << 20) as f64
    );
    let live = get("eventscope_projection_bytes{state=live}");
    assert!(live > 100_000.0, "{live}");
    assert!(live + get("eventscope_projection_bytes{state=checkpoints}") <= (128u64 << 20) as f64);
    assert_eq!(get("eventscope_checkpoints_dropped_total"), 0.0);
    assert_eq!(
        get("eventscope_projection_left_out_total{reason=budget}"),
        0.0
    );
    assert_eq!(
        get("eventscope_projection_left_out_total{reason=series_cap}"),
        0.0
    );
    // What the client read: every event (nothing dropped by it), and the
    // replies to the first JetStream poll besides.
    let read = get("eventscope_nats_messages_in_total");
    assert_eq!(read, running.stats.nats_messages_in() as f64);
    assert!(read >= (probes + 103) as f64, "{read}");
    assert_eq!(get("eventscope_nats_connected"), 1.0);
    // The time checkpoints took, as the hub counts it (microseconds).
    assert_eq!(
        get("eventscope_checkpoint_seconds_total"),
        running
            .stats
            .checkpoint_micros
            .load(std::sync::atomic::Ordering::Relaxed) as f64
            / 1e6
    );
    assert!(
        body.contains("eventscope_ingest_to_frame_seconds_count"),
        "latency histogram present: {body}"
    );

    running.stop().await;
    nats.stop().await;
}

/// Each way the log loses or cuts part of what it was sent is counted in
/// `/metrics` exactly: one message larger than the log's cap, one
/// duplicate `Nats-Msg-Id`, one error text past 256 bytes, one correlation
/// id and one reply subject past 255 bytes, one subject past 256 bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_loss_counter_reads_exactly() {
    let Harness {
        mut nats,
        running,
        client,
        mut ws,
        mut mirror,
        probes,
    } = Harness::start(
        |url| {
            let mut c = Config::attach(url, &["loss.>"]);
            // Small enough that a 600 KB message cannot fit.
            c.store_bytes = bytesize::ByteSize::kib(512);
            c
        },
        "loss.probe",
    )
    .await;
    let headers = |pairs: &[(&str, &str)]| {
        let mut h = async_nats::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, *v);
        }
        h
    };
    // 1. Larger than the log: refused, counted.
    client
        .publish("loss.big", bytes::Bytes::from(vec![b'x'; 600_000]))
        .await
        .expect("publish");
    // 2. The same Nats-Msg-Id twice: kept, the second flagged a duplicate.
    for _ in 0..2 {
        client
            .publish_with_headers("loss.dup", headers(&[("Nats-Msg-Id", "m-1")]), "{}".into())
            .await
            .expect("publish");
    }
    // 3. An error text of 300 bytes: grouped by its start, counted.
    let text = "e".repeat(300);
    client
        .publish(
            "loss.err",
            format!(r#"{{"level":"error","msg":"{text}"}}"#).into(),
        )
        .await
        .expect("publish");
    // 4. A correlation id of 300 bytes: cut to 255.
    let long_id = "c".repeat(300);
    client
        .publish_with_headers(
            "loss.corr",
            headers(&[("X-Correlation-Id", long_id.as_str())]),
            "{}".into(),
        )
        .await
        .expect("publish");
    // 5. A reply subject of 300 bytes: left out of the event.
    client
        .publish_with_reply(
            "loss.req",
            format!("inbox.{}", "r".repeat(300)),
            "{}".into(),
        )
        .await
        .expect("publish");
    // 6. A subject of 300 bytes: not in the subjects' dictionary (the
    // event keeps it itself).
    client
        .publish(format!("loss.{}", "s".repeat(300)), "{}".into())
        .await
        .expect("publish");
    within("flush", client.flush()).await.expect("flush");
    // Kept: all but the big one (6 of 7).
    mirror
        .until(&mut ws, "all stored", |s| {
            s.health.store_events >= probes + 6
        })
        .await;
    let (_, body) = get(running.addr, "/metrics").await;
    let m = parse(&body);
    let get = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in {body}"));
    for (name, n) in [
        (
            "eventscope_events_dropped_total{reason=larger_than_store_cap}",
            1,
        ),
        ("eventscope_events_duplicate_total", 1),
        ("eventscope_messages_cut_total", 1),
        ("eventscope_event_parts_cut_total{part=correlation_id}", 1),
        ("eventscope_event_parts_cut_total{part=reply_subject}", 1),
        ("eventscope_event_parts_cut_total{part=samples}", 0),
        (
            "eventscope_dictionary_overflow_total{dictionary=subjects,reason=too_long}",
            1,
        ),
        (
            "eventscope_dictionary_overflow_total{dictionary=subjects,reason=full}",
            0,
        ),
        (
            "eventscope_dictionary_retired_total{dictionary=subjects}",
            0,
        ),
        (
            "eventscope_events_dropped_total{reason=ingest_queue_full}",
            0,
        ),
        (
            "eventscope_events_dropped_total{reason=nats_slow_consumer}",
            0,
        ),
        ("eventscope_store_events", probes + 6),
    ] {
        assert_eq!(get(name), n as f64, "{name}");
    }
    // Every message the client read became an event or this one refusal.
    assert_eq!(
        get("eventscope_events_ingested_total{source=core}"),
        (probes + 7) as f64
    );
    running.stop().await;
    nats.stop().await;
}
