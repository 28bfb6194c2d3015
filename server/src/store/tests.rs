use super::*;
use crate::event::NewEvent;
use proptest::prelude::*;

fn ev(subject: &str, payload: &str, received_ms: i64) -> NewEvent {
    NewEvent::core(subject, payload.to_string(), received_ms)
}

#[test]
fn correlation_ids_are_kept_after_the_samples() {
    // The entry stays at 56 bytes with the correlation length in it.
    assert_eq!(std::mem::size_of::<Entry>(), 56);
    let mut s = Store::new(64 << 20);
    let mut with = ev("metrics.a", r#"{"name":"m","value":2,"tags":{"k":"v"}}"#, 1);
    with.decoded.correlation_id = Some("order-7".into());
    let mut long = ev("a", "{}", 2);
    long.decoded.correlation_id = Some("é".repeat(200).into());
    let ids = [
        s.append(&with).expect("stored"),
        s.append(&ev("a", "{}", 3)).expect("stored"),
        s.append(&long).expect("stored"),
    ];
    let e = s.get(ids[0]).expect("stored");
    assert_eq!(e.correlation(), Some("order-7"));
    assert_eq!(e.samples().map(|x| x.value).collect::<Vec<_>>(), [2.0]);
    assert_eq!(s.get(ids[1]).expect("stored").correlation(), None);
    // Cut to at most 255 bytes, on a character boundary.
    let cut = s
        .get(ids[2])
        .expect("stored")
        .correlation()
        .expect("stored")
        .to_string();
    assert_eq!(cut, "é".repeat(127));
    assert_eq!(s.stats().correlation_ids_cut, 1, "the cut is counted");
}

#[test]
fn reply_subjects_are_kept_after_the_correlation_id() {
    let mut s = Store::new(64 << 20);
    let mut req = ev("metrics.a", r#"{"name":"m","value":2}"#, 1);
    req.decoded.correlation_id = Some("c-1".into());
    req.reply = Some("_INBOX.abc.1".into());
    let mut bare = ev("fraud.check", "{}", 2);
    bare.reply = Some("_INBOX.abc.2".into());
    let mut too_long = ev("a", "{}", 3);
    too_long.reply = Some("x".repeat(256));
    let ids = [&req, &bare, &too_long, &ev("a", "{}", 4)].map(|e| s.append(e).expect("stored"));
    let get = |i: usize| s.get(ids[i]).expect("stored");
    assert_eq!(get(0).reply(), Some("_INBOX.abc.1"));
    assert_eq!(get(0).correlation(), Some("c-1"));
    assert_eq!(get(0).samples().map(|x| x.value).collect::<Vec<_>>(), [2.0]);
    assert_eq!(get(1).reply(), Some("_INBOX.abc.2"));
    // Left out rather than cut: a cut subject would name another inbox.
    assert_eq!(get(2).reply(), None);
    assert_eq!(get(3).reply(), None);
    assert_eq!(s.stats().reply_subjects_dropped, 1, "counted");
}

#[test]
fn one_off_subjects_keep_their_name_but_share_one_dictionary_entry() {
    use super::query::Query;
    let mut s = Store::new(64 << 20);
    let subjects_before = s.subjects().iter().count();
    // A request/reply system: one inbox per request, one ack per message.
    for n in 0..20_000 {
        let mut req = ev("fraud.check", "{}", n);
        req.reply = Some(format!("_INBOX.payments.{n}"));
        s.append(&req).expect("stored");
        s.append(&ev(&format!("_INBOX.payments.{n}"), r#"{"ok":true}"#, n))
            .expect("stored");
        s.append(&ev(&format!("$JS.ACK.ACCOUNTS.c.1.{n}.{n}.0.0"), "", n))
            .expect("stored");
    }
    // Three names, not 40,001: the inbox and ack groups and the request.
    assert_eq!(s.subjects().iter().count() - subjects_before, 3);
    assert_eq!(s.stats().interner_overflow, 0);
    let inbox = s.subjects().get("_INBOX.>").expect("the group is named");
    let answer = s.get(2 + 3 * 1234).expect("stored");
    assert_eq!(answer.subject(), "_INBOX.payments.1234");
    assert!(answer.subject_is_own());
    assert_eq!(answer.subject_id(), inbox);
    let request = s.get(1 + 3 * 1234).expect("stored");
    assert_eq!(request.reply(), Some("_INBOX.payments.1234"));
    assert!(!request.subject_is_own());
    // Filters match the event's own subject, by name or by pattern.
    let count = |pattern: &str| {
        s.query(&Query {
            subject: Some(pattern.into()),
            limit: 100_000,
            ..Query::default()
        })
        .events
        .len()
    };
    assert_eq!(count("_INBOX.payments.1234"), 1);
    assert_eq!(count("_INBOX.payments.*"), 20_000);
    assert_eq!(count("_INBOX.>"), 20_000);
    assert_eq!(count("$JS.ACK.ACCOUNTS.>"), 20_000);
    assert_eq!(count("fraud.check"), 20_000);
    assert_eq!(count(">"), 60_000);
}

#[test]
fn subjects_past_a_full_dictionary_are_kept_in_their_events() {
    use super::query::Query;
    // A small store has a small dictionary (64 subjects).
    let mut s = Store::new(64 << 10);
    let mut req = ev("late.99", "{}", 1);
    req.reply = Some("_INBOX.r.1".into());
    let long = format!("deep.{}", "x".repeat(300));
    let mut ids = Vec::new();
    for n in 0..100 {
        ids.push(
            s.append(&ev(&format!("late.{n}"), "{}", 1))
                .expect("stored"),
        );
    }
    let asked = s.append(&req).expect("stored");
    let deep = s.append(&ev(&long, "{}", 1)).expect("stored");
    assert!(s.stats().interner_overflow > 0, "the dictionary filled up");
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(s.get(*id).expect("stored").subject(), format!("late.{n}"));
    }
    let e = s.get(asked).expect("stored");
    assert!(e.subject_is_own());
    assert_eq!((e.subject(), e.reply()), ("late.99", Some("_INBOX.r.1")));
    assert_eq!(s.get(deep).expect("stored").subject(), long);
    let found = s.query(&Query {
        subject: Some("late.99".into()),
        limit: 10,
        ..Query::default()
    });
    assert_eq!(
        found.events.iter().map(|e| e.id).collect::<Vec<_>>(),
        [asked, ids[99]]
    );
}

proptest! {
    #[test]
    fn bucket_counts_equal_a_scan_of_the_log(
        gaps in proptest::collection::vec(0i64..700, 1..400),
        cap_kib in 64usize..512,
        start_off in -2_000i64..2_000,
        step in 1i64..3_000,
        n in 0usize..40,
    ) {
        // Small caps evict, so the log starts past id 1 too.
        let mut s = Store::new(cap_kib << 10);
        let mut t = 1_000_000;
        for (i, g) in gaps.iter().enumerate() {
            t += g;
            s.append(&ev("a.b", &"x".repeat(200 + i % 300), t)).expect("stored");
        }
        let start = s.span_ms().expect("held").0 + start_off;
        let mut want = vec![0u64; n];
        for e in s.iter() {
            let off = e.received_ms() - start;
            if off >= 0 && ((off / step) as usize) < n {
                want[(off / step) as usize] += 1;
            }
        }
        prop_assert_eq!(s.counts_per_bucket(start, step, n), want);
    }
}

#[test]
fn append_and_read_back_everything() {
    let mut s = Store::new(64 << 20);
    let mut e = ev(
        "metrics.api",
        r#"[{"name":"lat","value":1.5,"tags":{"r":"/a"}},{"name":"lat","value":2.5}]"#,
        1_000,
    );
    e.headers = vec![
        ("Nats-Msg-Id".into(), "m1".into()),
        ("traceparent".into(), "00-abc-01".into()),
    ];
    e.source = Source::JetStream {
        stream: "METRICS".into(),
        seq: 42,
    };
    let id = s.append(&e).expect("stored");
    let log = ev(
        "logs.orders",
        r#"{"level":"error","msg":"boom","ts":5}"#,
        900,
    );
    let id2 = s.append(&log).expect("stored");
    assert_eq!((id, id2), (1, 2));

    let r = s.get(id).expect("held");
    assert_eq!(r.subject(), "metrics.api");
    assert_eq!(r.payload(), e.payload.as_ref());
    assert_eq!(r.headers(), e.headers);
    assert_eq!(r.kind(), Kind::Metric);
    assert_eq!(r.stream_seq(), Some(("METRICS", 42)));
    let samples: Vec<_> = r
        .samples()
        .map(|x| (x.series.to_string(), x.value))
        .collect();
    assert_eq!(
        samples,
        vec![("lat{r=/a}".to_string(), 1.5), ("lat".to_string(), 2.5)]
    );

    let r = s.get(id2).expect("held");
    assert_eq!(r.level(), Some(Level::Error));
    assert_eq!(r.service(), Some("orders"));
    assert_eq!(r.alert_message(), Some("boom"));
    assert_eq!(r.time_ms(), 5_000);
    // Received time is made monotonic: 900 came after 1000.
    assert_eq!(r.received_ms(), 1_000);
    assert!(s.get(3).is_none());
    assert!(s.get(0).is_none());
}

#[test]
fn duplicates_by_msg_id_are_flagged_and_counted() {
    let mut s = Store::new(64 << 20);
    let mut e = ev("a", "{}", 1);
    e.headers = vec![("nats-msg-id".into(), "same".into())];
    let a = s.append(&e).expect("stored");
    let b = s.append(&e).expect("stored");
    assert!(!s.get(a).expect("held").is_duplicate());
    assert!(s.get(b).expect("held").is_duplicate());
    assert_eq!(s.stats().duplicates, 1);
}

#[test]
fn range_iter_and_time_lookup() {
    let mut s = Store::new(64 << 20);
    for i in 0..10_000i64 {
        s.append(&ev("t", &format!("{{\"i\":{i}}}"), i * 10))
            .expect("stored");
    }
    let ids: Vec<u64> = s.range(100, 105).map(|e| e.id).collect();
    assert_eq!(ids, vec![100, 101, 102, 103, 104, 105]);
    assert_eq!(s.iter().count(), 10_000);
    assert_eq!(s.iter_rev().next().map(|e| e.id), Some(10_000));
    assert_eq!(s.last_id_at(95), Some(10)); // received 90 is id 10
    assert_eq!(s.last_id_at(-1), None);
    assert_eq!(s.last_id_at(i64::MAX), Some(10_000));
    assert_eq!(s.span_ms(), Some((0, 99_990)));
}

#[test]
fn overhead_is_at_most_30_percent_over_payload() {
    // 300-byte JSON logs, as in the product's targets.
    let mut s = Store::new(1 << 30);
    for i in 0..100_000 {
        let mut p = format!(
            r#"{{"ts":1795672800{i:03},"level":"info","service":"orders","msg":"order placed","order_id":"{i:08}""#
        );
        while p.len() < 299 {
            p.push_str(",\"pad\":\"xxxxxxxxxx\"");
            if p.len() > 290 {
                break;
            }
        }
        p.push('}');
        s.append(&ev("logs.orders", &p, i)).expect("stored");
    }
    let st = s.stats();
    let ratio = st.bytes as f64 / st.payload_bytes as f64;
    assert!(ratio <= 1.30, "store bytes / payload bytes = {ratio:.3}");
}

#[test]
fn an_event_larger_than_the_cap_is_refused_and_counted() {
    let mut s = Store::new(64 << 10);
    let big = "x".repeat(100 << 10);
    assert!(s.append(&ev("a", &big, 1)).is_none());
    assert_eq!(s.stats().too_large, 1);
    assert!(s.append(&ev("a", "small", 1)).is_some());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Under a flood of random sizes the cap holds after every append,
    /// nothing is lost uncounted, and ids stay contiguous.
    #[test]
    fn cap_is_a_hard_bound_and_every_eviction_is_counted(
        sizes in proptest::collection::vec(1usize..6_000, 1..800),
        cap_kb in 64usize..512,
    ) {
        let cap = cap_kb << 10;
        let mut s = Store::new(cap);
        let mut stored = 0u64;
        for (i, n) in sizes.iter().enumerate() {
            let payload = "y".repeat(*n);
            if s.append(&ev("flood", &payload, i as i64)).is_some() {
                stored += 1;
            }
            prop_assert!(s.bytes() <= cap, "{} > {cap}", s.bytes());
        }
        let st = s.stats();
        prop_assert_eq!(st.appended, stored);
        prop_assert_eq!(st.events + st.evicted, st.appended);
        prop_assert_eq!(st.appended + st.too_large, sizes.len() as u64);
        if let (Some(first), Some(last)) = (s.first_id(), s.last_id()) {
            prop_assert_eq!(last - first + 1, st.events);
            prop_assert_eq!(s.iter().count() as u64, st.events);
            prop_assert!(s.get(first).is_some() && s.get(last).is_some());
        }
    }
}

/// At the cap, a new chunk is an evicted one reused: the log's memory is
/// the same allocations from then on, and what it holds reads back whole.
#[test]
fn at_the_cap_chunks_are_reused_not_reallocated() {
    let mut s = Store::new(64 * 1024);
    let ev = |i: u64| {
        NewEvent::core(
            "ev.reuse",
            format!(r#"{{"n":{i},"pad":"{}"}}"#, "x".repeat(300)),
            i as i64,
        )
    };
    let mut i = 0;
    while s.stats().evicted == 0 {
        s.append(&ev(i)).expect("fits");
        i += 1;
    }
    let allocated = s.chunks_allocated;
    for _ in 0..5_000 {
        s.append(&ev(i)).expect("fits");
        i += 1;
    }
    assert!(s.stats().evicted > 4_000, "{:?}", s.stats());
    assert_eq!(
        s.chunks_allocated, allocated,
        "no chunk allocated at the cap"
    );
    let last = s.last_id().expect("events");
    let e = s.get(last).expect("held");
    assert_eq!(e.payload(), ev(i - 1).payload.as_ref());
    assert_eq!(s.iter().count() as u64, s.stats().events);
}

#[test]
fn long_distinct_error_texts_cannot_fill_the_log_with_dictionaries() {
    // Issue 16: 3,000 distinct 40 KB error texts in a 64 MiB log filled
    // the messages dictionary past the cap, and every later event was
    // refused as larger than the cap.
    let mut s = Store::new(64 << 20);
    for i in 0..3_000 {
        let text = format!("{i:05} {}", "stack frame at x.rs:1\n".repeat(1_900));
        let payload = serde_json::json!({"level": "error", "msg": text}).to_string();
        assert!(payload.len() > 40_000);
        s.append(&NewEvent::core("logs.app", payload, i))
            .expect("kept");
    }
    for i in 0..1_000 {
        let id = s
            .append(&ev("logs.app", r#"{"level":"info","msg":"ok"}"#, 3_000 + i))
            .expect("a small event is kept after the long ones");
        assert!(s.get(id).is_some());
    }
    let stats = s.stats();
    assert_eq!(stats.too_large, 0);
    assert_eq!(stats.messages_cut, 3_000);
    assert!(stats.bytes <= 64 << 20);
    let dictionaries: usize = s.dictionaries().map(|(_, d)| d.bytes()).sum();
    assert!(dictionaries <= (64 << 20) / 8, "{dictionaries}");
    // The newest long error groups under its start, marked as cut, and the
    // event keeps its whole text.
    let last = s.get(3_000).expect("held");
    let grouped = last.alert_message().expect("a message");
    assert!(grouped.starts_with("02999 stack frame") && grouped.ends_with('…'));
    assert!(grouped.len() <= intern::MAX_LEN);
    assert!(last.payload().len() > 40_000);
}

#[test]
fn a_burst_of_one_off_subjects_fills_the_dictionary_only_until_evicted() {
    // Issue 16: a million distinct subjects filled the subject dictionary
    // for good: every new subject after them read "(overflow)" in the
    // projections until a restart.
    let mut s = Store::new(4 << 20);
    let max = (4usize << 20) / 1024;
    let mut i = 0i64;
    let mut append = |s: &mut Store, subject: &str| {
        i += 1;
        s.append(&ev(subject, "{}", i)).expect("kept")
    };
    for n in 0..max * 20 {
        append(&mut s, &format!("burst.s{n}"));
    }
    assert!(s.subjects().overflowed() > 0, "the burst filled it");
    assert!(
        s.subjects().retired() > 0,
        "and it let go of what was evicted"
    );
    // Traffic as usual again: once the burst is evicted, new subjects get
    // names of their own, not "(overflow)".
    let mut last = 0;
    for n in 0..60_000 {
        last = append(&mut s, &format!("orders.n{}", n % 10));
    }
    assert!(s.first_id() > Some(max as u64 * 20), "the burst is evicted");
    let fresh = append(&mut s, "payments.new");
    assert_eq!(s.get(fresh).expect("held").subject(), "payments.new");
    let id = s
        .subjects()
        .get("payments.new")
        .expect("named in the dictionary");
    assert_eq!(s.subjects().name(id), Some("payments.new"));
    assert!(s.get(last).is_some());
    // Held events all still read their own subjects.
    let held: Vec<String> = s
        .range(s.first_id().expect("held"), u64::MAX)
        .map(|e| e.subject().to_string())
        .collect();
    assert!(
        held.iter()
            .all(|x| x.starts_with("orders.") || x.starts_with("burst.") || x == "payments.new")
    );
    assert!(s.stats().bytes <= 4 << 20);
}

#[test]
fn msg_ids_are_scoped_by_subject_or_stream_and_cost_a_fixed_size() {
    let mut s = Store::new(64 << 20);
    let with_id = |subject: &str, id: &str, source: Source| {
        let mut e = ev(subject, "{}", 1);
        e.headers = vec![("Nats-Msg-Id".into(), id.into())];
        e.source = source;
        e
    };
    let long = "k".repeat(10_000);
    // Core NATS: the same id on another subject is another message.
    let a = s.append(&with_id("a", &long, Source::Core)).expect("kept");
    let b = s.append(&with_id("b", &long, Source::Core)).expect("kept");
    let a2 = s.append(&with_id("a", &long, Source::Core)).expect("kept");
    assert!(!s.get(a).expect("held").is_duplicate());
    assert!(!s.get(b).expect("held").is_duplicate());
    assert!(s.get(a2).expect("held").is_duplicate());
    // JetStream scopes ids by stream, whatever the subject.
    let js = |subject: &str, stream: &str| {
        with_id(
            subject,
            "m-1",
            Source::JetStream {
                stream: stream.into(),
                seq: 1,
            },
        )
    };
    let x = s.append(&js("orders.new", "ORDERS")).expect("kept");
    let y = s.append(&js("orders.paid", "ORDERS")).expect("kept");
    let z = s.append(&js("orders.new", "AUDIT")).expect("kept");
    assert!(!s.get(x).expect("held").is_duplicate());
    assert!(s.get(y).expect("held").is_duplicate());
    assert!(!s.get(z).expect("held").is_duplicate());
    assert_eq!(s.stats().duplicates, 2);
    // (Remembered as 128-bit hashes: a 10 KB id costs what a short one
    // does; the map's key type says so, the dictionaries' bytes count it.)
    let dicts = s.stats().bytes - s.chunk_bytes_total as u64;
    assert!(dicts < 2_000, "{dicts}");
}
