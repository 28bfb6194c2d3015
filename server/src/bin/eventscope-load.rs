//! `eventscope-load`: the load tool for the live path (issue: live protocol
//! and the load bench). One run, against a nats-server it starts itself on
//! this machine (or `--nats-url`), with Eventscope running in-process:
//!
//! 1. baseline: a bare async-nats subscriber that only counts drains a burst
//!    of N JSON events of about 300 B; then Eventscope (every built-in
//!    projection and the log on) ingests the same burst; the ratio is printed;
//! 2. latency from publish to the WebSocket frame that counts the event, at a
//!    steady rate, with a real WebSocket client (p50, p99, max);
//! 3. fan-out: C WebSocket clients watching while ingesting at the steady
//!    rate; ingest rate against the no-client run, frames per client per
//!    second, resyncs, and the process's resident memory.
//! 4. a stored burst: the same N events already in a JetStream stream,
//!    drained by a bare consumer that only counts (through the same kind of
//!    consumer, with the same pull window), then by Eventscope reading the
//!    stream; the ratio is printed.
//!
//! `--quick` runs small numbers (for CI, so the tool cannot rot); the full
//! run and its results are in docs/PERFORMANCE.md.

use app::wire::{Body, ClientMsg, Frame, View, ViewData, ViewDelta};
use clap::Parser;
use eventscope::config::Config;
use eventscope::demo::managed_nats::{self, ManagedNats};
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(about = "Load tool for Eventscope's live path")]
struct Args {
    /// Small numbers, for CI.
    #[arg(long)]
    quick: bool,
    /// Events in the burst (default 1,000,000; 20,000 with --quick).
    #[arg(long)]
    burst: Option<u64>,
    /// Steady rate for the latency and fan-out runs, events/s.
    #[arg(long)]
    rate: Option<u64>,
    /// Seconds each steady run lasts.
    #[arg(long)]
    seconds: Option<u64>,
    /// WebSocket clients in the fan-out run.
    #[arg(long)]
    clients: Option<usize>,
    /// Use this NATS instead of starting one.
    #[arg(long)]
    nats_url: Option<String>,
    /// Run one step only, to profile it alone: `burst` (step 1) or
    /// `stored` (step 4).
    #[arg(long, value_enum)]
    only: Option<Only>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Only {
    Burst,
    Stored,
}

/// A JSON log event of about 300 bytes; `i` makes each one distinct.
fn payload(i: u64) -> bytes::Bytes {
    let mut p = format!(
        r#"{{"ts":{},"level":"{}","service":"load","msg":"request handled","request_id":"{i:016x}","latency_ms":{}"#,
        1_795_672_800_000u64 + i,
        if i.is_multiple_of(50) {
            "error"
        } else {
            "info"
        },
        i % 400
    );
    let pad = 299usize.saturating_sub(p.len() + 12);
    p.push_str(&format!(r#","pad":"{}"}}"#, "x".repeat(pad)));
    bytes::Bytes::from(p)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Distinct payloads a burst cycles through: made before the clock starts,
/// so the publisher (which shares the two cores with the subscriber being
/// measured) spends its time publishing, not formatting.
const POOL: u64 = 65_536;

/// Publishes `n` events from `pool` on `subject` as fast as the client
/// takes them.
async fn burst(client: &async_nats::Client, subject: &'static str, pool: &[bytes::Bytes], n: u64) {
    let subject = async_nats::Subject::from_static(subject);
    for payload in pool.iter().cycle().take(n as usize) {
        if client
            .publish(subject.clone(), payload.clone())
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = client.flush().await;
}

/// Publishes at `rate`/s for `secs`, recording each event's publish time.
async fn paced(
    client: &async_nats::Client,
    subject: &str,
    rate: u64,
    secs: u64,
    start: Instant,
) -> Vec<f64> {
    let total = rate * secs;
    let mut sent_at = Vec::with_capacity(total as usize);
    let tick = Duration::from_millis(5);
    let per_tick = (rate as f64 * tick.as_secs_f64()).max(1.0);
    let mut interval = tokio::time::interval(tick);
    let mut owed = 0.0;
    while (sent_at.len() as u64) < total {
        interval.tick().await;
        owed += per_tick;
        while owed >= 1.0 && (sent_at.len() as u64) < total {
            owed -= 1.0;
            let i = sent_at.len() as u64;
            sent_at.push(start.elapsed().as_secs_f64());
            let _ = client.publish(subject.to_string(), payload(i)).await;
        }
        let _ = client.flush().await;
    }
    sent_at
}

/// Waits until `count()` reaches `target` or stops growing for a second;
/// returns the count and the seconds from `t0` to the last growth.
async fn drain(t0: Instant, target: u64, count: impl Fn() -> u64) -> (u64, f64) {
    let mut last = (count(), t0.elapsed().as_secs_f64());
    loop {
        let now = count();
        if now != last.0 {
            last = (now, t0.elapsed().as_secs_f64());
        }
        if now >= target || t0.elapsed().as_secs_f64() - last.1 > 1.0 {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            eprintln!("  (gave up waiting for {what} after {limit:?})");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

async fn start_eventscope(url: &str, subject: &str) -> eventscope::Running {
    let mut config = Config::attach(url.to_string(), &[subject]);
    config.store_bytes = bytesize::ByteSize::gib(2);
    eventscope::start(config).await.expect("eventscope starts")
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client subscribed to the counts view, as the UI's first
/// subscription.
async fn ws(addr: std::net::SocketAddr) -> Ws {
    let mut ws = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("websocket")
        .0;
    let subscribe = serde_json::to_string(&ClientMsg::Subscribe { view: View::Counts })
        .expect("encode subscribe");
    ws.send(Message::Text(subscribe.into()))
        .await
        .expect("send subscribe");
    ws
}

/// Step 4: a burst stored in a stream, drained by a bare consumer, then
/// by Eventscope; each timed from its first event to its last.
async fn stored_burst(publisher: &async_nats::Client, url: &str, n: u64) {
    use async_nats::jetstream::{self, stream};
    let js = jetstream::new(publisher.clone());
    let mut load = js
        .get_or_create_stream(stream::Config {
            name: "LOAD".into(),
            subjects: vec!["stored.>".into()],
            ..stream::Config::default()
        })
        .await
        .expect("stream LOAD");
    // Published with JetStream's acknowledgements (a few thousand in
    // flight), so the stream holds every one: a core publish may be
    // dropped by a stream that is behind.
    let mut acks = futures::stream::FuturesUnordered::new();
    for i in 0..n {
        match js.publish("stored.events", payload(i)).await {
            Ok(ack) => acks.push(ack.into_future()),
            Err(e) => {
                eprintln!("  (cannot publish to the stream: {e})");
                return;
            }
        }
        while acks.len() >= 4_096 {
            let _ = acks.next().await;
        }
    }
    while acks.next().await.is_some() {}
    let stored = load.info().await.map_or(0, |i| i.state.messages);
    if stored < n {
        eprintln!("  (the stream holds {stored} of {n} events)");
        return;
    }

    // The same consumer Eventscope reads through (the same pull window), so
    // the ratio measures what Eventscope does with each message.
    let mut messages = eventscope::ingest::jetstream::read_ephemeral(
        &load,
        async_nats::jetstream::consumer::DeliverPolicy::All,
    )
    .await
    .expect("consumer");
    let (mut got, mut first) = (0u64, None);
    while got < n {
        match tokio::time::timeout(Duration::from_secs(5), messages.next()).await {
            Ok(Some(Ok(_))) => {
                first.get_or_insert_with(Instant::now);
                got += 1;
            }
            _ => break,
        }
    }
    let base_secs = first.map_or(f64::NAN, |t| t.elapsed().as_secs_f64());
    let base_rate = got as f64 / base_secs;
    drop(messages);
    println!(
        "stored burst, bare consumer that only counts: {got}/{n} in {base_secs:.3} s = {base_rate:.0} events/s"
    );

    // Eventscope, then Eventscope with a durable consumer (acknowledging).
    for durable in [None, Some("load-durable")] {
        let mut config = Config::attach(url.to_string(), &[]);
        config.streams = vec!["LOAD@all".parse().expect("stream source")];
        config.durable = durable.map(str::to_string);
        config.store_bytes = bytesize::ByteSize::gib(2);
        let running = eventscope::start(config).await.expect("eventscope starts");
        let events = || running.store.read().stats().events;
        wait_until(
            "eventscope's first event from the stream",
            Duration::from_secs(30),
            || events() > 0,
        )
        .await;
        let (last, es_secs) = drain(Instant::now(), n, events).await;
        let es_rate = last as f64 / es_secs;
        let how = if durable.is_some() {
            "with a durable consumer, acknowledging"
        } else {
            "log + all projections"
        };
        println!(
            "stored burst, eventscope reading the stream ({how}): {last}/{n} in {es_secs:.3} s = {es_rate:.0} events/s, ratio to baseline {:.2}",
            es_rate / base_rate
        );
        running.stop().await;
    }
    let _ = js.delete_stream("LOAD").await;
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let burst_n = args
        .burst
        .unwrap_or(if args.quick { 20_000 } else { 1_000_000 });
    let rate = args.rate.unwrap_or(if args.quick { 5_000 } else { 50_000 });
    let secs = args.seconds.unwrap_or(if args.quick { 2 } else { 10 });
    let clients = args.clients.unwrap_or(if args.quick { 50 } else { 1_000 });

    let mut managed = None;
    let url = match &args.nats_url {
        Some(u) => u.clone(),
        None => {
            let bin = managed_nats::find_binary(None)
                .expect("nats-server (scripts/setup.sh installs it)");
            let port = managed_nats::free_port().expect("port");
            let n = ManagedNats::start(&bin, port)
                .await
                .expect("nats-server starts");
            let url = n.url();
            managed = Some(n);
            url
        }
    };
    println!(
        "eventscope-load: burst {burst_n}, steady {rate}/s for {secs} s, {clients} clients, NATS {url}"
    );
    let publisher = async_nats::connect(&url).await.expect("publisher");
    if args.only != Some(Only::Stored) {
        let steady = (args.only.is_none()).then_some((rate, secs, clients));
        burst_latency_fanout(&publisher, &url, burst_n, steady).await;
    }

    // 4. A stored burst: the same N events already in a JetStream stream,
    // drained by a bare consumer that only counts, then by
    // Eventscope reading the stream from its start (`LOAD@all`). The
    // publisher is done before either starts, so the two cores are shared
    // by nats-server and the reader only.
    if args.only != Some(Only::Burst) {
        stored_burst(&publisher, &url, burst_n).await;
    }
    if let Some(mut n) = managed {
        n.stop().await;
    }
}

/// Steps 1 to 3: the core-NATS burst, then (given a steady rate, its
/// seconds and the clients) latency and fan-out.
async fn burst_latency_fanout(
    publisher: &async_nats::Client,
    url: &str,
    burst_n: u64,
    steady: Option<(u64, u64, usize)>,
) {
    let pool: Vec<bytes::Bytes> = (0..POOL.min(burst_n)).map(payload).collect();
    // 1a. Baseline: a bare subscriber that counts.
    let baseline_client = async_nats::connect(&url).await.expect("subscriber");
    let mut sub = baseline_client
        .subscribe("base.>")
        .await
        .expect("subscribe");
    baseline_client.flush().await.expect("flush");
    let counted = Arc::new(AtomicU64::new(0));
    let c2 = Arc::clone(&counted);
    let counter = tokio::spawn(async move {
        while sub.next().await.is_some() {
            c2.fetch_add(1, Ordering::Relaxed);
        }
    });
    let t0 = Instant::now();
    burst(publisher, "base.events", &pool, burst_n).await;
    let (base_got, base_secs) = drain(t0, burst_n, || counted.load(Ordering::Relaxed)).await;
    counter.abort();
    drop(baseline_client);
    let base_rate = base_got as f64 / base_secs;
    println!(
        "baseline  bare subscriber: {base_got}/{burst_n} in {base_secs:.3} s = {base_rate:.0} events/s"
    );

    // 1b. Eventscope on the same burst.
    let running = start_eventscope(url, "load.>").await;
    wait_until("eventscope's subscription", Duration::from_secs(10), || {
        running.stats.nats_connected.load(Ordering::Relaxed)
    })
    .await;
    // Probe until the subscription is live, then measure from a clean count.
    let store = Arc::clone(&running.store);
    loop {
        publisher
            .publish("load.probe", "{}".into())
            .await
            .expect("probe");
        publisher.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(50)).await;
        if store.read().stats().events > 0 {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = store.read().stats().events;
    let t0 = Instant::now();
    burst(publisher, "load.events", &pool, burst_n).await;
    let (es_total, es_secs) = drain(t0, before + burst_n, || store.read().stats().events).await;
    let es_got = es_total - before;
    let es_rate = es_got as f64 / es_secs;
    let dropped = running.stats.dropped_ingest.load(Ordering::Relaxed)
        + running.stats.nats_slow_consumer.load(Ordering::Relaxed);
    println!(
        "eventscope ingest (log + all projections): {es_got}/{burst_n} in {es_secs:.3} s = {es_rate:.0} events/s, ratio to baseline {:.2}, counted drops {dropped} (the rest of a shortfall was dropped by nats-server: slow consumer)",
        es_rate / base_rate
    );

    let Some((rate, secs, clients)) = steady else {
        running.stop().await;
        return;
    };

    // 2. Latency: publish to the frame that counts the event.
    let mut client = ws(running.addr).await;
    let first = client.next().await;
    let Some(Ok(Message::Text(text))) = first else {
        panic!("no snapshot")
    };
    let snapshot: Frame = serde_json::from_str(&text).expect("frame");
    let Body::Snapshot {
        data: ViewData::Counts(s),
    } = snapshot.body
    else {
        panic!("first frame is not a snapshot")
    };
    let base_total = s.subjects.get("load.steady").map_or(0, |c| c.count);
    let start = Instant::now();
    let stop = tokio_util::sync::CancellationToken::new();
    let stop_frames = stop.clone();
    let frames = tokio::spawn(async move {
        // (arrival time, count of load.steady) per frame
        let mut seen = Vec::new();
        loop {
            let msg = tokio::select! {
                _ = stop_frames.cancelled() => break,
                msg = client.next() => match msg {
                    Some(Ok(m)) => m,
                    _ => break,
                },
            };
            if let Message::Text(text) = msg
                && let Ok(frame) = serde_json::from_str::<Frame>(&text)
                && let Body::Delta {
                    data: ViewDelta::Counts(d),
                }
                | Body::Snapshot {
                    data: ViewData::Counts(d),
                } = frame.body
                && let Some(c) = d.subjects.get("load.steady")
            {
                seen.push((start.elapsed().as_secs_f64(), c.count));
            }
        }
        seen
    });
    let sent_at = paced(publisher, "load.steady", rate, secs, start).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let seen = frames.await.unwrap_or_default();
    let mut latencies: Vec<f64> = Vec::with_capacity(sent_at.len());
    let mut f = 0;
    for (i, t) in sent_at.iter().enumerate() {
        let need = base_total + i as u64 + 1;
        while f < seen.len() && seen[f].1 < need {
            f += 1;
        }
        if let Some((arrived, _)) = seen.get(f) {
            latencies.push((arrived - t) * 1_000.0);
        }
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "latency publish -> websocket frame at {rate}/s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} of {} events seen in frames)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len(),
        sent_at.len()
    );

    // 3. Fan-out: the same steady rate with and without C clients.
    let steady = |subject: &'static str| {
        let publisher = publisher.clone();
        let store = Arc::clone(&store);
        async move {
            let before = store.read().stats().events;
            let t0 = Instant::now();
            let sent = paced(&publisher, subject, rate, secs, t0).await.len() as u64;
            wait_until("the steady run", Duration::from_secs(30), || {
                store.read().stats().events >= before + sent
            })
            .await;
            (store.read().stats().events - before) as f64 / t0.elapsed().as_secs_f64()
        }
    };
    let alone = steady("load.alone").await;
    let frames_total = Arc::new(AtomicU64::new(0));
    let mut watchers = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut c = ws(running.addr).await;
        let frames_total = Arc::clone(&frames_total);
        watchers.push(tokio::spawn(async move {
            while let Some(Ok(_)) = c.next().await {
                frames_total.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let resyncs_before = running.stats.ws_resyncs.load(Ordering::Relaxed);
    let frames_before = frames_total.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let with_clients = steady("load.fanout").await;
    let elapsed = t0.elapsed().as_secs_f64();
    let per_client_hz =
        (frames_total.load(Ordering::Relaxed) - frames_before) as f64 / clients as f64 / elapsed;
    println!(
        "fan-out: ingest {alone:.0}/s alone, {with_clients:.0}/s with {clients} clients ({:+.1}%), {per_client_hz:.1} frames/s per client, {} resyncs, RSS {:.0} MiB",
        (with_clients / alone - 1.0) * 100.0,
        running.stats.ws_resyncs.load(Ordering::Relaxed) - resyncs_before,
        rss_mib()
    );
    for w in watchers {
        w.abort();
    }
    running.stop().await;
}
