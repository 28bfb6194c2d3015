//! Events published on a real nats-server reach a real WebSocket client as a
//! snapshot and deltas whose counts equal exactly what was published.

mod common;

use common::*;
use eventscope::config::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_reach_websocket_counts_exactly() {
    let Harness {
        mut nats,
        running,
        client,
        mut ws,
        mut mirror,
        probes,
    } = Harness::start(|url| Config::attach(url, &["test.>"]), "test.probe").await;

    for i in 0..1_000u32 {
        client
            .publish("test.alpha", format!("{{\"i\":{i}}}").into())
            .await
            .expect("publish");
    }
    for i in 0..250u32 {
        client
            .publish("test.beta.deep", format!("{{\"i\":{i}}}").into())
            .await
            .expect("publish");
    }
    client
        .publish("not.watched", "x".into())
        .await
        .expect("publish");
    within("flush", client.flush()).await.expect("flush");

    mirror
        .until(&mut ws, "counts reach what was published", |s| {
            s.total >= 1_250 + probes
        })
        .await;
    // Let a few more ticks pass: nothing more may arrive.
    let settle = tokio::time::Instant::now() + std::time::Duration::from_millis(400);
    while let Ok(frame) = tokio::time::timeout_at(settle, next_frame(&mut ws)).await {
        mirror.apply(frame);
    }
    assert_eq!(mirror.state.total, 1_250 + probes);
    assert_eq!(mirror.count("test.probe"), probes);
    assert_eq!(mirror.count("test.alpha"), 1_000);
    assert_eq!(mirror.count("test.beta.deep"), 250);
    assert_eq!(mirror.count("not.watched"), 0);
    assert_eq!(
        mirror.state.subjects.len(),
        3,
        "{:?}",
        mirror.state.subjects.keys()
    );
    assert_eq!(mirror.state.health.dropped_ingest, 0);
    assert!(mirror.deltas >= 1, "counts arrived as deltas");

    // A second client joining now gets the same state in its snapshot.
    let mut late = ws_connect(running.addr).await;
    let mut late_mirror = Mirror::default();
    late_mirror.apply(next_frame(&mut late).await);
    assert_eq!(late_mirror.state.total, 1_250 + probes);
    assert_eq!(late_mirror.count("test.alpha"), 1_000);

    running.stop().await;
    nats.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deltas_are_coalesced_not_one_frame_per_event() {
    let Harness {
        mut nats,
        running,
        client,
        mut ws,
        mut mirror,
        probes,
    } = Harness::start(|url| Config::attach(url, &["burst"]), "burst").await;

    let before = mirror.deltas;
    for _ in 0..5_000 {
        client.publish("burst", "{}".into()).await.expect("publish");
    }
    within("flush", client.flush()).await.expect("flush");
    mirror
        .until(&mut ws, "all 5000 counted", |s| s.total >= 5_000 + probes)
        .await;
    assert_eq!(mirror.state.total, 5_000 + probes);
    let frames = mirror.deltas - before;
    assert!(
        frames < 50,
        "5000 events took {frames} delta frames: not coalesced"
    );

    running.stop().await;
    nats.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_origins_and_other_versions_are_refused() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut nats = nats_server(None).await;
    let running = eventscope::start(Config::attach(nats.url(), &["x"]))
        .await
        .expect("app starts");
    let addr = running.addr;

    let mut req = format!("ws://{addr}/ws")
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("Origin", "http://evil.example".parse().expect("header"));
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 403);
        }
        other => panic!(
            "cross-origin upgrade was not refused: {:?}",
            other.map(|_| ())
        ),
    }

    let mut req = format!("ws://{addr}/ws")
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("Origin", format!("http://{addr}").parse().expect("header"));
    let (mut same, _) = within("same-origin upgrade", tokio_tungstenite::connect_async(req))
        .await
        .expect("same origin is allowed");
    send(
        &mut same,
        &app::wire::ClientMsg::Subscribe {
            view: app::wire::View::Counts,
        },
    )
    .await;
    assert!(matches!(
        next_frame(&mut same).await.body,
        app::wire::Body::Snapshot { .. }
    ));

    let (mut old, _) = within(
        "old-version upgrade",
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws?v=0")),
    )
    .await
    .expect("upgrade");
    match next_frame(&mut old).await.body {
        app::wire::Body::Error { message } => {
            assert!(
                message.contains("v1") && message.contains("reload"),
                "{message}"
            )
        }
        other => panic!("expected an error frame, got {other:?}"),
    }

    running.stop().await;
    nats.stop().await;
}

