//! `eventscope-load`: the load tool for the live path. One run, against a
//! nats-server it starts itself on this machine (or `--nats-url`), with
//! Eventscope running in-process and the publishers on threads of their
//! own (each with its own NATS connection and runtime):
//!
//! 1. paced: traffic offered at fixed rates for some seconds, to Eventscope
//!    (every built-in projection and the log on, subscribed to `>`) and to a
//!    bare async-nats subscriber that only counts; each reports **kept /
//!    offered**, and where the rest went (not delivered by nats-server,
//!    dropped by the NATS client as a slow consumer, dropped by Eventscope's
//!    ingest queue);
//! 2. the loss-free ceiling of each: the highest paced rate at which a run
//!    loses nothing, found by doubling then bisecting;
//! 3. an unpaced burst of N events, kept / offered for each;
//! 4. latency from publish to the WebSocket frame that counts the event;
//! 5. fan-out: C WebSocket clients, each watching views of its own, at the
//!    steady rate: ingest against the run without them, frames per client,
//!    resyncs, and the memory the clients add;
//! 6. a stored burst: the same N events already in a JetStream stream,
//!    drained by a bare consumer (the same pull window), then by Eventscope.
//!
//! The traffic is [`eventscope::traffic`]'s realistic profile unless
//! `--profile simple`. `--quick` runs small numbers for CI and exits
//! non-zero when an event is lost at a rate that should lose nothing, when
//! a loss is not counted anywhere, when a figure is not a number, or when a
//! wait timed out. The full run and its results are in docs/PERFORMANCE.md.

use app::api::Window;
use app::wire::{Body, ClientMsg, Frame, View, ViewData, ViewDelta};
use clap::Parser;
use eventscope::config::Config;
use eventscope::demo::managed_nats::{self, ManagedNats};
use eventscope::traffic::{Profile, Traffic};
use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// The same allocator as the `eventscope` binary, so what this measures is
/// what runs (the bare subscriber gets it too).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "Load tool for Eventscope's live path")]
struct Args {
    /// Small numbers, for CI; exits non-zero on unexpected loss.
    #[arg(long)]
    quick: bool,
    /// The traffic offered.
    #[arg(long, value_enum, default_value_t = Profile::Realistic)]
    profile: Profile,
    /// Paced rates of step 1, events/s, comma-separated.
    #[arg(long, value_delimiter = ',')]
    paced: Option<Vec<u64>>,
    /// Seconds each paced run and each trial of the ceiling search lasts
    /// (default 10; 2 with --quick).
    #[arg(long)]
    paced_seconds: Option<f64>,
    /// The rate the ceiling search starts from, events/s.
    #[arg(long)]
    ceiling_from: Option<u64>,
    /// The ceiling search stops bisecting when the bounds are this close
    /// (a ratio).
    #[arg(long, default_value_t = 1.1)]
    ceiling_precision: f64,
    /// Publisher threads, each with its own connection (they share the
    /// rate).
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Eventscope's `--partitions` (default: its own, from the cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    partitions: Option<u16>,
    /// The log's cap for every in-process Eventscope the run starts
    /// (`--store-bytes`; the soak sets its own).
    #[arg(long, default_value = "512MiB")]
    store_bytes: bytesize::ByteSize,
    /// Events in the bursts (default 1,000,000; 20,000 with --quick).
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
    /// Hostile clients in the hostile step (default 32; 4 with --quick).
    #[arg(long)]
    hostile_clients: Option<usize>,
    /// What the hostile clients do (comma-separated; default all): text,
    /// fields, travel, charts, tails.
    #[arg(long, value_enum, value_delimiter = ',')]
    attacks: Option<Vec<AttackKind>>,
    /// Seconds of the hostile soak (default 300; 20 with --quick).
    #[arg(long)]
    soak_seconds: Option<u64>,
    /// The `eventscope` binary the soak runs (default: beside this tool).
    #[arg(long)]
    eventscope_bin: Option<std::path::PathBuf>,
    /// Leave the bare subscriber out of the paced, ceiling and burst steps
    /// (its figures do not depend on `--partitions`: measure it once per
    /// machine, then run each partition count with this).
    #[arg(long)]
    no_bare: bool,
    /// Use this NATS instead of starting one.
    #[arg(long)]
    nats_url: Option<String>,
    /// Run some steps only (comma-separated): paced, ceiling, burst,
    /// latency, fanout, stored, hostile, soak (not run unless named).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Option<Vec<Step>>,
}

/// What a hostile client does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum AttackKind {
    /// Free-text queries that never match.
    Text,
    /// Field-filter queries (every payload parsed).
    Fields,
    /// Time travel to random moments.
    Travel,
    /// Chart redraws.
    Charts,
    /// Storms of tail subscriptions with random filters.
    Tails,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Step {
    Paced,
    Ceiling,
    Burst,
    Latency,
    Fanout,
    Stored,
    Hostile,
    Soak,
}

/// What went wrong in a run; with `--quick` any of it fails the run.
#[derive(Default)]
struct Failures(Mutex<Vec<String>>);

