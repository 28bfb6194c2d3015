//! Property tests: for random event sets, every built-in projection equals
//! a naive reference fold (counts exact, quantiles within 1%).

use super::*;
use crate::event::NewEvent;
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Gen {
    gap_ms: i64,
    subject: usize,
    level: Option<usize>,
    msg: usize,
    value: Option<f64>,
}

const SUBJECTS: [&str; 4] = [
    "logs.orders",
    "logs.payments",
    "metrics.api",
    "events.users",
];
const MESSAGES: [&str; 3] = ["timeout", "declined", "disk full"];

fn gen_event() -> impl Strategy<Value = Gen> {
    (
        prop_oneof![0i64..50, 0i64..3_000, 0i64..200_000],
        0..SUBJECTS.len(),
        proptest::option::of(0..6usize),
        0..MESSAGES.len(),
        proptest::option::of(0.01f64..100_000.0),
    )
        .prop_map(|(gap_ms, subject, level, msg, value)| Gen {
            gap_ms,
            subject,
            level,
            msg,
            value,
        })
}

fn payload(g: &Gen) -> String {
    match (g.value, g.level) {
        (Some(v), _) => format!(
            r#"{{"name":"lat","value":{v},"tags":{{"s":"{}"}}}}"#,
            g.subject % 2
        ),
        (None, Some(l)) => format!(
            r#"{{"level":"{}","msg":"{}"}}"#,
            Level::ALL[l].as_str(),
            MESSAGES[g.msg]
        ),
        (None, None) => "plain text".to_string(),
    }
}

/// Builds a store holding the events, with received times from the gaps.
fn build(events: &[Gen], start_ms: i64) -> Store {
    let mut store = Store::new(256 << 20);
    let mut t = start_ms;
    for g in events {
        t += g.gap_ms;
        let subject = SUBJECTS[g.subject];
        let p = payload(g);
        store.append(&NewEvent::core(subject, p, t)).expect("fits");
    }
    store
}

fn width(w: Window) -> i64 {
    match w {
        Window::S1 | Window::S10 | Window::M1 => 1_000,
        Window::M15 => 10_000,
        Window::H1 => 60_000,
    }
}

fn in_window(t: i64, now: i64, w: Window, width: i64) -> bool {
    let last = now.div_euclid(width);
    let first = last - w.ms() / width + 1;
    (first..=last).contains(&t.div_euclid(width))
}

fn quantile_ref(sorted: &[f64], q: f64) -> f64 {
    sorted[(q * (sorted.len() as f64 - 1.0)) as usize]
}

