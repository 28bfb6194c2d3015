//! Property test: N partitions, merged, answer exactly as one fold of the
//! whole stream, for every projection (built-in and user-defined), every
//! window and several moments; and the merged state folds on (as time
//! travel folds on from a checkpoint) exactly as the single one does.

use super::*;
use crate::event::NewEvent;
use crate::ingest::decode::Decoders;
use crate::projection::builtin::{Projections, catalogue};
use crate::projection::custom::ProjectionDef;
use crate::store::Store;
use crate::traffic::{Profile, Traffic};
use app::api::Window;
use proptest::prelude::*;

const WINDOWS: [Window; 5] = [Window::S1, Window::S10, Window::M1, Window::M15, Window::H1];

/// User-defined projections over the realistic traffic's fields, one of
/// each aggregate. Sums are over integer fields: floating-point addition
/// is not associative, so sums of fractions merged from partitions may
/// differ from one fold in their last bits (docs/DESIGN.md).
fn defs() -> Vec<ProjectionDef> {
    let def = |v: serde_json::Value| serde_json::from_value::<ProjectionDef>(v).expect("valid");
    vec![
        def(serde_json::json!({"name": "by_service", "group_by": "service", "aggregate": "count"})),
        def(serde_json::json!({"name": "rate", "aggregate": "rate"})),
        def(
            serde_json::json!({"name": "took", "group_by": "service", "aggregate": "sum", "field": "duration_ms"}),
        ),
        def(serde_json::json!({"name": "slowest", "aggregate": "max", "field": "duration_ms"})),
        def(
            serde_json::json!({"name": "fastest", "group_by": "route", "aggregate": "min", "field": "duration_ms"}),
        ),
        def(
            serde_json::json!({"name": "mean", "group_by": "service", "aggregate": "mean", "field": "status"}),
        ),
        def(
            serde_json::json!({"name": "lat", "group_by": "service", "aggregate": "quantiles", "field": "duration_ms"}),
        ),
        def(
            serde_json::json!({"name": "users", "group_by": "service", "aggregate": "distinct", "field": "user_id"}),
        ),
        def(
            serde_json::json!({"name": "items", "subject": "orders.>", "aggregate": "total", "field": "items"}),
        ),
        def(
            serde_json::json!({"name": "errors", "where": ["level == error"], "group_by": "msg", "aggregate": "count"}),
        ),
    ]
}

/// `len` events of the realistic profile from message `from` on, `gap`
/// ms apart at most, with a few requests whose answers carry no
/// correlation id (the router's pending table must bring them together).
fn stream(seed: u64, from: u64, len: usize, gap: i64) -> Vec<NewEvent> {
    let traffic = Traffic::new(Profile::Realistic, 3_000, seed);
    let decoders = Decoders::new(Default::default());
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut t = 1_795_672_800_000;
    let mut out = Vec::with_capacity(len);
    for i in 0..len as u64 {
        t += rng.i64(0..=gap);
        out.push(traffic.message(from + i).into_event(t, &decoders));
        if rng.u8(0..50) == 0 {
            let inbox = format!("_INBOX.bare.{seed}.{i}");
            let mut ask = NewEvent::core(
                "pricing.quote",
                format!(r#"{{"service":"checkout","trace_id":"bare-{seed}-{i}"}}"#),
                t,
            );
            ask.reply = Some(inbox.clone());
            out.push(ask);
            out.push(NewEvent::core(
                &inbox,
                r#"{"service":"pricing","ok":true}"#.to_string(),
                t + rng.i64(0..=gap),
            ));
        }
    }
    out
}

fn json<T: serde::Serialize>(t: &T) -> String {
    serde_json::to_string(t).expect("serializes")
}

/// Every answer the read side gives from a state: each projection over
/// each window at several moments, and each flow's detail.
fn answers(store: &Store, p: &Projections, now: i64) -> Vec<String> {
    let mut out = vec![json(&(p.folded(), p.last_id(), p.last_ms()))];
    for info in catalogue(&defs()) {
        for w in WINDOWS {
            for at in [now, now + 1_500, now + 45_000, now + 20 * 60_000] {
                let body = p.snapshot(store, &info.name, w, at);
                assert!(body.is_some(), "{} has a state", info.name);
                out.push(format!("{} {w:?} {at}: {}", info.name, json(&body)));
            }
        }
    }
    for e in store.iter().step_by(7) {
        if let Some(c) = e.correlation() {
            out.push(json(&p.flows().detail(store, c, now)));
        }
    }
    out
}

fn check(store: &Store, one: &Projections, merged: &Projections, now: i64) {
    let (a, b) = (answers(store, one, now), answers(store, merged, now));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "one fold, then merged partitions");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn n_partitions_merged_answer_as_one(
        seed in any::<u64>(),
        from in 0u64..10_000,
        len in 1usize..1_200,
        more in 0usize..300,
        n in 2usize..9,
        gap in prop_oneof![0i64..=2, 0i64..=300, 0i64..=20_000],
    ) {
        let events = stream(seed, from, len + more, gap);
        let mut store = Store::new(256 << 20);
        let base = Projections::with_custom(&defs());
        let (mut one, mut parts) = (base.clone(), vec![base.clone(); n]);
        let mut router = Router::new(n);
        let mut now = 0;
        for ev in &events[..len] {
            let id = store.append(ev).expect("fits");
            let e = store.get(id).expect("held");
            now = e.received_ms();
            if !e.is_duplicate() {
                one.apply(&e);
                parts[router.route(&e)].apply(&e);
            }
        }
        let mut merged = Projections::merged(&parts);
        check(&store, &one, &merged, now);
        // Time travel folds on from a checkpoint, a merged state: it must
        // go on as the single fold does.
        for ev in &events[len..] {
            let id = store.append(ev).expect("fits");
            let e = store.get(id).expect("held");
            now = e.received_ms();
            if !e.is_duplicate() {
                one.apply(&e);
                merged.apply(&e);
            }
        }
        check(&store, &one, &merged, now);
    }
}

#[test]
fn a_request_meets_its_answer_when_only_the_request_is_correlated() {
    let mut store = Store::new(1 << 20);
    let mut router = Router::new(8);
    let mut parts = Vec::new();
    for i in 0..64 {
        let inbox = format!("_INBOX.x.{i}");
        let mut ask = NewEvent::core(
            "pricing.quote",
            format!(r#"{{"trace_id":"t-{i}"}}"#),
            1_000 + i,
        );
        ask.reply = Some(inbox.clone());
        let answer = NewEvent::core(&inbox, "{}".to_string(), 1_001 + i);
        let a = store.append(&ask).expect("fits");
        let b = store.append(&answer).expect("fits");
        let (a, b) = (store.get(a).expect("held"), store.get(b).expect("held"));
        assert!(a.correlation().is_some() && b.correlation().is_none());
        let (pa, pb) = (router.route(&a), router.route(&b));
        assert_eq!(pa, pb, "request {i} and its answer");
        parts.push(pa);
    }
    parts.sort_unstable();
    parts.dedup();
    assert!(
        parts.len() > 4,
        "requests spread over the partitions: {parts:?}"
    );
}