/// A client that never reads is dropped (or resynced) while a reading
/// client keeps up and ingest loses nothing: no client can slow ingest or
/// make the server buffer without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_cannot_hold_anything_up() {
    let Harness {
        mut nats,
        running,
        client,
        mut ws,
        mut mirror,
        probes,
    } = Harness::start(|url| Config::attach(url, &["wide.>"]), "wide.probe").await;
    // Connected, then never read from again.
    let silent = ws_connect(running.addr).await;

    // Big deltas: 2,000 long subjects, every one changing every tick.
    let pad = "s".repeat(120);
    let subjects: Vec<String> = (0..2_000).map(|i| format!("wide.{pad}.{i}")).collect();
    let rounds = 120u64;
    for _ in 0..rounds {
        for s in &subjects {
            client
                .publish(s.clone(), "{}".into())
                .await
                .expect("publish");
        }
        within("flush", client.flush()).await.expect("flush");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        // Keep the reading client reading.
        while let Ok(frame) =
            tokio::time::timeout(std::time::Duration::from_millis(1), next_frame(&mut ws)).await
        {
            mirror.apply(frame);
        }
    }
    let want = probes + rounds * subjects.len() as u64;
    mirror
        .until(&mut ws, "the reading client sees every event", |s| {
            s.total >= want
        })
        .await;
    assert_eq!(mirror.state.total, want);
    assert_eq!(mirror.state.health.dropped_ingest, 0, "ingest never waited");
    let dropped_slow = running
        .stats
        .ws_dropped_slow
        .load(std::sync::atomic::Ordering::Relaxed);
    let resyncs = running
        .stats
        .ws_resyncs
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(resyncs, 0, "the reading client kept up");
    assert_eq!(dropped_slow, 1, "the silent client was dropped");
    let (_, metrics) = get(running.addr, "/metrics").await;
    assert!(
        metrics.contains("eventscope_ws_dropped_slow_total 1"),
        "{metrics}"
    );
    drop(silent);
    running.stop().await;
    nats.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_hub_loses_exactly_what_ingest_cannot_hold() {
    use eventscope::ingest::{MAX_BATCH, queue::QUEUE_EVENTS};
    use std::sync::atomic::Ordering::Relaxed;
    let Harness {
        mut nats,
        running,
        client,
        mut ws,
        mut mirror,
        probes,
    } = Harness::start(
        |url| {
            // No JetStream polls: their replies are messages the client
            // reads too.
            let mut c = Config::attach(url, &["test.>"]);
            c.consumer_poll_ms = 3_600_000;
            c
        },
        "test.probe",
    )
    .await;
    let stats = std::sync::Arc::clone(&running.stats);
    // What the client read besides events (the first poll's replies).
    let not_events = stats.nats_messages_in() - stats.ingested_core.load(Relaxed);

    // Pause the hub: it folds under the log's write lock, which waits for
    // this read lock. Meanwhile more events arrive than ingest can hold
    // (the queue's events and the batch waiting in the receive loop), in
    // many small batches (a queue bounded in batches held far fewer).
    let over = 1_000u64;
    let n = (QUEUE_EVENTS + MAX_BATCH) as u64 + over;
    let (held, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let store = std::sync::Arc::clone(&running.store);
    let pauser = std::thread::spawn(move || {
        let _paused = store.read();
        held.0.send(()).expect("signal");
        release.1.recv().ok();
    });
    held.1.recv().expect("the log is held");
    for i in 0..n {
        client
            .publish("test.paused", format!("{{\"i\":{i}}}").into())
            .await
            .expect("publish");
        if i % 500 == 0 {
            within("flush", client.flush()).await.expect("flush");
        }
    }
    within("flush", client.flush()).await.expect("flush");
    // Every message received and every loss counted, while still paused.
    within("ingest to take every message", async {
        while stats.ingested_core.load(Relaxed) < n + probes
            || stats.dropped_ingest.load(Relaxed) < over
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(stats.dropped_ingest.load(Relaxed), over);
    release.0.send(()).expect("release");
    pauser.join().expect("pauser");

    mirror
        .until(&mut ws, "counts reach what ingest held", |s| {
            s.total >= n - over + probes
        })
        .await;
    assert_eq!(mirror.count("test.paused"), n - over);
    assert_eq!(mirror.state.health.dropped_ingest, over);
    // Nothing lost anywhere else: the NATS client handed on all it read.
    assert_eq!(
        stats.nats_messages_in() - stats.ingested_core.load(Relaxed),
        not_events
    );

    running.stop().await;
    nats.stop().await;
}