impl Failures {
    fn add(&self, what: String) {
        eprintln!("  FAIL: {what}");
        self.0.lock().push(what);
    }
    fn number(&self, what: &str, x: f64) -> f64 {
        if !x.is_finite() {
            self.add(format!("{what} is not a number ({x})"));
        }
        x
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn rss_mib() -> f64 {
    rss_in("/proc/self/status")
}

/// The `VmRSS` of a `/proc/…/status` file, MiB.
fn rss_in(status: &str) -> f64 {
    std::fs::read_to_string(status)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Templates in a traffic pool: made before any clock starts, so the
/// publishers spend their time publishing.
const POOL: usize = 1 << 17;

/// How fast to offer.
#[derive(Clone, Copy, Debug)]
enum Pace {
    /// `rate` events/s for `secs`.
    Paced { rate: u64, secs: f64 },
    /// `n` events as fast as the connection takes them.
    Unpaced { n: u64 },
}

/// What the publishers offered.
#[derive(Clone, Copy, Debug)]
struct Offered {
    events: u64,
    secs: f64,
}

/// Offers `traffic` (messages from `first` on) at `pace` from `publishers`
/// threads, each with its own connection and single-threaded runtime;
/// subjects get `prefix` in front. Returns once every publisher has
/// flushed.
async fn offer(
    url: &str,
    traffic: &Arc<Traffic>,
    first: u64,
    pace: Pace,
    publishers: usize,
    prefix: &'static str,
) -> Offered {
    let publishers = publishers.max(1) as u64;
    let start = Instant::now();
    let mut threads = Vec::new();
    for p in 0..publishers {
        let (url, traffic) = (url.to_string(), Arc::clone(traffic));
        threads.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("publisher runtime");
            rt.block_on(async move {
                let client = async_nats::connect(&url).await.expect("publisher connects");
                // Publisher p sends messages first + p, first + p + P, ...
                let mut i = first + p;
                let mut sent = 0u64;
                let send = |i: u64| {
                    let m = traffic.message(i);
                    let subject: async_nats::Subject = if prefix.is_empty() {
                        m.subject.clone()
                    } else {
                        format!("{prefix}{}", m.subject).into()
                    };
                    let headers = m.header_map();
                    let client = &client;
                    async move {
                        match (m.reply, headers) {
                            (Some(reply), Some(h)) => {
                                client
                                    .publish_with_reply_and_headers(subject, reply, h, m.payload)
                                    .await
                            }
                            (Some(reply), None) => {
                                client.publish_with_reply(subject, reply, m.payload).await
                            }
                            (None, Some(h)) => {
                                client.publish_with_headers(subject, h, m.payload).await
                            }
                            (None, None) => client.publish(subject, m.payload).await,
                        }
                    }
                };
                match pace {
                    Pace::Unpaced { n } => {
                        let mine = n / publishers + u64::from(p < n % publishers);
                        while sent < mine {
                            if send(i).await.is_err() {
                                break;
                            }
                            sent += 1;
                            i += publishers;
                        }
                    }
                    Pace::Paced { rate, secs } => {
                        let total = (rate as f64 * secs) as u64;
                        let mine = total / publishers + u64::from(p < total % publishers);
                        let per_ms = rate as f64 / publishers as f64 / 1_000.0;
                        let mut tick = tokio::time::interval(Duration::from_millis(1));
                        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                        let t0 = Instant::now();
                        while sent < mine {
                            tick.tick().await;
                            // What the clock says should be out by now.
                            let due = ((t0.elapsed().as_secs_f64() * 1_000.0 + 1.0) * per_ms)
                                .min(mine as f64) as u64;
                            while sent < due {
                                if send(i).await.is_err() {
                                    break;
                                }
                                sent += 1;
                                i += publishers;
                            }
                            let _ = client.flush().await;
                        }
                    }
                }
                let _ = client.flush().await;
                sent
            })
        }));
    }
    let events = tokio::task::spawn_blocking(move || {
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or(0))
            .sum::<u64>()
    })
    .await
    .unwrap_or(0);
    Offered {
        events,
        secs: start.elapsed().as_secs_f64(),
    }
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
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn wait_until(
    failures: &Failures,
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            failures.add(format!("gave up waiting for {what} after {limit:?}"));
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

/// `--partitions`, for every Eventscope the run starts.
static PARTITIONS: std::sync::OnceLock<Option<u16>> = std::sync::OnceLock::new();
/// `--store-bytes`, the same.
static STORE_BYTES: std::sync::OnceLock<bytesize::ByteSize> = std::sync::OnceLock::new();

/// Eventscope in-process, subscribed to `subject`, with the default log
/// (512 MiB: a long run fills it and goes on at the cap, evicting, as a
/// deployment does; kept is counted from what the log appended, evicted or
/// not) and the JetStream consumer poll off (its requests would be events
/// on `>`).
async fn start_eventscope(url: &str, subject: &str) -> eventscope::Running {
    let mut config = Config::attach(url.to_string(), &[subject]);
    config.partitions = PARTITIONS.get().copied().flatten();
    config.store_bytes = STORE_BYTES
        .get()
        .copied()
        .unwrap_or(bytesize::ByteSize::mib(512));
    config.consumer_poll_ms = 3_600_000;
    eventscope::start(config).await.expect("eventscope starts")
}

/// Events Eventscope's log took from the traffic (its own schema-drift
/// events are not traffic).
fn kept_events(r: &eventscope::Running) -> u64 {
    let drifts: u64 = r
        .stats
        .schema_drifts
        .iter()
        .map(|d| d.load(Ordering::Relaxed))
        .sum();
    r.store.read().stats().appended.saturating_sub(drifts)
}

/// What a receiver did with an offer.
#[derive(Clone, Copy, Debug, Default)]
struct Took {
    /// Messages its NATS connection read (all subscriptions).
    received: u64,
    /// Messages its subscription handed on (the rest of `received` was
    /// dropped by the client: slow consumer).
    delivered: u64,
    /// Dropped by Eventscope's ingest queue, counted.
    queue_dropped: u64,
    /// Refused by the log (an event larger than its cap), counted.
    refused: u64,
    /// Kept but flagged as a repeated `Nats-Msg-Id` (the traffic's ids are
    /// all distinct: any is a fault of the tool).
    duplicates: u64,
    /// Events kept (in the log, a duplicate flagged but kept; for the bare
    /// subscriber: counted).
    kept: u64,
}

/// A receiver under test: Eventscope, or a bare subscriber that counts.
enum Receiver {
    Eventscope(eventscope::Running),
    Bare {
        client: async_nats::Client,
        counted: Arc<AtomicU64>,
        task: tokio::task::JoinHandle<()>,
    },
}

impl Receiver {
    async fn eventscope(failures: &Failures, url: &str, subject: &str) -> Receiver {
        let running = start_eventscope(url, subject).await;
        wait_until(
            failures,
            "eventscope's connection",
            Duration::from_secs(10),
            || running.stats.nats_connected.load(Ordering::Relaxed),
        )
        .await;
        Receiver::Eventscope(running)
    }

    async fn bare(url: &str, subject: &str) -> Receiver {
        let client = async_nats::connect(url).await.expect("subscriber");
        let mut sub = client
            .subscribe(subject.to_string())
            .await
            .expect("subscribe");
        client.flush().await.expect("flush");
        let counted = Arc::new(AtomicU64::new(0));
        let c2 = Arc::clone(&counted);
        let task = tokio::spawn(async move {
            while sub.next().await.is_some() {
                c2.fetch_add(1, Ordering::Relaxed);
            }
        });
        Receiver::Bare {
            client,
            counted,
            task,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Receiver::Eventscope(_) => "eventscope",
            Receiver::Bare { .. } => "bare subscriber",
        }
    }

    fn took(&self) -> Took {
        match self {
            Receiver::Eventscope(r) => {
                let s = r.stats.as_ref();
                let store = r.store.read().stats();
                Took {
                    received: s.nats_messages_in(),
                    delivered: s.ingested_core.load(Ordering::Relaxed),
                    queue_dropped: s.dropped_ingest.load(Ordering::Relaxed),
                    refused: store.too_large,
                    duplicates: store.duplicates,
                    kept: kept_events(r),
                }
            }
            Receiver::Bare {
                client, counted, ..
            } => {
                let n = counted.load(Ordering::Relaxed);
                Took {
                    received: client.statistics().in_messages.load(Ordering::Relaxed),
                    delivered: n,
                    queue_dropped: 0,
                    refused: 0,
                    duplicates: 0,
                    kept: n,
                }
            }
        }
    }

    /// Publishes probes on `probe_subject` until one is kept: the
    /// subscription is live from then on.
    async fn ready(&self, failures: &Failures, publisher: &async_nats::Client, probe: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.took().kept == 0 {
            if Instant::now() > deadline {
                failures.add(format!("{}'s subscription never went live", self.name()));
                return;
            }
            let _ = publisher.publish(probe.to_string(), "{}".into()).await;
            let _ = publisher.flush().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Probes still on their way land before the measured offer.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    async fn stop(self) {
        match self {
            Receiver::Eventscope(r) => r.stop().await,
            Receiver::Bare { task, client, .. } => {
                task.abort();
                drop(client);
            }
        }
    }
}

/// One offer to one receiver, measured.
#[derive(Clone, Copy, Debug)]
struct Trial {
    offered: Offered,
    took: Took,
    /// Seconds from the first publish to the last event kept.
    secs: f64,
}

impl Trial {
    fn lost(&self) -> u64 {
        self.offered.events.saturating_sub(self.took.kept)
    }
    fn kept_ratio(&self) -> f64 {
        self.took.kept as f64 / self.offered.events as f64
    }
    /// Events delivered but neither kept nor counted as dropped.
    fn uncounted(&self) -> i64 {
        let t = &self.took;
        t.delivered as i64 - (t.kept + t.queue_dropped + t.refused) as i64
    }
    fn line(&self) -> String {
        let t = &self.took;
        let not_delivered = self.offered.events.saturating_sub(t.received);
        let client_dropped = t.received.saturating_sub(t.delivered);
        format!(
            "offered {} ({:.0}/s), kept {} = {:.4}; not delivered by nats-server {not_delivered}, dropped by the NATS client {client_dropped}, dropped by the ingest queue {}",
            self.offered.events,
            self.offered.events as f64 / self.offered.secs,
            t.kept,
            self.kept_ratio(),
            t.queue_dropped,
        )
    }
}

/// The run's settings and shared parts.
struct Run {
    url: String,
    traffic: Arc<Traffic>,
    publishers: usize,
    publisher: async_nats::Client,
    failures: Failures,
    /// Messages of the traffic already offered (each offer continues).
    next: AtomicU64,
}

impl Run {
    /// Offers `pace` to a fresh receiver (Eventscope or bare) and measures
    /// what it kept.
    async fn trial(&self, eventscope: bool, pace: Pace) -> Trial {
        let receiver = if eventscope {
            Receiver::eventscope(&self.failures, &self.url, ">").await
        } else {
            Receiver::bare(&self.url, ">").await
        };
        receiver
            .ready(&self.failures, &self.publisher, "probe.ready")
            .await;
        let before = receiver.took();
        let n = match pace {
            Pace::Paced { rate, secs } => (rate as f64 * secs) as u64,
            Pace::Unpaced { n } => n,
        };
        let first = self.next.fetch_add(n, Ordering::Relaxed);
        let t0 = Instant::now();
        let offered = offer(&self.url, &self.traffic, first, pace, self.publishers, "").await;
        let (_, secs) = drain(t0, before.kept + offered.events, || receiver.took().kept).await;
        let after = receiver.took();
        receiver.stop().await;
        let took = Took {
            received: after.received - before.received,
            delivered: after.delivered - before.delivered,
            queue_dropped: after.queue_dropped - before.queue_dropped,
            refused: after.refused - before.refused,
            duplicates: after.duplicates - before.duplicates,
            kept: after.kept - before.kept,
        };
        let trial = Trial {
            offered,
            took,
            secs,
        };
        if trial.took.duplicates > 0 {
            self.failures.add(format!(
                "{} events of the traffic repeated a Nats-Msg-Id (the ids must be distinct)",
                trial.took.duplicates
            ));
        }
        if eventscope && trial.uncounted() != 0 {
            self.failures.add(format!(
                "eventscope lost {} events without counting them: {}",
                trial.uncounted(),
                trial.line()
            ));
        }
        trial
    }

    /// Whether the publishers kept up with `rate` in `trial`.
    fn kept_pace(trial: &Trial, rate: u64) -> bool {
        trial.offered.events as f64 / trial.offered.secs >= rate as f64 * 0.97
    }

    /// The highest paced rate at which `secs` of traffic loses nothing:
    /// doubling from `from`, then bisecting to `precision`.
    async fn ceiling(&self, eventscope: bool, from: u64, secs: f64, precision: f64) -> String {
        let who = if eventscope {
            "eventscope"
        } else {
            "bare subscriber"
        };
        let (mut ok, mut bad): (Option<u64>, Option<u64>) = (None, None);
        let mut limited = None;
        let mut rate = from;
        loop {
            let trial = self.trial(eventscope, Pace::Paced { rate, secs }).await;
            let loss_free = trial.lost() == 0;
            println!(
                "  ceiling search, {who} at {rate}/s: {} ({})",
                if loss_free { "loss-free" } else { "LOST" },
                trial.line()
            );
            if loss_free && !Self::kept_pace(&trial, rate) {
                // The publishers, not the receiver, are the limit here.
                let offered = trial.offered.events as f64 / trial.offered.secs;
                limited = Some(offered);
                ok = Some(offered as u64);
                break;
            }
            // (A run that lost events is a loss at the rate asked for, even
            // when the publishers fell behind: they share the cores.)
            if loss_free {
                ok = Some(rate);
            } else {
                bad = Some(rate);
            }
            rate = match (ok, bad) {
                (Some(lo), None) => lo * 2,
                (None, Some(hi)) if hi > 2_000 => hi / 2,
                (None, Some(_)) => break,
                (Some(lo), Some(hi)) if hi as f64 / lo as f64 > precision => {
                    // The geometric middle, rounded to 1,000/s.
                    (((lo as f64 * hi as f64).sqrt() / 1_000.0).round() as u64 * 1_000).max(lo + 1)
                }
                _ => break,
            };
            if ok.is_some_and(|lo| rate <= lo) || bad.is_some_and(|hi| rate >= hi) {
                break;
            }
        }
        let text = match (ok, bad, limited) {
            (Some(lo), None, Some(pub_rate)) => format!(
                "at least {lo}/s (all the publishers could offer: {pub_rate:.0}/s; try --publishers)"
            ),
            (Some(lo), Some(hi), _) => format!("{lo}/s (loses at {hi}/s)"),
            (Some(lo), None, None) => format!("at least {lo}/s"),
            (None, Some(hi), _) => format!("below {hi}/s"),
            (None, None, _) => "unknown".to_string(),
        };
        println!("loss-free ceiling, {who} ({secs} s runs): {text}");
        text
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    PARTITIONS.get_or_init(|| args.partitions);
    STORE_BYTES.get_or_init(|| args.store_bytes);
    let quick = args.quick;
    let burst_n = args.burst.unwrap_or(if quick { 20_000 } else { 1_000_000 });
    let rate = args.rate.unwrap_or(if quick { 5_000 } else { 50_000 });
    let secs = args.seconds.unwrap_or(if quick { 2 } else { 10 });
    let clients = args.clients.unwrap_or(if quick { 50 } else { 1_000 });
    let paced_secs = args.paced_seconds.unwrap_or(if quick { 2.0 } else { 10.0 });
    let paced_rates = args.paced.clone().unwrap_or(if quick {
        vec![20_000]
    } else {
        vec![100_000, 150_000, 200_000, 250_000, 300_000]
    });
    // The soak runs only when named: it takes minutes.
    let runs = |step: Step| {
        args.only
            .as_ref()
            .map_or(step != Step::Soak, |o| o.contains(&step))
    };
    let receivers: &[bool] = if args.no_bare {
        &[true]
    } else {
        &[false, true]
    };

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
        "eventscope-load: profile {:?}, paced {paced_rates:?}/s for {paced_secs} s, burst {burst_n}, steady {rate}/s for {secs} s, {clients} clients, {} publisher(s), {} partition(s), NATS {url}",
        args.profile,
        args.publishers,
        args.partitions.map_or_else(
            eventscope::projection::partition::default_partitions,
            usize::from
        )
    );
    let traffic = Arc::new(Traffic::new(args.profile, POOL, 42));
    let run = Run {
        publisher: async_nats::connect(&url).await.expect("publisher"),
        url: url.clone(),
        traffic,
        publishers: args.publishers,
        failures: Failures::default(),
        next: AtomicU64::new(0),
    };

    // 1. Paced: kept / offered at fixed rates.
    if runs(Step::Paced) {
        for &r in &paced_rates {
            for &eventscope in receivers {
                let trial = run
                    .trial(
                        eventscope,
                        Pace::Paced {
                            rate: r,
                            secs: paced_secs,
                        },
                    )
                    .await;
                let who = if eventscope {
                    "eventscope"
                } else {
                    "bare subscriber"
                };
                println!("paced {r}/s for {paced_secs} s, {who}: {}", trial.line());
                run.failures
                    .number("a paced run's kept ratio", trial.kept_ratio());
                // CI's rate is far below this machine's ceiling: a loss
                // there is a bug, not a limit.
                if quick && trial.lost() > 0 {
                    run.failures
                        .add(format!("{who} lost events at {r}/s: {}", trial.line()));
                }
            }
        }
    }

    // 2. The loss-free ceilings, in the same run.
    if runs(Step::Ceiling) {
        let from = args
            .ceiling_from
            .unwrap_or(if quick { 25_000 } else { 100_000 });
        let trial_secs = if quick { 1.0 } else { paced_secs };
        let bare = if args.no_bare {
            "not measured (--no-bare)".to_string()
        } else {
            run.ceiling(false, from, trial_secs, args.ceiling_precision)
                .await
        };
        let es = run
            .ceiling(true, from, trial_secs, args.ceiling_precision)
            .await;
        println!("loss-free ceilings: eventscope {es}; bare subscriber {bare}");
    }

    // 3. An unpaced burst.
    if runs(Step::Burst) {
        for &eventscope in receivers {
            let trial = run.trial(eventscope, Pace::Unpaced { n: burst_n }).await;
            let who = if eventscope {
                "eventscope (log + all projections)"
            } else {
                "bare subscriber"
            };
            println!(
                "burst of {burst_n} unpaced, {who}: {}; last kept after {:.3} s",
                trial.line(),
                trial.secs
            );
            run.failures
                .number("a burst's kept ratio", trial.kept_ratio());
        }
    }

    // 4 and 5. Latency and fan-out.
    if runs(Step::Latency) || runs(Step::Fanout) {
        latency_fanout(
            &run,
            rate,
            secs,
            clients,
            runs(Step::Latency),
            runs(Step::Fanout),
        )
        .await;
    }

    // 6. A stored burst.
    if runs(Step::Stored) {
        stored_burst(&run, burst_n).await;
    }

    // 7. Ingest beside hostile clients.
    if runs(Step::Hostile) {
        let hostile_clients = args.hostile_clients.unwrap_or(if quick { 4 } else { 32 });
        let attacks = args.attacks.clone().unwrap_or_else(|| {
            vec![
                AttackKind::Text,
                AttackKind::Fields,
                AttackKind::Travel,
                AttackKind::Charts,
                AttackKind::Tails,
            ]
        });
        hostile(&run, rate, secs, hostile_clients, &attacks).await;
    }

    // 8. The hostile soak.
    if runs(Step::Soak) {
        let soak_secs = args.soak_seconds.unwrap_or(if quick { 20 } else { 300 });
        let bin = args.eventscope_bin.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .expect("own path")
                .with_file_name("eventscope")
        });
        soak(&run, &bin, soak_secs, quick).await;
    }
    if let Some(mut n) = managed {
        n.stop().await;
    }
    let failures = run.failures.0.into_inner();
    if !failures.is_empty() {
        eprintln!("eventscope-load: {} problem(s):", failures.len());
        for f in &failures {
            eprintln!("  - {f}");
        }
        if quick {
            std::process::exit(1);
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client subscribed to `views`.
async fn ws(addr: std::net::SocketAddr, views: &[View]) -> Ws {
    let mut ws = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("websocket")
        .0;
    for view in views {
        let subscribe = serde_json::to_string(&ClientMsg::Subscribe { view: view.clone() })
            .expect("encode subscribe");
        ws.send(Message::Text(subscribe.into()))
            .await
            .expect("send subscribe");
    }
    ws
}

/// Views of client `i` of the fan-out: the counts (as every page) and one
/// view of its own, as clients on different pages watch.
fn own_views(i: usize) -> Vec<View> {
    const PROJECTIONS: [&str; 7] = [
        "rates",
        "log_levels",
        "metrics",
        "top_errors",
        "top_subjects",
        "flows",
        "topology",
    ];
    const WINDOWS: [Window; 3] = [Window::S10, Window::M1, Window::M15];
    let own = match i % 3 {
        0 => View::Projection {
            name: PROJECTIONS[(i / 3) % PROJECTIONS.len()].to_string(),
            window: WINDOWS[(i / 3 / PROJECTIONS.len()) % WINDOWS.len()],
        },
        1 => View::Tail {
            filter: [
                "",
                "level=error,warn",
                "subject=load.fanout",
                "service=load",
            ][(i / 3) % 4]
                .to_string(),
            limit: 10 + (i / 12 % 40) as u32,
        },
        _ => View::Timeline {
            buckets: 60 + (i / 3 % 60) as u32,
        },
    };
    vec![View::Counts, own]
}

/// Publishes the simple profile's events on `subject` at `rate`/s for
/// `secs` from this task, recording each event's publish time.
async fn paced_simple(
    client: &async_nats::Client,
    traffic: &Traffic,
    subject: &'static str,
    rate: u64,
    secs: u64,
    start: Instant,
) -> Vec<f64> {
    let total = rate * secs;
    let mut sent_at = Vec::with_capacity(total as usize);
    let subject = async_nats::Subject::from_static(subject);
    let mut interval = tokio::time::interval(Duration::from_millis(5));
    let t0 = Instant::now();
    while (sent_at.len() as u64) < total {
        interval.tick().await;
        let due = ((t0.elapsed().as_secs_f64() + 0.005) * rate as f64).min(total as f64) as u64;
        while (sent_at.len() as u64) < due {
            let i = sent_at.len() as u64;
            sent_at.push(start.elapsed().as_secs_f64());
            let _ = client
                .publish(subject.clone(), traffic.message(i).payload)
                .await;
        }
        let _ = client.flush().await;
    }
    sent_at
}

/// Steps 4 and 5: latency, then fan-out (simple profile on one subject, so
/// the counts view's frames say when each event was counted).
async fn latency_fanout(
    run: &Run,
    rate: u64,
    secs: u64,
    clients: usize,
    latency: bool,
    fanout: bool,
) {
    let simple = Traffic::new(Profile::Simple, 65_536, 1);
    let running = start_eventscope(&run.url, "load.>").await;
    wait_until(
        &run.failures,
        "eventscope's connection",
        Duration::from_secs(10),
        || running.stats.nats_connected.load(Ordering::Relaxed),
    )
    .await;
    let store = Arc::clone(&running.store);
    let publisher = &run.publisher;
    while store.read().stats().appended == 0 {
        let _ = publisher.publish("load.probe", "{}".into()).await;
        let _ = publisher.flush().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    if latency {
        let mut client = ws(running.addr, &[View::Counts]).await;
        let Some(Ok(Message::Text(text))) = client.next().await else {
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
        let sent_at = paced_simple(publisher, &simple, "load.steady", rate, secs, start).await;
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
        let p99 = run
            .failures
            .number("latency p99", percentile(&latencies, 0.99));
        println!(
            "latency publish -> websocket frame at {rate}/s: p50 {:.1} ms, p99 {p99:.1} ms, max {:.1} ms ({} of {} events seen in frames)",
            percentile(&latencies, 0.5),
            latencies.last().copied().unwrap_or(f64::NAN),
            latencies.len(),
            sent_at.len()
        );
        if latencies.len() != sent_at.len() {
            run.failures.add(format!(
                "latency: {} of {} events never seen in a frame",
                sent_at.len() - latencies.len(),
                sent_at.len()
            ));
        }
    }

    if fanout {
        // The same steady rate with and without C clients.
        let steady = |subject: &'static str| {
            let store = Arc::clone(&store);
            let simple = &simple;
            let failures = &run.failures;
            async move {
                let before = store.read().stats().appended;
                let t0 = Instant::now();
                let sent = paced_simple(publisher, simple, subject, rate, secs, t0)
                    .await
                    .len() as u64;
                wait_until(failures, "the steady run", Duration::from_secs(30), || {
                    store.read().stats().appended >= before + sent
                })
                .await;
                (store.read().stats().appended - before) as f64 / t0.elapsed().as_secs_f64()
            }
        };
        let alone = steady("load.alone").await;
        // The log grows during the run with clients too: what it took is
        // not the clients' (it is its own budget, `--store-bytes`).
        let rss_before = rss_mib();
        let log_before = store.read().bytes();
        let frames_total = Arc::new(AtomicU64::new(0));
        let mut watchers = Vec::with_capacity(clients);
        let mut topics = std::collections::HashSet::new();
        for i in 0..clients {
            let views = own_views(i);
            topics.extend(views.iter().map(View::key));
            let mut c = ws(running.addr, &views).await;
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
        let per_client_hz = (frames_total.load(Ordering::Relaxed) - frames_before) as f64
            / clients as f64
            / elapsed;
        let change = run.failures.number(
            "fan-out ingest change",
            (with_clients / alone - 1.0) * 100.0,
        );
        let rss_after = rss_mib();
        let log_grew = (store.read().bytes() as f64 - log_before as f64) / (1024.0 * 1024.0);
        println!(
            "fan-out: ingest {alone:.0}/s alone, {with_clients:.0}/s with {clients} clients watching {} distinct views ({change:+.1}%), {per_client_hz:.1} frames/s per client, {} resyncs, RSS {rss_after:.0} MiB (+{:.0} MiB since before the clients, of which the log took {log_grew:.0} MiB): the clients add {:.0} MiB",
            topics.len(),
            running.stats.ws_resyncs.load(Ordering::Relaxed) - resyncs_before,
            rss_after - rss_before,
            rss_after - rss_before - log_grew,
        );
        for w in watchers {
            w.abort();
        }
    }
    running.stop().await;
}

/// Step 6: a burst stored in a stream, drained by a bare consumer, then
/// by Eventscope; each timed from its first event to its last.
async fn stored_burst(run: &Run, n: u64) {
    use async_nats::jetstream::{self, stream};
    let js = jetstream::new(run.publisher.clone());
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
    let first = run.next.fetch_add(n, Ordering::Relaxed);
    for i in first..first + n {
        let m = run.traffic.message(i);
        let subject = format!("stored.{}", m.subject);
        let sent = match m.header_map() {
            Some(h) => js.publish_with_headers(subject, h, m.payload).await,
            None => js.publish(subject, m.payload).await,
        };
        match sent {
            Ok(ack) => acks.push(ack.into_future()),
            Err(e) => {
                run.failures
                    .add(format!("cannot publish to the stream: {e}"));
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
        run.failures
            .add(format!("the stream holds {stored} of {n} events"));
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
        let mut config = Config::attach(run.url.clone(), &[]);
        config.streams = vec!["LOAD@all".parse().expect("stream source")];
        config.durable = durable.map(str::to_string);
        config.store_bytes = bytesize::ByteSize::gib(2);
        config.partitions = PARTITIONS.get().copied().flatten();
        let running = eventscope::start(config).await.expect("eventscope starts");
        let events = || kept_events(&running);
        wait_until(
            &run.failures,
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
        let ratio = run
            .failures
            .number("the stored burst's ratio", es_rate / base_rate);
        println!(
            "stored burst, eventscope reading the stream ({how}): {last}/{n} in {es_secs:.3} s = {es_rate:.0} events/s, ratio to baseline {ratio:.2}"
        );
        if last < n {
            run.failures.add(format!(
                "eventscope read {last} of the {n} events the stream holds"
            ));
        }
        running.stop().await;
    }
    let _ = js.delete_stream("LOAD").await;
}

/// `GET path` on a connection of its own: the status (0 if none came) and
/// how long the answer took.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t0 = Instant::now();
    let answer = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        tcp.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .ok()?;
        let mut head = [0u8; 16];
        tcp.read_exact(&mut head).await.ok()?;
        let status = std::str::from_utf8(&head[9..12]).ok()?.parse().ok()?;
        // The rest of the answer, unread, goes with the connection.
        let mut sink = Vec::new();
        let _ = tcp.read_to_end(&mut sink).await;
        Some(status)
    };
    let status = tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .ok()
        .flatten()
        .unwrap_or(0);
    (status, t0.elapsed())
}

/// What the hostile clients did.
#[derive(Default)]
struct Attacks {
    requests: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    subscriptions: AtomicU64,
}

/// One hostile client: loops on the worst requests it can make until
/// `stop`: free text that never matches, field filters that parse every
/// payload, time travel to random moments, chart redraws, and storms of
/// tail subscriptions with random filters.
async fn attack(
    addr: std::net::SocketAddr,
    i: usize,
    kinds: Vec<AttackKind>,
    attacks: Arc<Attacks>,
    stop: Arc<tokio::sync::Notify>,
) {
    let mut rng = fastrand::Rng::with_seed(i as u64);
    let work = async {
        loop {
            let kind = kinds[rng.usize(0..kinds.len())];
            if kind == AttackKind::Tails {
                // A storm: subscribe to 32 tails with random filters, then go.
                let Ok((mut ws, _)) =
                    tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await
                else {
                    attacks.failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                for _ in 0..32 {
                    let filter = match rng.usize(0..3) {
                        0 => format!("q=never{}", rng.u32(..)),
                        1 => format!("field=user.id={}", rng.u32(..)),
                        _ => format!("subject=nothing.{}.>&level=error", rng.u32(..)),
                    };
                    let msg = ClientMsg::Subscribe {
                        view: View::Tail {
                            filter,
                            limit: 1_000,
                        },
                    };
                    let text = serde_json::to_string(&msg).expect("json");
                    if ws.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                    attacks.subscriptions.fetch_add(1, Ordering::Relaxed);
                }
                // Read what came, briefly, then leave.
                let until = Instant::now() + Duration::from_millis(200);
                while let Ok(Some(_)) = tokio::time::timeout_at(until.into(), ws.next()).await {}
                let _ = ws.close(None).await;
                continue;
            }
            let path = match kind {
                AttackKind::Text => {
                    format!("/api/v1/events?q=never-there-{}&limit=1000", rng.u32(..))
                }
                AttackKind::Fields => format!(
                    "/api/v1/events?field=user.id={}&field=order.total={}&limit=1000",
                    rng.u32(..),
                    rng.u32(..)
                ),
                AttackKind::Travel => format!(
                    "/api/v1/projections/levels?window=1m&at={}",
                    rng.u64(1..2_000_000)
                ),
                AttackKind::Charts | AttackKind::Tails => {
                    "/api/v1/charts/levels.svg?window=15m".to_string()
                }
            };
            let (status, _) = http_get(addr, &path).await;
            attacks.requests.fetch_add(1, Ordering::Relaxed);
            match status {
                200 | 400 | 404 | 410 => {}
                503 => {
                    attacks.refused.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    attacks.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    };
    tokio::select! {
        _ = stop.notified() => {}
        _ = work => {}
    }
}

/// Probes `/healthz` every 20 ms until `stop`; the answer times.
async fn probe_health(addr: std::net::SocketAddr, stop: Arc<tokio::sync::Notify>) -> Vec<f64> {
    let mut times = Vec::new();
    let work = async {
        loop {
            let (status, took) = http_get(addr, "/healthz").await;
            times.push(if status == 200 {
                took.as_secs_f64() * 1e3
            } else {
                f64::INFINITY
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        _ = stop.notified() => {}
        _ = work => {}
    }
    times
}

/// Step 7: ingest at `rate` for `secs`, idle, then beside `clients`
/// hostile clients, each on a fresh Eventscope: events kept over events
/// offered in both, their ratio, and `/healthz` answer times throughout.
async fn hostile(run: &Run, rate: u64, secs: u64, clients: usize, kinds: &[AttackKind]) {
    let mut kept_ratios = Vec::new();
    for with_attacks in [false, true] {
        let receiver = Receiver::eventscope(&run.failures, &run.url, ">").await;
        receiver
            .ready(&run.failures, &run.publisher, "probe.ready")
            .await;
        let Receiver::Eventscope(running) = &receiver else {
            unreachable!("an eventscope receiver")
        };
        let addr = running.addr;
        let stop = Arc::new(tokio::sync::Notify::new());
        let attacks = Arc::new(Attacks::default());
        let health = tokio::spawn(probe_health(addr, Arc::clone(&stop)));
        let mut attackers = Vec::new();
        if with_attacks {
            // A log to attack: the first second's traffic, then the clients.
            for i in 0..clients {
                attackers.push(tokio::spawn(attack(
                    addr,
                    i,
                    kinds.to_vec(),
                    Arc::clone(&attacks),
                    Arc::clone(&stop),
                )));
            }
        }
        let before = receiver.took();
        let n = rate * secs;
        let first = run.next.fetch_add(n, Ordering::Relaxed);
        let t0 = Instant::now();
        let pace = Pace::Paced {
            rate,
            secs: secs as f64,
        };
        let offered = offer(&run.url, &run.traffic, first, pace, run.publishers, "").await;
        let _ = drain(t0, before.kept + offered.events, || receiver.took().kept).await;
        let after = receiver.took();
        stop.notify_waiters();
        for a in attackers {
            let _ = a.await;
        }
        let mut times = health.await.unwrap_or_default();
        times.sort_by(f64::total_cmp);
        let kept = after.kept - before.kept;
        let ratio = kept as f64 / offered.events as f64;
        kept_ratios.push(ratio);
        let who = if with_attacks {
            format!("with {clients} hostile clients ({kinds:?})")
        } else {
            "idle".to_string()
        };
        println!(
            "hostile step, {who}: offered {} ({:.0}/s), kept {kept} = {ratio:.4}, dropped by the ingest queue {}, by the NATS client {}; /healthz {} probes, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms{}",
            offered.events,
            offered.events as f64 / offered.secs,
            after.queue_dropped - before.queue_dropped,
            (after.received - before.received).saturating_sub(after.delivered - before.delivered),
            times.len(),
            percentile(&times, 0.50),
            percentile(&times, 0.99),
            times.last().copied().unwrap_or(f64::NAN),
            if with_attacks {
                format!(
                    "; hostile requests {} (503 {}, failed {}), tail subscriptions {}",
                    attacks.requests.load(Ordering::Relaxed),
                    attacks.refused.load(Ordering::Relaxed),
                    attacks.failed.load(Ordering::Relaxed),
                    attacks.subscriptions.load(Ordering::Relaxed),
                )
            } else {
                String::new()
            }
        );
        if times.last().is_some_and(|m| !m.is_finite()) {
            run.failures.add(format!("/healthz failed to answer {who}"));
        }
        receiver.stop().await;
    }
    if let [idle, attacked] = kept_ratios[..] {
        println!(
            "hostile step: kept under attack / kept idle = {:.4} (target at least 0.90)",
            attacked / idle
        );
        run.failures
            .number("the hostile step's ratio", attacked / idle);
    }
}

/// Resident memory of process `pid`, MiB.
fn rss_of(pid: u32) -> f64 {
    rss_in(&format!("/proc/{pid}/status"))
}

/// `GET /metrics` of the app at `addr`: every sample, `name{labels}` ->
/// value.
async fn metrics_of(addr: std::net::SocketAddr) -> std::collections::HashMap<String, f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut out = std::collections::HashMap::new();
    let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await else {
        return out;
    };
    let _ = tcp
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
    let mut body = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut body)).await;
    let text = String::from_utf8_lossy(&body);
    for line in text.lines().filter(|l| l.starts_with("eventscope_")) {
        if let Some((name, value)) = line.rsplit_once(' ')
            && let Ok(v) = value.parse::<f64>()
        {
            out.insert(name.to_string(), v);
        }
    }
    out
}

/// The sum of a metric over its labels.
fn metric_sum(m: &std::collections::HashMap<String, f64>, name: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| *k == name || k.starts_with(&format!("{name}{{")))
        .map(|(_, v)| v)
        .sum()
}

/// Step 8, the hostile soak: the `eventscope` binary (a child process, so
/// its memory is its own), with a 256 MiB log, fed for `secs` seconds with
/// the traffic that hurts: 1 MB payloads, 50 KB error texts all
/// different, 10 KB `Nats-Msg-Id`s, a new subject per message (a million
/// over a long run), 100,000 metric series and correlation ids. Every 5 s:
/// its RSS, whether a small probe event is still taken into the log, and
/// the accounts. The RSS bound is what the budgets add up to: the log's
/// cap, the projections' budget, the hub's queue (64 MiB) and the NATS
/// client's buffer, plus 200 MiB for the runtime, the allocator's slack,
/// the live views and the rest.
async fn soak(run: &Run, bin: &std::path::Path, secs: u64, quick: bool) {
    const STORE_MIB: f64 = 256.0;
    const PROJECTIONS_MIB: f64 = 64.0;
    const QUEUE_MIB: f64 = 64.0;
    const NATS_BUFFER_MIB: f64 = 32.0;
    const BOUND_MIB: f64 = STORE_MIB + PROJECTIONS_MIB + QUEUE_MIB + NATS_BUFFER_MIB + 200.0;
    let port = managed_nats::free_port().expect("port");
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let mut child = match tokio::process::Command::new(bin)
        .args([
            "--nats-url",
            &run.url,
            "--subject",
            "soak.>",
            "--store-bytes",
            "256MiB",
            "--projection-bytes",
            "64MiB",
            "--nats-buffer-bytes",
            "32MiB",
            "--addr",
            &addr.to_string(),
        ])
        .env("EVENTSCOPE_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            run.failures
                .add(format!("cannot run {} for the soak: {e}", bin.display()));
            return;
        }
    };
    let pid = child.id().expect("pid");
    wait_until(
        &run.failures,
        "the soak's eventscope answers",
        Duration::from_secs(20),
        || std::net::TcpStream::connect(addr).is_ok(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let client = async_nats::connect(&run.url).await.expect("publisher");
    let mut rng = fastrand::Rng::with_seed(7);
    let big = bytes::Bytes::from(vec![b'x'; 1_000_000]);
    let mut published = 0u64;
    let mut probes = 0u64;
    let mut max_rss: f64 = 0.0;
    let mut refused_probes = 0u64;
    let t0 = Instant::now();
    let mut next_sample = Duration::from_secs(5);
    println!(
        "soak: {} s, eventscope pid {pid}, RSS bound {BOUND_MIB} MiB (log {STORE_MIB} + projections {PROJECTIONS_MIB} + queue {QUEUE_MIB} + NATS buffer {NATS_BUFFER_MIB} + 200 MiB)",
        secs
    );
    // About 2,000 messages and 30 MB a second, in rounds of 100.
    while t0.elapsed() < Duration::from_secs(secs) {
        let round = Instant::now();
        for k in 0..100u64 {
            let n = published;
            let subject = format!("soak.s{n}");
            let mut headers = async_nats::HeaderMap::new();
            let payload: bytes::Bytes = match k % 10 {
                0 if k == 0 => big.clone(),
                1 => {
                    // A 50 KB error text no other shares.
                    let text: String = std::iter::repeat_with(|| rng.alphanumeric())
                        .take(50_000)
                        .collect();
                    format!(r#"{{"level":"error","service":"soak","msg":"{n} {text}"}}"#).into()
                }
                2 => {
                    let id: String = std::iter::repeat_with(|| rng.alphanumeric())
                        .take(10_000)
                        .collect();
                    headers.insert("Nats-Msg-Id", id.as_str());
                    format!(r#"{{"level":"info","msg":"with a long id {n}"}}"#).into()
                }
                3 => format!(
                    r#"{{"name":"soak_metric","value":{},"tags":{{"series":"s{}"}}}}"#,
                    rng.u32(..1000),
                    n % 100_000
                )
                .into(),
                _ => {
                    headers.insert(
                        "Nats-Correlation-Id",
                        format!("corr-{}", n % 100_000).as_str(),
                    );
                    format!(
                        r#"{{"level":"info","service":"svc{}","msg":"step {n}"}}"#,
                        n % 50
                    )
                    .into()
                }
            };
            let sent = if headers.is_empty() {
                client.publish(subject, payload).await
            } else {
                client.publish_with_headers(subject, headers, payload).await
            };
            if sent.is_ok() {
                published += 1;
            }
        }
        let _ = client.flush().await;
        if let Some(rest) = Duration::from_millis(50).checked_sub(round.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        if t0.elapsed() >= next_sample {
            next_sample += Duration::from_secs(5);
            let rss = rss_of(pid);
            max_rss = max_rss.max(rss);
            // A small event: is the log still taking new ones?
            let before = metrics_of(addr).await;
            let appended = |m: &std::collections::HashMap<String, f64>| {
                metric_sum(m, "eventscope_store_events")
                    + metric_sum(m, "eventscope_store_evicted_total")
            };
            let _ = client
                .publish("soak.probe", r#"{"level":"info","msg":"probe"}"#.into())
                .await;
            let _ = client.flush().await;
            probes += 1;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let after = metrics_of(addr).await;
            let taken = metric_sum(&after, "eventscope_events_ingested_total")
                > metric_sum(&before, "eventscope_events_ingested_total")
                && appended(&after) > appended(&before);
            if !taken {
                refused_probes += 1;
            }
            println!(
                "  soak {:>4.0} s: RSS {rss:.0} MiB (max {max_rss:.0}), log {:.0} MiB, projections {:.0} + checkpoints {:.0} MiB ({} held, {} let go), NATS buffer {:.0} MiB, published {published}, ingested {}, dropped {}, dictionary overflow {}, log still taking events: {}",
                t0.elapsed().as_secs_f64(),
                metric_sum(&after, "eventscope_store_bytes") / 1048576.0,
                metric_sum(&after, "eventscope_projection_bytes{state=\"live\"}") / 1048576.0,
                metric_sum(&after, "eventscope_projection_bytes{state=\"checkpoints\"}")
                    / 1048576.0,
                metric_sum(&after, "eventscope_checkpoints"),
                metric_sum(&after, "eventscope_checkpoints_dropped_total"),
                metric_sum(&after, "eventscope_nats_buffered_bytes") / 1048576.0,
                metric_sum(&after, "eventscope_events_ingested_total"),
                metric_sum(&after, "eventscope_events_dropped_total"),
                metric_sum(&after, "eventscope_dictionary_overflow_total"),
                if taken { "yes" } else { "NO" },
            );
        }
    }
    // Let the last of it land, then account for every message.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m = metrics_of(addr).await;
    let rss = rss_of(pid);
    max_rss = max_rss.max(rss);
    let ingested = metric_sum(&m, "eventscope_events_ingested_total");
    let dropped = metric_sum(&m, "eventscope_events_dropped_total");
    let sent = (published + probes) as f64;
    println!(
        "soak: published {} (+{probes} probes), ingested {ingested}, dropped {dropped} ({}), max RSS {max_rss:.0} MiB against a bound of {BOUND_MIB} MiB; probes not taken into the log {refused_probes}",
        published,
        m.iter()
            .filter(|(k, v)| k.starts_with("eventscope_events_dropped_total{") && **v > 0.0)
            .map(|(k, v)| format!(
                "{}: {v}",
                k.trim_start_matches("eventscope_events_dropped_total")
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Not met yet (docs/PERFORMANCE.md): reported, and a failure of the
    // full run, but not of CI's short one, which checks the rest.
    if max_rss > BOUND_MIB {
        let what =
            format!("the soak's RSS reached {max_rss:.0} MiB, past its bound of {BOUND_MIB} MiB");
        if quick {
            println!("soak: {what} (known, not gated in --quick)");
        } else {
            run.failures.add(what);
        }
    }
    if refused_probes > 0 {
        run.failures.add(format!(
            "{refused_probes} probes were not taken into the log during the soak"
        ));
    }
    // Every message nats-server delivered is ingested or dropped, counted.
    let read = metric_sum(&m, "eventscope_nats_messages_in_total");
    let client_dropped = m
        .get("eventscope_events_dropped_total{reason=\"nats_slow_consumer\"}")
        .copied()
        .unwrap_or(0.0);
    // (What the client read besides events: the replies to the JetStream
    // consumer polls, a few every 5 s.)
    let besides = read - client_dropped - ingested;
    println!(
        "soak: the NATS client read {read}: ingested {ingested}, dropped by it {client_dropped}, JetStream API replies {besides}"
    );
    if besides < 0.0 || besides > 0.01 * read || ingested > sent {
        run.failures.add(format!(
            "soak accounts do not add up: read {read}, dropped by the client {client_dropped}, ingested {ingested}, sent {sent}"
        ));
    }
    let _ = child.kill().await;
}