fn check_all(store: &Store, p: &Projections, now: i64) -> Result<(), TestCaseError> {
    for w in Window::ALL {
        let evs: Vec<_> = store
            .iter()
            .filter(|e| in_window(e.received_ms(), now, w, width(w)))
            .collect();
        let Some(ProjectionBody::Rates {
            total,
            subjects,
            levels,
            ..
        }) = p.snapshot(store, "rates", w, now)
        else {
            return Err(TestCaseError::fail("rates missing"));
        };
        prop_assert_eq!(total.count, evs.len() as u64, "window {}", w.as_str());
        let mut by_subject: BTreeMap<String, u64> = BTreeMap::new();
        for e in &evs {
            *by_subject.entry(e.subject().to_string()).or_default() += 1;
        }
        let got: BTreeMap<String, u64> = subjects
            .iter()
            .map(|k| (k.key.clone(), k.rate.count))
            .collect();
        prop_assert_eq!(&got, &by_subject);
        let mut by_level: BTreeMap<String, u64> = BTreeMap::new();
        for e in &evs {
            if let Some(l) = e.level() {
                *by_level.entry(l.as_str().to_string()).or_default() += 1;
            }
        }
        let got: BTreeMap<String, u64> = levels
            .iter()
            .map(|k| (k.key.clone(), k.rate.count))
            .collect();
        prop_assert_eq!(&got, &by_level);

        // Top errors: error and fatal messages, largest first, ties by name.
        let mut errs: BTreeMap<String, u64> = BTreeMap::new();
        for e in &evs {
            if e.level() >= Some(Level::Error)
                && let Some(m) = e.alert_message()
            {
                *errs.entry(m.to_string()).or_default() += 1;
            }
        }
        let mut want: Vec<(String, u64)> = errs.into_iter().collect();
        want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        want.truncate(TOP_K);
        let Some(ProjectionBody::TopK { items }) = p.snapshot(store, "top_errors", w, now) else {
            return Err(TestCaseError::fail("top_errors missing"));
        };
        let got: Vec<(String, u64)> = items.into_iter().map(|i| (i.key, i.count)).collect();
        prop_assert_eq!(got, want);

        // Metrics, with the metric rings' own widths.
        let mwidth = match w {
            Window::S1 | Window::S10 | Window::M1 => 1_000,
            Window::M15 | Window::H1 => 60_000,
        };
        let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for e in store
            .iter()
            .filter(|e| in_window(e.received_ms(), now, w, mwidth))
        {
            for s in e.samples() {
                samples
                    .entry(s.series.to_string())
                    .or_default()
                    .push(s.value);
            }
        }
        let Some(ProjectionBody::Metrics { series }) = p.snapshot(store, "metrics", w, now) else {
            return Err(TestCaseError::fail("metrics missing"));
        };
        prop_assert_eq!(series.len(), samples.len());
        for stats in series {
            let mut vals = samples.remove(&stats.series).unwrap_or_default();
            vals.sort_by(f64::total_cmp);
            prop_assert_eq!(stats.count, vals.len() as u64);
            prop_assert_eq!(stats.min, vals[0]);
            prop_assert_eq!(stats.max, vals[vals.len() - 1]);
            let sum: f64 = vals.iter().sum();
            prop_assert!(
                (stats.sum - sum).abs() <= sum.abs() * 1e-9,
                "{} vs {}",
                stats.sum,
                sum
            );
            for (q, got) in [(0.5, stats.p50), (0.9, stats.p90), (0.99, stats.p99)] {
                let want = quantile_ref(&vals, q);
                prop_assert!(
                    (got - want).abs() <= want.abs() * 0.01 + 1e-12,
                    "p{} of {}: {} vs {}",
                    q * 100.0,
                    stats.series,
                    got,
                    want
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_projection_equals_a_naive_fold(
        events in proptest::collection::vec(gen_event(), 1..400),
        lag_ms in 0i64..120_000,
    ) {
        let store = build(&events, 1_795_672_800_000);
        let mut p = Projections::default();
        for e in store.iter() {
            p.apply(&e);
        }
        prop_assert_eq!(p.folded(), events.len() as u64);
        // As of the last event, and a while after it.
        check_all(&store, &p, p.last_ms())?;
        check_all(&store, &p, p.last_ms() + lag_ms)?;
    }
}

#[test]
fn rate_history_has_an_hour_of_seconds() {
    let events: Vec<Gen> = (0..100)
        .map(|i| Gen {
            gap_ms: 500,
            subject: 0,
            level: Some(if i % 10 == 0 { 4 } else { 2 }),
            msg: 0,
            value: None,
        })
        .collect();
    let store = build(&events, 1_000_000);
    let mut p = Projections::default();
    for e in store.iter() {
        p.apply(&e);
    }
    let Some(ProjectionBody::RateHistory {
        total,
        levels,
        step_ms,
        start_ms,
    }) = p.snapshot(&store, "rate_history", Window::H1, p.last_ms())
    else {
        panic!("history missing");
    };
    assert_eq!((total.len(), step_ms), (3_600, 1_000));
    assert_eq!(total.iter().sum::<u64>(), 100);
    assert_eq!(levels["error"].iter().sum::<u64>(), 10);
    assert_eq!(start_ms + 3_599_000, p.last_ms().div_euclid(1000) * 1000);
    assert_eq!(total[total.len() - 2], 2, "two events a second");
    assert_eq!(total[total.len() - 1], 1, "the last second has begun");
}

fn fold_sample(store: &mut Store, p: &mut Projections, series: &str, v: f64, t: i64) {
    let payload = format!(r#"{{"name":"{series}","value":{v}}}"#);
    let id = store
        .append(&NewEvent::core("metrics.x", payload, t))
        .expect("kept");
    p.apply(&store.get(id).expect("held"));
}

#[test]
fn at_the_byte_budget_no_new_series_or_buckets_are_made_and_what_is_left_out_is_counted() {
    let mut store = Store::new(64 << 20);
    let mut p = Projections::default();
    let t0 = 1_795_672_800_000i64;
    fold_sample(&mut store, &mut p, "a", 1.0, t0);
    let before = p.weight(None).full();
    p.set_full(true);
    // A new series: left out.
    fold_sample(&mut store, &mut p, "b", 2.0, t0 + 10);
    // The same second of a series held: its buckets exist, taken.
    fold_sample(&mut store, &mut p, "a", 1.0, t0 + 20);
    assert_eq!(p.left_out(), (0, 1, 0));
    // Two seconds on: a new one-second bucket would be needed (left out
    // of it, counted); the minute's bucket exists and takes it.
    fold_sample(&mut store, &mut p, "a", 1.0, t0 + 2_000);
    assert_eq!(p.left_out(), (0, 2, 0));
    assert_eq!(p.weight(None).full(), before, "nothing new was allocated");
    fn counts(p: &Projections, store: &Store, w: Window, now: i64) -> Vec<(String, u64)> {
        let Some(ProjectionBody::Metrics { series }) = p.snapshot(store, "metrics", w, now) else {
            panic!("metrics");
        };
        series.into_iter().map(|s| (s.series, s.count)).collect()
    }
    let now = t0 + 2_000;
    assert_eq!(counts(&p, &store, Window::M1, now), [("a".to_string(), 2)]);
    assert_eq!(counts(&p, &store, Window::M15, now), [("a".to_string(), 3)]);
    // Below the budget again: new series and buckets are made.
    p.set_full(false);
    fold_sample(&mut store, &mut p, "b", 5.0, t0 + 3_000);
    assert_eq!(p.left_out(), (0, 2, 0));
    assert!(p.weight(None).full() > before);
    assert_eq!(counts(&p, &store, Window::M1, t0 + 3_000).len(), 2);
}

#[test]
fn at_the_byte_budget_a_bucket_s_sketch_takes_no_wider_range() {
    let mut store = Store::new(64 << 20);
    let mut p = Projections::default();
    let t0 = 1_795_672_800_000i64;
    fold_sample(&mut store, &mut p, "a", 10.0, t0);
    fold_sample(&mut store, &mut p, "a", 20.0, t0 + 1);
    let before = p.weight(None).full();
    p.set_full(true);
    // Inside the range held: taken as is.
    fold_sample(&mut store, &mut p, "a", 15.0, t0 + 2);
    assert_eq!(p.left_out(), (0, 0, 0));
    // Twelve orders of magnitude either side (without the budget, each
    // would widen the sketch towards its 2,048 bins): at the range's ends,
    // counted; nothing new allocated.
    for (i, v) in [1e-6, 1e12, 3e-9, 7e11].into_iter().enumerate() {
        fold_sample(&mut store, &mut p, "a", v, t0 + 3 + i as i64);
    }
    assert_eq!(
        p.left_out(),
        (0, 4, 0),
        "each counted once, whatever the rings"
    );
    assert_eq!(
        p.weight(None).full(),
        before,
        "the sketches kept their bins"
    );
    let Some(ProjectionBody::Metrics { series }) =
        p.snapshot(&store, "metrics", Window::M1, t0 + 10)
    else {
        panic!("metrics");
    };
    let a = &series[0];
    assert_eq!(a.count, 7);
    assert_eq!((a.min, a.max), (3e-9, 1e12), "min and max exact");
    assert!(a.p99 <= 20.0 * 1.01, "the sketch's range held: {}", a.p99);
    // Below the budget again: the range widens.
    p.set_full(false);
    fold_sample(&mut store, &mut p, "a", 1e12, t0 + 9);
    assert!(p.weight(None).full() > before);
}

#[test]
fn metric_series_past_the_cap_are_counted_not_kept() {
    let mut store = Store::new(64 << 20);
    let mut p = Projections::default();
    let t0 = 1_795_672_800_000i64;
    for i in 0..MAX_SERIES + 3 {
        fold_sample(&mut store, &mut p, &format!("s{i}"), 1.0, t0 + i as i64);
    }
    assert_eq!(p.metrics.len(), MAX_SERIES);
    assert_eq!(p.left_out(), (3, 0, 0), "three samples past the cap");
    // A series held still takes samples.
    fold_sample(&mut store, &mut p, "s0", 2.0, t0 + 5_000);
    assert_eq!(p.left_out(), (3, 0, 0));
}

#[test]
fn a_full_counter_table_counts_new_keys_as_overflow_until_old_ones_age_out() {
    let mut store = Store::new(256 << 20);
    let mut p = Projections::default();
    let t0 = 1_795_672_800_000i64;
    let mut fold = |p: &mut Projections, subject: &str, t: i64| {
        let id = store
            .append(&NewEvent::core(subject, "{}", t))
            .expect("kept");
        p.apply(&store.get(id).expect("held"));
    };
    for i in 0..MAX_KEYS {
        fold(&mut p, &format!("burst.s{i}"), t0);
    }
    assert_eq!(p.left_out().2, 0);
    assert_eq!(p.subjects.len(), MAX_KEYS);
    // One more: counted under "(overflow)", not a key of its own.
    fold(&mut p, "late.one", t0 + 1_000);
    assert_eq!(p.left_out().2, 1);
    assert_eq!(p.subjects.len(), MAX_KEYS + 1, "the overflow key");
    assert!(p.subjects.contains_key(&OVERFLOW));
    // An hour and two minutes on, the burst is in no window: let go, and
    // the table has room again.
    fold(&mut p, "later.one", t0 + 3_720_000);
    assert_eq!(p.left_out().2, 1);
    assert!(p.subjects.len() <= 3, "{}", p.subjects.len());
    // At the byte budget, a new key is not made either.
    p.set_full(true);
    fold(&mut p, "while.full", t0 + 3_721_000);
    assert_eq!(p.left_out().2, 2);
    fold(&mut p, "later.one", t0 + 3_722_000);
    assert_eq!(p.left_out().2, 2, "a key held still counts");
}
