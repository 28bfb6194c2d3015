//! Hostile NATS traffic against a real nats-server: bytes that are not
//! UTF-8 in a subject or a header keep the connection and the event, and a
//! subscription that overflows counts every message it drops.

mod common;

use app::api::{EventDetail, EventPage};
use common::*;
use eventscope::config::Config;
use futures::StreamExt;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A raw protocol connection to nats-server: what a publisher that sends
/// arbitrary bytes looks like (client libraries refuse to).
struct RawNats {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl RawNats {
    async fn connect(url: &str) -> RawNats {
        let addr = url.trim_start_matches("nats://").to_string();
        let tcp = within("raw connect", tokio::net::TcpStream::connect(addr))
            .await
            .expect("connect");
        let (read, writer) = tcp.into_split();
        let mut raw = RawNats {
            reader: BufReader::new(read),
            writer,
        };
        let info = raw.line().await;
        assert!(info.starts_with("INFO "), "{info}");
        raw.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\n")
            .await;
        raw
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        within("raw line", self.reader.read_line(&mut line))
            .await
            .expect("read");
        line
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
    }

    /// `PUB subject payload`, the subject as raw bytes.
    async fn publish(&mut self, subject: &[u8], payload: &[u8]) {
        let mut op = b"PUB ".to_vec();
        op.extend_from_slice(subject);
        op.extend_from_slice(format!(" {}\r\n", payload.len()).as_bytes());
        op.extend_from_slice(payload);
        op.extend_from_slice(b"\r\n");
        self.send(&op).await;
    }

    /// `HPUB subject headers payload`, the header block as raw bytes.
    async fn publish_headers(&mut self, subject: &[u8], headers: &[u8], payload: &[u8]) {
        let mut op = b"HPUB ".to_vec();
        op.extend_from_slice(subject);
        op.extend_from_slice(
            format!(" {} {}\r\n", headers.len(), headers.len() + payload.len()).as_bytes(),
        );
        op.extend_from_slice(headers);
        op.extend_from_slice(payload);
        op.extend_from_slice(b"\r\n");
        self.send(&op).await;
    }

