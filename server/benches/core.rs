//! Benchmarks of the core (issue: fold throughput, replay of 1M events,
//! store bytes per event). Run: `cargo bench -p server --bench core`.
//! Quick check that it still runs: `cargo bench -p server --bench core -- --test`.
//!
//! Each group has a baseline measured in the same run (iterating the store
//! without folding; copying payloads without indexing) so the printed
//! numbers can be read as ratios on any machine.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use eventscope::event::NewEvent;
use eventscope::ingest::decode::{Decoders, Level, decode};
use eventscope::live::hub::Hub;
use eventscope::projection::builtin::Projections;
use eventscope::projection::timetravel::{Checkpoints, fold_from};
use eventscope::store::Store;
use eventscope::store::query::Query;
use eventscope::traffic::{Profile, Traffic};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// mimalloc: the event path allocates small strings and buffers on every
/// worker thread; glibc's malloc spent about a quarter of the hub's time in
/// its own bookkeeping (docs/PERFORMANCE.md, stop 15).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The load tool's realistic traffic (requests through several services
/// sharing trace ids, `Nats-Msg-Id` and `Causation-Id` headers on domain
/// events, 10% metric samples, 1% errors, request/reply; about 275 bytes),
/// 250 events per millisecond of received time (250k events/s, so the
/// per-second budgets, windows and rates see what they see live).
fn events(n: usize) -> Vec<NewEvent> {
    events_of(Profile::Realistic, n)
}

fn events_of(profile: Profile, n: usize) -> Vec<NewEvent> {
    let traffic = Traffic::new(profile, n, 42);
    let decoders = Decoders::new(Vec::new());
    let start = 1_795_672_800_000i64;
    (0..n as u64)
        .map(|i| {
            traffic
                .message(i)
                .into_event(start + (i / 250) as i64, &decoders)
        })
        .collect()
}

fn filled_store(events: &[NewEvent]) -> Store {
    let mut store = Store::new(4 << 30);
    for e in events {
        store.append(e).expect("fits");
    }
    store
}

fn fold_all(store: &Store) -> Projections {
    let mut p = Projections::default();
    for e in store.iter() {
        p.apply(&e);
    }
    p
}

fn bench_fold(c: &mut Criterion) {
    let evs = events(100_000);
    let store = filled_store(&evs);
    let mut g = c.benchmark_group("fold");
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.bench_function("baseline_iterate_store", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in store.iter() {
                n += e.payload().len() + e.subject_id() as usize;
            }
            black_box(n)
        })
    });
    g.bench_function("all_builtin_projections", |b| {
        b.iter(|| black_box(fold_all(&store)))
    });
    g.finish();
}

fn bench_decode_and_append(c: &mut Criterion) {
    let evs = events(50_000);
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.bench_function("baseline_copy_payloads", |b| {
        b.iter(|| {
            let mut v = Vec::with_capacity(evs.len());
            for e in &evs {
                v.push(e.payload.to_vec());
            }
            black_box(v)
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            for e in &evs {
                black_box(decode(&e.subject, &e.payload));
            }
        })
    });
    g.bench_function("store_append", |b| b.iter(|| black_box(filled_store(&evs))));
    g.finish();
}

/// Replay of 1M stored events into every built-in projection; the target
/// is at most 2 s. Also prints the store's bytes per event against the
/// payload bytes (target: at most 30% over).
fn bench_replay(c: &mut Criterion) {
    let evs = events(1_000_000);
    let store = filled_store(&evs);
    drop(evs);
    let st = store.stats();
    println!(
        "store: {} events, {} payload bytes, {} bytes held: {:.1} bytes/event, overhead {:.1}% over payload",
        st.events,
        st.payload_bytes,
        st.bytes,
        st.bytes as f64 / st.events as f64,
        (st.bytes as f64 / st.payload_bytes as f64 - 1.0) * 100.0
    );
    let t = Instant::now();
    let p = fold_all(&store);
    println!(
        "replay 1M once: {:?} ({} events folded)",
        t.elapsed(),
        p.folded()
    );
    let mut g = c.benchmark_group("replay");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(st.events));
    g.bench_with_input(BenchmarkId::new("builtin", "1M"), &store, |b, s| {
        b.iter(|| black_box(fold_all(s)))
    });
    g.finish();

    // Time travel on the full store: checkpoints as the hub takes them
    // (every 50k events), a moment in the middle of the log.
    let mut live = Projections::default();
    let mut cps = Checkpoints::new(50_000, 60_000, 64);
    for e in store.iter() {
        live.apply(&e);
        cps.after_fold(&live, st.events);
    }
    let mut g = c.benchmark_group("time_travel");
    g.sample_size(20);
    for target in [500_000u64, 999_999] {
        g.bench_with_input(
            BenchmarkId::new("state_at_event", target),
            &target,
            |b, t| {
                b.iter(|| {
                    let base = cps.base_for(*t).expect("base");
                    black_box(fold_from(&store, &base, *t).expect("reachable"))
                })
            },
        );
    }
    g.finish();

    // Queries a UI makes on a full (1M event) log, newest first.
    let mut g = c.benchmark_group("query_1M");
    g.sample_size(20);
    let cases: [(&str, Query); 4] = [
        (
            "newest_100",
            Query {
                limit: 100,
                ..Query::default()
            },
        ),
        (
            "level_error_100",
            Query {
                limit: 100,
                levels: vec![Level::Error],
                ..Query::default()
            },
        ),
        (
            "subject_pattern_100",
            Query {
                limit: 100,
                subject: Some("metrics.*".into()),
                ..Query::default()
            },
        ),
        (
            "text_no_match_full_scan",
            Query {
                limit: 100,
                text: Some(eventscope::store::query::TextFilter::new("no such text")),
                ..Query::default()
            },
        ),
    ];
    for (name, q) in &cases {
        g.bench_function(*name, |b| b.iter(|| black_box(store.query(q).events.len())));
    }
    g.finish();
}

/// What the hub does with every event on live ingest: append to the log,
/// fold into every built-in projection, count, watch schemas, take
/// checkpoints; in the batches ingest hands over. Per profile, against the
/// same events appended to the log only.
fn bench_hub(c: &mut Criterion) {
    let mut g = c.benchmark_group("hub");
    for profile in [Profile::Realistic, Profile::Simple] {
        let evs = events_of(profile, 100_000);
        g.throughput(Throughput::Elements(evs.len() as u64));
        let name = format!("{profile:?}").to_lowercase();
        g.bench_function(BenchmarkId::new("append_only", &name), |b| {
            b.iter(|| black_box(filled_store(&evs)))
        });
        for partitions in [1, 2, 4] {
            let id = match partitions {
                1 => BenchmarkId::new("ingest", &name),
                n => BenchmarkId::new(format!("ingest_{n}_partitions"), &name),
            };
            g.bench_function(id, |b| {
                b.iter_batched(
                    || (Hub::for_bench_with(partitions), evs.clone()),
                    |(mut hub, evs)| {
                        let mut evs = evs.into_iter();
                        loop {
                            let mut batch: Vec<NewEvent> = evs.by_ref().take(4_096).collect();
                            if batch.is_empty() {
                                break;
                            }
                            hub.ingest(&mut batch);
                        }
                        black_box(hub)
                    },
                    criterion::BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_fold,
    bench_decode_and_append,
    bench_hub,
    bench_replay
);
criterion_main!(benches);
