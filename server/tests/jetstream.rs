//! A JetStream source against a real nats-server: reads a stream from its
//! start point, survives a server restart with no gap and no duplicate, and
//! runs beside a core-subject source.

mod common;

use app::api::EventPage;
use async_nats::jetstream;
use common::*;
use eventscope::config::Config;
use eventscope::demo::managed_nats::{ManagedNats, free_port};
use std::time::Duration;

async fn events(addr: std::net::SocketAddr, query: &str) -> EventPage {
    let (status, body) = get(addr, &format!("/api/v1/events?{query}")).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("event page")
}

async fn create_orders_stream(url: &str) {
    let js = jetstream::new(publisher(url).await);
    js.create_stream(jetstream::stream::Config {
        name: "ORDERS".to_string(),
        subjects: vec!["orders.>".to_string()],
        ..Default::default()
    })
    .await
    .expect("stream created");
}

async fn publish_orders(url: &str, from: u32, to: u32) {
    let client = publisher(url).await;
    let js = jetstream::new(client.clone());
    for i in from..to {
        let ack = js
            .publish(
                "orders.created",
                format!(r#"{{"level":"info","msg":"order {i}"}}"#).into(),
            )
            .await
            .expect("publish");
        within("jetstream ack", async { ack.await })
            .await
            .expect("stored");
    }
    client.flush().await.expect("flush");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_survives_a_nats_restart_with_no_gap_and_no_duplicate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port().expect("port");
    let mut nats = ManagedNats::start_in(&nats_bin(), port, dir.path())
        .await
        .expect("nats starts");
    let url = nats.url();
    create_orders_stream(&url).await;
    // Published before Eventscope starts: `@all` must read them.
    publish_orders(&url, 0, 40).await;

    let mut config = Config::attach(url.clone(), &["core.>"]);
    config.streams = vec!["ORDERS@all".parse().expect("source")];
    let running = eventscope::start(config).await.expect("app starts");
    let mut ws = ws_connect(running.addr).await;
    let mut mirror = Mirror::default();
    mirror.apply(next_frame(&mut ws).await);
    mirror
        .until(&mut ws, "the 40 stored messages", |s| {
            s.health.store_events >= 40
        })
        .await;

    // Restart NATS (same port, same JetStream folder), publish more.
    nats.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut nats = ManagedNats::start_in(&nats_bin(), port, dir.path())
        .await
        .expect("nats restarts");
    publish_orders(&url, 40, 80).await;
    // Core NATS is at-most-once: probe until the re-made subscription is
    // live, counting what was sent.
    let core = publisher(&url).await;
    let pings = wait_subscribed(&core, &mut ws, &mut mirror, "core.ping").await;
    mirror
        .until_within(
            &mut ws,
            "all 80 stream messages",
            Duration::from_secs(30),
            |s| s.subjects.get("orders.created").map_or(0, |c| c.count) >= 80,
        )
        .await;
    // Nothing more arrives: no duplicate after the re-attach.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let page = events(running.addr, "subject=orders.>&limit=1000").await;
    let mut seqs: Vec<u64> = page.events.iter().filter_map(|e| e.seq).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=80).collect::<Vec<u64>>(),
        "every sequence exactly once"
    );
    assert!(
        page.events
            .iter()
            .all(|e| e.stream.as_deref() == Some("ORDERS"))
    );
    let core_page = events(running.addr, "subject=core.>").await;
    assert_eq!(core_page.events.len() as u64, pings);
    assert!(core_page.events.iter().all(|e| e.stream.is_none()));
    assert_eq!(mirror.state.health.seq_gaps, 0);
    assert_eq!(mirror.state.health.duplicates, 0);

    running.stop().await;
    nats.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_consumer_continues_where_the_last_run_stopped() {
    let mut nats = nats_server(None).await;
    let url = nats.url();
    create_orders_stream(&url).await;
    publish_orders(&url, 0, 10).await;
    let config = || {
        let mut c = Config::attach(url.clone(), &[]);
        c.streams = vec!["ORDERS@all".parse().expect("source")];
        c.durable = Some("eventscope-test".to_string());
        c
    };

    let first = eventscope::start(config()).await.expect("first run");
    let mut ws = ws_connect(first.addr).await;
    let mut mirror = Mirror::default();
    mirror.apply(next_frame(&mut ws).await);
    mirror
        .until(&mut ws, "first 10", |s| s.health.store_events >= 10)
        .await;
    // Let the acknowledgements reach the server before stopping.
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.stop().await;
    // The server holds every one of the 10 as acknowledged (each
    // acknowledged once handed on), none waiting for redelivery.
    let info = jetstream::new(publisher(&url).await)
        .get_stream("ORDERS")
        .await
        .expect("stream")
        .consumer_info("eventscope-test")
        .await
        .expect("durable consumer");
    assert_eq!(
        info.config.ack_policy,
        jetstream::consumer::AckPolicy::Explicit
    );
    assert_eq!(info.ack_floor.stream_sequence, 10);
    assert_eq!(info.num_ack_pending, 0);

    publish_orders(&url, 10, 15).await;
    let second = eventscope::start(config()).await.expect("second run");
    let mut ws = ws_connect(second.addr).await;
    let mut mirror = Mirror::default();
    mirror.apply(next_frame(&mut ws).await);
    mirror
        .until(&mut ws, "the 5 new ones", |s| s.health.store_events >= 5)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let page = events(second.addr, "subject=orders.>").await;
    let mut seqs: Vec<u64> = page.events.iter().filter_map(|e| e.seq).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (11..=15).collect::<Vec<u64>>(),
        "only what the first run did not ack"
    );

    second.stop().await;
    nats.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jetstream_consumer_is_a_node_of_the_topology_fed_by_what_it_reads() {
    let nats = nats_server(None).await;
    let js = jetstream::new(publisher(&nats.url()).await);
    let stream = js
        .create_stream(jetstream::stream::Config {
            name: "SHOP".to_string(),
            subjects: vec!["shop.>".to_string()],
            ..Default::default()
        })
        .await
        .expect("stream created");
    stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("shipper".to_string()),
            filter_subject: "shop.orders.placed".to_string(),
            ..Default::default()
        })
        .await
        .expect("consumer created");
    // `probe.>` is subscribed after `shop.>`: once a probe is stored, both
    // subscriptions are live and no order can be missed.
    let mut config = Config::attach(nats.url(), &["shop.>", "probe.>"]);
    config.consumer_poll_ms = 200;
    let running = eventscope::start(config).await.expect("app starts");
    let client = publisher(&nats.url()).await;
    within("the subscriptions are live", async {
        loop {
            client
                .publish("probe.live", "{}".into())
                .await
                .expect("probe");
            client.flush().await.expect("flush");
            tokio::time::sleep(Duration::from_millis(50)).await;
            let (_, page): (u16, app::api::EventPage) =
                json(running.addr, "/api/v1/events?subject=probe.live&limit=1").await;
            if !page.events.is_empty() {
                break;
            }
        }
    })
    .await;
    for i in 0..5 {
        let p = format!(r#"{{"type":"OrderPlaced","service":"shop","n":{i}}}"#);
        js.publish("shop.orders.placed", p.into())
            .await
            .expect("publish")
            .await
            .expect("stored in the stream");
    }
    client.flush().await.expect("flush");
    // The subject feeds the stream; the stream delivers to the consumer,
    // which has read nothing: five messages pending.
    let edge = within("the consumer in the topology", async {
        loop {
            let (_, state): (u16, app::api::ProjectionState) =
                json(running.addr, "/api/v1/projections/topology?window=1m").await;
            if let app::api::ProjectionBody::Topology { nodes, edges } = state.body
                && nodes
                    .iter()
                    .any(|n| n.id == "con:SHOP/shipper" && n.kind == "consumer")
                && edges.iter().any(|e| {
                    (
                        e.from.as_str(),
                        e.to.as_str(),
                        e.kind.as_str(),
                        e.rate.count,
                    ) == ("sub:shop.orders.placed", "str:SHOP", "stores", 5)
                })
                && let Some(e) = edges.into_iter().find(|e| {
                    e.to == "con:SHOP/shipper" && e.pending == Some(5) && e.from == "str:SHOP"
                })
            {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(
        (edge.kind.as_str(), edge.subject.as_str()),
        ("delivers", "shop.orders.placed")
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_consumer_stopped_mid_backlog_loses_nothing() {
    // Issue 16: stopped while a backlog was read, a run left messages
    // delivered but not handed on; the next run's "ack all" covered them.
    let mut nats = nats_server(None).await;
    let url = nats.url();
    create_orders_stream(&url).await;
    let total: u64 = 30_000;
    {
        // In rounds: the context holds a bounded number of acks in flight.
        let js = jetstream::new(publisher(&url).await);
        for round in 0..total / 1_000 {
            let mut acks = Vec::new();
            for i in round * 1_000..(round + 1) * 1_000 {
                acks.push(
                    js.publish("orders.created", format!(r#"{{"n":{i}}}"#).into())
                        .await
                        .expect("publish"),
                );
            }
            for ack in acks {
                within("jetstream ack", async { ack.await })
                    .await
                    .expect("stored");
            }
        }
    }
    let config = || {
        let mut c = Config::attach(url.clone(), &[]);
        c.streams = vec!["ORDERS@all".parse().expect("source")];
        c.durable = Some("mid-backlog".to_string());
        c
    };
    let seqs_of = |store: &eventscope::store::SharedStore| -> Vec<u64> {
        store
            .read()
            .iter()
            .filter_map(|e| e.stream_seq().map(|(_, q)| q))
            .collect()
    };

    // The first run stops as soon as it has some, mid-backlog.
    let first = eventscope::start(config()).await.expect("first run");
    within("the first run has some", async {
        while first.store.read().held() < 1_000 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    let first_store = std::sync::Arc::clone(&first.store);
    first.stop().await;
    let mut seen: std::collections::BTreeSet<u64> = seqs_of(&first_store).into_iter().collect();
    assert!(
        (seen.len() as u64) < total,
        "the first run stopped mid-backlog ({} of {total})",
        seen.len()
    );

    // The second run hands on the rest, the unacknowledged ones as they
    // come again (after the consumer's ack wait, 10 s).
    let second = eventscope::start(config()).await.expect("second run");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        seen.extend(seqs_of(&second.store));
        if seen.len() as u64 == total || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let missing: Vec<u64> = (1..=total).filter(|q| !seen.contains(q)).collect();
    assert!(
        missing.is_empty(),
        "{} sequences handed on by neither run, from {:?}",
        missing.len(),
        missing.first()
    );
    second.stop().await;
    nats.stop().await;
}

/// A stream deleted and made again under Eventscope restarts its
/// sequences: the source notices (the stream's creation time changed) and
/// reads the new stream from its start, instead of waiting, silently, for
/// the sequence it had reached in the old one. Both with an ephemeral and
/// with a durable consumer (which goes with the old stream).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_deleted_and_made_again_is_read_from_its_new_start() {
    for durable in [None, Some("eventscope-recreate".to_string())] {
        let mut nats = nats_server(None).await;
        let url = nats.url();
        create_orders_stream(&url).await;
        publish_orders(&url, 0, 30).await;
        let mut config = Config::attach(url.clone(), &[]);
        config.streams = vec!["ORDERS@all".parse().expect("source")];
        config.durable = durable.clone();
        let running = eventscope::start(config).await.expect("app starts");
        let stats = std::sync::Arc::clone(&running.stats);
        let ingested = || {
            stats
                .ingested_jetstream
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        within("the 30 stored messages", async {
            while ingested() < 30 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;

        let js = jetstream::new(publisher(&url).await);
        js.delete_stream("ORDERS").await.expect("stream deleted");
        create_orders_stream(&url).await;
        // Sequences 1 to 5 of the new stream: all below the old 30.
        publish_orders(&url, 100, 105).await;
        within("the new stream's 5 messages", async {
            while ingested() < 35 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert_eq!(
            stats
                .js_recreated
                .load(std::sync::atomic::Ordering::Relaxed),
            1,
            "{durable:?}"
        );
        let page = events(running.addr, "subject=orders.>&q=order%2010").await;
        let mut new: Vec<(u64, String)> = page
            .events
            .iter()
            .filter(|e| {
                e.message
                    .as_deref()
                    .is_some_and(|m| m.len() == "order 100".len())
            })
            .map(|e| (e.seq.unwrap_or(0), e.message.clone().unwrap_or_default()))
            .collect();
        new.sort();
        assert_eq!(
            new,
            (100..105)
                .map(|i| (i - 99, format!("order {i}")))
                .collect::<Vec<_>>(),
            "orders 100 to 104, sequences 1 to 5 of the new stream"
        );
        let (_, metrics) = get(running.addr, "/metrics").await;
        assert!(
            metrics.contains("eventscope_jetstream_stream_recreated_total 1\n"),
            "{metrics}"
        );
        running.stop().await;
        nats.stop().await;
    }
}

/// Messages deleted from the middle of a stream before Eventscope reads
/// them are sequences it never sees: counted, exactly, as a gap (in the
/// health panel and under their drop reason in `/metrics`), and the rest
/// read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_deleted_before_they_are_read_are_counted_as_a_gap() {
    let mut nats = nats_server(None).await;
    let url = nats.url();
    create_orders_stream(&url).await;
    publish_orders(&url, 0, 20).await;
    let stream = jetstream::new(publisher(&url).await)
        .get_stream("ORDERS")
        .await
        .expect("stream");
    for seq in [5, 6, 7, 15] {
        stream.delete_message(seq).await.expect("deleted");
    }
    let mut config = Config::attach(url.clone(), &[]);
    config.streams = vec!["ORDERS@all".parse().expect("source")];
    let running = eventscope::start(config).await.expect("starts");
    let mut ws = ws_connect(running.addr).await;
    let mut mirror = Mirror::default();
    mirror.apply(next_frame(&mut ws).await);
    mirror
        .until(&mut ws, "the 16 left read", |s| s.health.store_events >= 16)
        .await;
    let page = events(running.addr, "subject=orders.>&limit=100").await;
    let mut seqs: Vec<u64> = page.events.iter().filter_map(|e| e.seq).collect();
    seqs.sort_unstable();
    let kept: Vec<u64> = (1..=20).filter(|q| ![5, 6, 7, 15].contains(q)).collect();
    assert_eq!(seqs, kept);
    mirror
        .until(&mut ws, "the gap counted", |s| s.health.seq_gaps >= 4)
        .await;
    assert_eq!(mirror.state.health.seq_gaps, 4);
    let (_, metrics) = get(running.addr, "/metrics").await;
    assert!(
        metrics.contains("eventscope_events_dropped_total{reason=\"jetstream_sequence_gap\"} 4\n"),
        "{metrics}"
    );
    running.stop().await;
    nats.stop().await;
}

/// A JetStream source waits while the hub's queue is full, and drops
/// nothing: with the hub held (a reader holds the log), a stream of more
/// than the queue's 64 MiB is read only as far as the queue takes; once
/// the hub turns again every message arrives, none dropped, no gap. (150
/// MB, more than the NATS client's 128 MiB byte bound: before JetStream's
/// messages were taken off it, the source stopped at 1,338 of 1,500.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_larger_than_the_queue_waits_and_loses_nothing() {
    use std::sync::atomic::Ordering;
    let mut nats = nats_server(None).await;
    let url = nats.url();
    let js = jetstream::new(publisher(&url).await);
    js.create_stream(jetstream::stream::Config {
        name: "BIG".to_string(),
        subjects: vec!["big.>".to_string()],
        ..Default::default()
    })
    .await
    .expect("stream created");
    let mut config = Config::attach(url.clone(), &[]);
    config.streams = vec!["BIG@all".parse().expect("source")];
    config.store_bytes = bytesize::ByteSize::mib(16);
    let running = eventscope::start(config).await.expect("starts");
    // Hold the hub: it waits for the log, which a reader holds.
    let store = std::sync::Arc::clone(&running.store);
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _reading = store.read();
        let _ = released.recv();
    });
    // 1,500 messages of 100 KB: about 150 MB, more than twice the queue.
    let n = 1_500u64;
    let pad = "x".repeat(100_000);
    for round in 0..n / 100 {
        let mut acks = Vec::new();
        for i in round * 100..(round + 1) * 100 {
            acks.push(
                js.publish("big.blob", format!(r#"{{"n":{i},"pad":"{pad}"}}"#).into())
                    .await
                    .expect("publish"),
            );
        }
        for ack in acks {
            within("jetstream ack", async { ack.await })
                .await
                .expect("stored");
        }
    }
    // The source takes what the queue has room for, then waits.
    let stats = std::sync::Arc::clone(&running.stats);
    let taken = within("the source stops taking", async {
        let mut last = u64::MAX;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = stats.ingested_jetstream.load(Ordering::Relaxed);
            if now == last {
                return now;
            }
            last = now;
        }
    })
    .await;
    assert!(taken < n, "the queue held the whole stream ({taken})");
    release.send(()).expect("release");
    holder.join().expect("holder");
    within("every message arrives", async {
        while running.store.read().stats().appended < n {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(running.store.read().stats().appended, n);
    assert_eq!(stats.dropped_ingest.load(Ordering::Relaxed), 0);
    assert_eq!(stats.js_seq_gaps.load(Ordering::Relaxed), 0);
    // Every message the client read was taken off its buffer: the byte
    // bound (128 MiB, less than this stream) never refused one.
    assert_eq!(stats.nats_dropped(), 0);
    assert_eq!(stats.nats_buffered_bytes(), 0);
    running.stop().await;
    nats.stop().await;
}

/// A durable made by an earlier version (acknowledging all before each
/// ack) is used as it is: read, and acknowledged in its own way (the last
/// of each batch), its policy untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_that_acknowledges_all_is_used_as_it_is() {
    let mut nats = nats_server(None).await;
    let url = nats.url();
    create_orders_stream(&url).await;
    publish_orders(&url, 0, 10).await;
    let stream = jetstream::new(publisher(&url).await)
        .get_stream("ORDERS")
        .await
        .expect("stream");
    stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("old-style".to_string()),
            ack_policy: jetstream::consumer::AckPolicy::All,
            ..Default::default()
        })
        .await
        .expect("an old-style durable");
    let mut config = Config::attach(url.clone(), &[]);
    config.streams = vec!["ORDERS@all".parse().expect("source")];
    config.durable = Some("old-style".to_string());
    let running = eventscope::start(config).await.expect("starts");
    within("the 10 read", async {
        while running.store.read().stats().appended < 10 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let info = within("acknowledged up to the last", async {
        loop {
            let info = stream
                .consumer_info("old-style")
                .await
                .expect("durable consumer");
            if info.ack_floor.stream_sequence == 10 {
                return info;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(
        info.config.ack_policy,
        jetstream::consumer::AckPolicy::All,
        "its policy untouched"
    );
    assert_eq!(info.num_ack_pending, 0);
    running.stop().await;
    nats.stop().await;
}
