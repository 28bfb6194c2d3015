//! The projections' byte budget (`--projection-bytes`) rests on an estimate
//! of what a state weighs ([`Projections::weight`]). This checks the
//! estimate against what the allocator really hands out, with a counting
//! global allocator, on a state shaped like hostile traffic: thousands of
//! subjects and error texts, hundreds of metric series with wide value
//! ranges, thousands of flows.

// A counting allocator is the one way to see what the allocator holds.
#![allow(unsafe_code)]

use eventscope::event::NewEvent;
use eventscope::projection::builtin::Projections;
use eventscope::store::Store;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn allocated() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// A log of `n` events like hostile traffic, 10 ms apart.
fn hostile_log(n: usize) -> Store {
    let mut store = Store::new(1 << 30);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..n {
        let t = 1_795_672_800_000 + (i as i64) * 10;
        let r = rand();
        let ev = match i % 4 {
            0 => NewEvent::core(
                &format!("logs.svc{}.part{}", r % 40, r % 3_000),
                format!(
                    r#"{{"level":"error","msg":"failure {} at step {}","correlation_id":"flow-{}"}}"#,
                    r % 2_000,
                    i,
                    r % 3_000
                ),
                t,
            ),
            1 => NewEvent::core(
                &format!("metrics.host{}", r % 50),
                format!(
                    r#"{{"name":"m{}","value":{}}}"#,
                    r % 300,
                    // Spread over nine decades: wide sketches.
                    (r % 1_000_000_000) as f64 / 7.0 + 0.001
                ),
                t,
            ),
            2 => NewEvent::core(
                &format!("orders.step{}", r % 8),
                format!(
                    r#"{{"correlation_id":"flow-{}","amount":{}}}"#,
                    r % 3_000,
                    i
                ),
                t,
            ),
            _ => NewEvent::core(
                &format!("logs.svc{}.info", r % 40),
                format!(r#"{{"level":"info","msg":"ok {}"}}"#, i),
                t,
            ),
        };
        store.append(&ev);
    }
    store
}

fn fold(store: &Store) -> Projections {
    let mut p = Projections::default();
    for e in store.range(1, u64::MAX) {
        p.apply(&e);
    }
    p
}

fn within(estimate: usize, real: isize, what: &str) {
    let real = real.max(1) as f64;
    let ratio = estimate as f64 / real;
    eprintln!("{what}: estimated {estimate} bytes, allocated {real} (ratio {ratio:.3})");
    assert!(
        (0.98..=1.02).contains(&ratio),
        "{what}: estimated {estimate} bytes, allocated {real} (ratio {ratio:.2})"
    );
}

#[test]
fn a_state_weighs_what_the_allocator_holds_for_it() {
    let store = hostile_log(120_000);
    let before = allocated();
    let live = fold(&store);
    let grown = allocated() - before;
    let w = live.weight(None);
    assert_eq!(w.shared, 0, "weighed alone, nothing is shared");
    within(w.full(), grown, "a state folded from nothing");
    assert!(grown > 4 << 20, "a state worth weighing: {grown} bytes");

    // A copy shares the sketches and flow steps: what it adds is its own
    // part, weighed against the state it was copied from.
    let before = allocated();
    let copy = live.clone();
    let grown = allocated() - before;
    let w = copy.weight(Some(&live));
    within(w.own, grown, "a copy (a checkpoint)");
    assert!(
        w.shared > 0,
        "sketches and steps shared with the live state"
    );
    // The same state either way (a copy's deques and vectors are only as
    // large as they need to be).
    let (a, b) = (w.full() as f64, live.weight(None).full() as f64);
    assert!((a / b - 1.0).abs() < 0.01, "{a} vs {b}");
}