    /// Waits until the server has processed everything sent so far.
    async fn sync(&mut self) {
        self.send(b"PING\r\n").await;
        loop {
            if self.line().await.starts_with("PONG") {
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_are_not_utf8_keep_the_connection_and_the_event() {
    let Harness {
        mut nats,
        running,
        client,
        mut ws,
        mut mirror,
        probes: _,
    } = Harness::start(|url| Config::attach(url, &["raw.>"]), "raw.probe").await;
    let connects = running.stats.nats_connects.load(Ordering::Relaxed);

    let mut raw = RawNats::connect(&nats.url()).await;
    // A header value, then a subject, that are not UTF-8; a header line
    // that is not `name: value` and a name with a space in it.
    raw.publish_headers(
        b"raw.bad.header",
        b"NATS/1.0\r\nX-Blob: ok\xff\xfe\r\nTrace-Id: t-1\r\n\r\n",
        b"{\"msg\":\"header\"}",
    )
    .await;
    raw.publish(b"raw.bad.\xffsubject", b"{\"msg\":\"subject\"}")
        .await;
    raw.publish_headers(
        b"raw.bad.lines",
        b"NATS/1.0\r\nno colon here\r\nbad name: x\r\nGood: yes\r\n\r\n",
        b"{\"msg\":\"lines\"}",
    )
    .await;
    raw.sync().await;
    // What comes after them on the same connection.
    for i in 0..500 {
        client
            .publish("raw.after", format!("{{\"i\":{i}}}").into())
            .await
            .expect("publish");
    }
    client.flush().await.expect("flush");
    mirror
        .until(&mut ws, "every event after the bad ones", |c| {
            c.subjects.get("raw.after").is_some_and(|s| s.count == 500)
        })
        .await;

    let (status, page): (u16, EventPage) =
        json(running.addr, "/api/v1/events?subject=raw.bad.%3E&limit=10").await;
    assert_eq!(status, 200);
    let subjects: Vec<&str> = page.events.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(
        page.events.len(),
        3,
        "all three odd messages are kept: {subjects:?}"
    );
    assert!(
        subjects.contains(&"raw.bad.\u{FFFD}subject"),
        "the subject reads with U+FFFD: {subjects:?}"
    );
    let header_event = page
        .events
        .iter()
        .find(|e| e.subject == "raw.bad.header")
        .expect("the header event");
    let (_, detail): (u16, EventDetail) =
        json(running.addr, &format!("/api/v1/events/{}", header_event.id)).await;
    assert!(
        detail
            .headers
            .contains(&("X-Blob".to_string(), "ok\u{FFFD}\u{FFFD}".to_string())),
        "{:?}",
        detail.headers
    );
    assert!(
        detail
            .headers
            .contains(&("Trace-Id".to_string(), "t-1".to_string())),
        "{:?}",
        detail.headers
    );
    let lines_event = page
        .events
        .iter()
        .find(|e| e.subject == "raw.bad.lines")
        .expect("the event with odd header lines");
    let (_, detail): (u16, EventDetail) =
        json(running.addr, &format!("/api/v1/events/{}", lines_event.id)).await;
    assert_eq!(
        detail.headers,
        vec![("Good".to_string(), "yes".to_string())],
        "lines that are not headers are skipped, the rest kept"
    );

    assert_eq!(
        running.stats.nats_connects.load(Ordering::Relaxed),
        connects,
        "the connection was never dropped"
    );
    assert_eq!(running.stats.not_utf8.load(Ordering::Relaxed), 2);
    let (_, metrics) = get(running.addr, "/metrics").await;
    assert!(
        metrics.contains("eventscope_events_not_utf8_total 2"),
        "{metrics}"
    );

    running.stop().await;
    nats.stop().await;
}

/// The patched client counts every message a full subscription drops (the
/// slow-consumer notice is one per burst at best): what Eventscope reports
/// as `eventscope_events_dropped{reason="nats_slow_consumer"}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_subscription_counts_every_message_it_drops() {
    let mut nats = nats_server(None).await;
    let reader = within(
        "reader connects",
        async_nats::ConnectOptions::new()
            .subscription_capacity(16)
            .connect(nats.url()),
    )
    .await
    .expect("connect");
    let mut sub = reader.subscribe("flood.>").await.expect("subscribe");
    reader.flush().await.expect("flush");
    let publisher = publisher(&nats.url()).await;
    for i in 0..1_000 {
        publisher
            .publish("flood.x", format!("{i}").into())
            .await
            .expect("publish");
    }
    publisher.flush().await.expect("flush");
    let stats = reader.statistics();
    within("the reader reads all 1,000", async {
        while stats.in_messages.load(Ordering::Relaxed) < 1_000 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // Nothing was taken from the subscription: 16 wait in it, the rest
    // were dropped, each counted.
    assert_eq!(stats.slow_consumer_dropped.load(Ordering::Relaxed), 984);
    let mut kept = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
        kept += 1;
    }
    assert_eq!(kept, 16);
    nats.stop().await;
}

/// The patched client bounds what its subscriptions hold in bytes too
/// (`--nats-buffer-bytes`): 64 KiB messages nobody reads fill a 1 MiB
/// bound at 15, though the channel has room for 10,000; the rest are
/// dropped and counted, and once read, the room is there again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_buffer_is_bounded_in_bytes() {
    let mut nats = nats_server(None).await;
    let limit = 1u64 << 20;
    let reader = within(
        "reader connects",
        async_nats::ConnectOptions::new()
            .subscription_capacity(10_000)
            .subscription_bytes(limit)
            .connect(nats.url()),
    )
    .await
    .expect("connect");
    let mut sub = reader.subscribe("big.>").await.expect("subscribe");
    reader.flush().await.expect("flush");
    let publisher = publisher(&nats.url()).await;
    let payload = bytes::Bytes::from(vec![b'x'; 64 << 10]);
    let publish = |n: u32| {
        let (publisher, payload) = (publisher.clone(), payload.clone());
        async move {
            for _ in 0..n {
                publisher
                    .publish("big.one", payload.clone())
                    .await
                    .expect("publish");
            }
            publisher.flush().await.expect("flush");
        }
    };
    publish(100).await;
    let stats = reader.statistics();
    let read_all = |n: u64| {
        let stats = std::sync::Arc::clone(&stats);
        async move {
            while stats.in_messages.load(Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    within("the reader reads all 100", read_all(100)).await;
    let weight = ("big.one".len() + (64 << 10) + std::mem::size_of::<async_nats::Message>()) as u64;
    let fits = limit / weight;
    assert_eq!(fits, 15, "a message weighs {weight} bytes");
    assert_eq!(stats.buffered_bytes.load(Ordering::Relaxed), fits * weight);
    assert_eq!(
        stats.slow_consumer_dropped.load(Ordering::Relaxed),
        100 - fits
    );
    for _ in 0..fits {
        within("a held message", sub.next()).await.expect("held");
    }
    assert_eq!(
        stats.buffered_bytes.load(Ordering::Relaxed),
        0,
        "taken, no longer held"
    );
    // Room again: ten more are all held.
    publish(10).await;
    within("the reader reads 10 more", read_all(110)).await;
    assert_eq!(
        stats.slow_consumer_dropped.load(Ordering::Relaxed),
        100 - fits
    );
    assert_eq!(stats.buffered_bytes.load(Ordering::Relaxed), 10 * weight);
    // A subscriber dropped with messages held gives their bytes back.
    drop(sub);
    assert_eq!(stats.buffered_bytes.load(Ordering::Relaxed), 0);
    nats.stop().await;
}

/// The slow-consumer warnings logged, by NATS URL (a global subscriber:
/// tests of this binary run side by side, each against its own server).
fn slow_consumer_lines() -> &'static parking_lot::Mutex<std::collections::HashMap<String, u64>> {
    use tracing_subscriber::layer::SubscriberExt;
    static LINES: std::sync::OnceLock<parking_lot::Mutex<std::collections::HashMap<String, u64>>> =
        std::sync::OnceLock::new();
    struct Url(Option<String>);
    impl tracing::field::Visit for Url {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            if field.name() == "url" {
                self.0 = Some(format!("{value:?}"));
            }
        }
    }
    struct Count;
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
        fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            if e.metadata().fields().field("notices").is_some() {
                let mut url = Url(None);
                e.record(&mut url);
                *slow_consumer_lines()
                    .lock()
                    .entry(url.0.unwrap_or_default())
                    .or_default() += 1;
            }
        }
    }
    LINES.get_or_init(|| {
        use tracing_subscriber::Layer;
        // (Warnings only: a subscriber that takes every level slows the
        // whole binary's tests down.)
        let _ = tracing::subscriber::set_global_default(
            tracing_subscriber::registry()
                .with(Count.with_filter(tracing_subscriber::filter::LevelFilter::WARN)),
        );
        Default::default()
    })
}

/// A flood into a small log: every message the NATS client read is an
/// event in the log, an event evicted from it, or a loss counted under a
/// reason. None vanishes between NATS and the log. The client's
/// slow-consumer notices are logged once per 10 s, however many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_flood_every_message_read_is_kept_or_counted() {
    let lines = slow_consumer_lines();
    let started = std::time::Instant::now();
    let Harness {
        mut nats,
        running,
        client,
        ws: _ws,
        mirror: _,
        probes: _,
    } = Harness::start(
        |url| {
            let mut c = Config::attach(url, &["flood.>"]);
            // About 3,000 of these events: the flood overflows it whatever
            // the client drops (it appended 7,500 to 45,000 in runs here).
            c.store_bytes = bytesize::ByteSize::mib(1);
            // A small client buffer, so the flood overflows it too.
            c.nats_buffer = 256;
            // No JetStream API polls: what the client reads is events.
            c.consumer_poll_ms = 3_600_000;
            c
        },
        "flood.probe",
    )
    .await;
    let stats = std::sync::Arc::clone(&running.stats);
    let not_events = stats.nats_messages_in() - stats.ingested_core.load(Ordering::Relaxed);
    let n = 200_000u64;
    let payload = bytes::Bytes::from(format!(
        "{{\"level\":\"info\",\"service\":\"flood\",\"msg\":\"{}\"}}",
        "x".repeat(200)
    ));
    for i in 0..n {
        client
            .publish(format!("flood.s{}", i % 50), payload.clone())
            .await
            .expect("publish");
    }
    within("flush", client.flush()).await.expect("flush");
    // Wait until the client has read everything and the log stops moving.
    within("the flood settles", async {
        let mut last = (0, 0);
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = (
                stats.nats_messages_in(),
                running.store.read().stats().appended,
            );
            if now == last {
                return;
            }
            last = now;
        }
    })
    .await;
    let read = stats.nats_messages_in() - not_events;
    let received = stats.ingested_core.load(Ordering::Relaxed);
    // Everything the client buffered was taken: its byte count is back to
    // nothing (a count that drifted would refuse messages for good).
    assert_eq!(stats.nats_buffered_bytes(), 0);
    let client_dropped = stats.nats_dropped();
    assert_eq!(
        read,
        received + client_dropped,
        "what the client read was received by ingest or dropped by the client, counted"
    );
    let store = running.store.read().stats();
    let queue_dropped = stats.dropped_ingest.load(Ordering::Relaxed);
    assert_eq!(
        received,
        store.appended + store.too_large + queue_dropped,
        "what ingest received was appended to the log or dropped, counted"
    );
    assert_eq!(store.appended, store.events + store.evicted);
    eprintln!(
        "read {read}: client dropped {client_dropped}, queue dropped {queue_dropped}, \
         appended {}, evicted {}, kept {}",
        store.appended, store.evicted, store.events
    );
    assert!(store.evicted > 0, "the flood overflowed the log's cap");
    assert!(
        client_dropped > 0,
        "the flood overflowed the client's buffer"
    );
    let notices = stats.nats_slow_consumer.load(Ordering::Relaxed);
    let logged = lines
        .lock()
        .get(&eventscope::ingest::redact_url(&running.nats_url))
        .copied()
        .unwrap_or(0);
    let most = 1 + started.elapsed().as_secs() / 10;
    eprintln!(
        "{notices} slow-consumer notices, {logged} logged in {:?}",
        started.elapsed()
    );
    assert!(
        (1..=most).contains(&logged) && notices > most,
        "{logged} lines for {notices} notices in {:?}: one per 10 s",
        started.elapsed()
    );
    let (_, metrics) = get(running.addr, "/metrics").await;
    for (name, value) in [
        (
            "eventscope_events_dropped_total{reason=\"nats_slow_consumer\"}",
            client_dropped,
        ),
        (
            "eventscope_events_dropped_total{reason=\"ingest_queue_full\"}",
            queue_dropped,
        ),
        ("eventscope_store_evicted_total", store.evicted),
        // All taken: the client's buffer holds nothing.
        ("eventscope_nats_buffered_bytes", 0),
    ] {
        assert!(
            metrics.contains(&format!("{name} {value}\n")),
            "{name} {value} in {metrics}"
        );
    }
    running.stop().await;
    nats.stop().await;
}
