//! The v1 events API against a real nats-server: what was published is in
//! the log, decoded, filterable and pageable; errors say what to do.

mod common;

use app::api::{ApiError, EventDetail, EventPage};
use common::*;
use eventscope::config::Config;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_are_stored_decoded_and_queryable() {
    let Harness {
        mut nats,
        running,
        client,
        mut ws,
        mut mirror,
        probes,
    } = Harness::start(|url| Config::attach(url, &["app.>"]), "app.probe").await;

    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "order-1");
    headers.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
    client
        .publish_with_headers(
            "app.logs.orders",
            headers.clone(),
            r#"{"level":"error","msg":"payment declined","user":{"id":7}}"#.into(),
        )
        .await
        .expect("publish");
    // The same Nats-Msg-Id again: kept, flagged, not counted twice.
    client
        .publish_with_headers(
            "app.logs.orders",
            headers,
            r#"{"level":"error","msg":"payment declined"}"#.into(),
        )
        .await
        .expect("publish");
    client
        .publish(
            "app.logs.api",
            "level=warn msg=\"slow request\" ms=950".into(),
        )
        .await
        .expect("publish");
    client
        .publish(
            "app.metrics.api",
            r#"[{"name":"latency_ms","value":12.5,"tags":{"route":"/a"}},{"name":"latency_ms","value":7}]"#.into(),
        )
        .await
        .expect("publish");
    client
        .publish("app.blob", bytes::Bytes::from_static(&[0xff, 0x00, 0xfe]))
        .await
        .expect("publish");
    within("flush", client.flush()).await.expect("flush");
    mirror
        .until(&mut ws, "all five stored", |s| {
            s.health.store_events >= probes + 5
        })
        .await;
    assert_eq!(mirror.state.health.duplicates, 1);
    assert_eq!(mirror.state.health.undecoded, 1);
    assert_eq!(mirror.count("app.logs.orders"), 1, "duplicate not counted");

    let (status, page): (u16, EventPage) =
        json(running.addr, "/api/v1/events?subject=app.logs.>").await;
    assert_eq!(status, 200);
    let subjects: Vec<&str> = page.events.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(
        subjects,
        vec!["app.logs.api", "app.logs.orders", "app.logs.orders"]
    );
    assert_eq!(page.events[0].level.as_deref(), Some("warn"));
    assert_eq!(page.events[0].format, "logfmt");
    assert_eq!(page.events[0].message.as_deref(), Some("slow request"));
    assert!(page.events[1].duplicate && !page.events[2].duplicate);

    let (_, errors): (u16, EventPage) =
        json(running.addr, "/api/v1/events?level=error&service=orders").await;
    assert_eq!(errors.events.len(), 2);
    let (_, by_field): (u16, EventPage) =
        json(running.addr, "/api/v1/events?field=user.id=7").await;
    assert_eq!(by_field.events.len(), 1);
    let (_, text): (u16, EventPage) = json(running.addr, "/api/v1/events?q=DECLINED&limit=1").await;
    assert_eq!(text.events.len(), 1);
    let cursor = text.next_cursor.expect("a second page");
    let (_, next): (u16, EventPage) = json(
        running.addr,
        &format!("/api/v1/events?q=DECLINED&limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(next.events.len(), 1);
    assert!(next.events[0].id < text.events[0].id);
    assert!(next.next_cursor.is_none());

    // Detail: headers and payload exactly; metric samples; binary as base64.
    let first = &page.events[2];
    let (status, detail): (u16, EventDetail) =
        json(running.addr, &format!("/api/v1/events/{}", first.id)).await;
    assert_eq!(status, 200);
    assert_eq!(
        detail.payload_text.as_deref(),
        Some(r#"{"level":"error","msg":"payment declined","user":{"id":7}}"#)
    );
    assert!(
        detail
            .headers
            .contains(&("Nats-Msg-Id".to_string(), "order-1".to_string()))
    );
    let (_, metrics): (u16, EventPage) = json(running.addr, "/api/v1/events?kind=metric").await;
    let (_, m): (u16, EventDetail) = json(
        running.addr,
        &format!("/api/v1/events/{}", metrics.events[0].id),
    )
    .await;
    let samples: Vec<(String, f64)> = m.samples.into_iter().map(|s| (s.series, s.value)).collect();
    assert_eq!(
        samples,
        vec![
            ("latency_ms{route=/a}".to_string(), 12.5),
            ("latency_ms".to_string(), 7.0)
        ]
    );
    let (_, raw): (u16, EventPage) = json(running.addr, "/api/v1/events?kind=raw").await;
    let (_, blob): (u16, EventDetail) = json(
        running.addr,
        &format!("/api/v1/events/{}", raw.events[0].id),
    )
    .await;
    assert_eq!(blob.payload_base64.as_deref(), Some("/wD+"));
    assert_eq!(blob.payload_text, None);

    // As curl sends it, `>` raw in the query (issue 16: the HTTP stack
    // answered 400 with an empty body before any handler ran).
    let (status, body) = raw_http(
        running.addr,
        "GET",
        "/api/v1/events?subject=app.logs.>&level=error&limit=2",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let raw_page: EventPage = serde_json::from_str(&body).expect("an event page");
    assert_eq!(raw_page.events.len(), 2);
    assert!(
        raw_page
            .events
            .iter()
            .all(|e| e.subject == "app.logs.orders")
    );
    // Every error is JSON, the framework's own rejections included.
    for (method, path, want) in [
        ("GET", "/api/v1/events/%ff%fe", 400),
        ("GET", "/api/v1/no-such-thing", 404),
        ("DELETE", "/api/v1/events", 405),
        ("GET", "/api/v1/events?limit=<script>", 400),
    ] {
        let (status, body) = raw_http(running.addr, method, path).await;
        assert_eq!(status, want, "{method} {path}: {body}");
        let error: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {body:?}"));
        assert!(
            error["error"].as_str().is_some_and(|t| !t.is_empty()),
            "{method} {path}: {body}"
        );
    }

    // Errors: right status, a message that says what to do.
    let (status, err): (u16, ApiError) = json(running.addr, "/api/v1/events?level=loud").await;
    assert_eq!(status, 400);
    assert!(
        err.error.contains("trace, debug, info, warn, error"),
        "{}",
        err.error
    );
    let (status, err): (u16, ApiError) =
        json(running.addr, "/api/v1/events?before=yesterday").await;
    assert_eq!(status, 400);
    assert!(err.error.contains("RFC 3339"), "{}", err.error);
    let (status, err): (u16, ApiError) = json(running.addr, "/api/v1/events/999999").await;
    assert_eq!(status, 404);
    assert!(err.error.contains("not in the log"), "{}", err.error);

    tokio::time::sleep(Duration::from_millis(10)).await;
    running.stop().await;
    nats.stop().await;
}

/// Filter parameters are bounded: repeated ones count once, too many or
/// too long ones get a 400 that says the bound (and echoes at most a bit of
/// what was sent). A scan that reaches past one slice of the log still
/// answers whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_parameters_are_bounded_and_long_scans_answer_whole() {
    let Harness {
        mut nats,
        running,
        client,
        mut ws,
        mut mirror,
        probes,
    } = Harness::start(|url| Config::attach(url, &["cap.>"]), "cap.probe").await;
    let n = 45_000u64;
    for i in 0..n {
        client
            .publish(
                "cap.x",
                format!("{{\"user\":{{\"id\":{}}}}}", i % 10).into(),
            )
            .await
            .expect("publish");
    }
    client.flush().await.expect("flush");
    mirror
        .until(&mut ws, "all published", |c| {
            c.subjects.get("cap.x").is_some_and(|s| s.count == n)
        })
        .await;

    // The same field and level again and again: one filter each.
    let repeated = "field=user.id=3&".repeat(50) + &"level=info,info&".repeat(10) + "limit=1000";
    let (status, page): (u16, EventPage) =
        json(running.addr, &format!("/api/v1/events?{repeated}")).await;
    assert_eq!(status, 200);
    assert!(page.events.is_empty(), "no event has a level");
    let (status, page): (u16, EventPage) = json(
        running.addr,
        &format!("/api/v1/events?{}limit=1000", "field=user.id=3&".repeat(50)),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page.events.len(), 1_000);

    // Nine distinct fields, a long q, a long path: refused, saying why.
    let nine: String = (0..9).map(|i| format!("field=f{i}=1&")).collect();
    let (status, err): (u16, ApiError) =
        json(running.addr, &format!("/api/v1/events?{nine}")).await;
    assert_eq!(status, 400);
    assert!(err.error.contains("at most 8 field="), "{}", err.error);
    let long = "x".repeat(2_000);
    let (status, err): (u16, ApiError) =
        json(running.addr, &format!("/api/v1/events?q={long}")).await;
    assert_eq!(status, 400);
    assert!(
        err.error.contains("longer than 1024 bytes"),
        "{}",
        err.error
    );
    let (status, err): (u16, ApiError) =
        json(running.addr, &format!("/api/v1/events?{long}=1")).await;
    assert_eq!(status, 400);
    assert!(
        err.error.len() < 300,
        "the error echoes a bounded part: {}",
        err.error
    );

    // Free text that never matches: every event examined, in slices of
    // the log, one answer with no cursor.
    let (status, page): (u16, EventPage) =
        json(running.addr, "/api/v1/events?q=never%20there&limit=10").await;
    assert_eq!(status, 200);
    assert!(page.events.is_empty());
    if page.next_cursor.is_none() {
        assert_eq!(page.scanned as u64, n + probes);
    } else {
        // The request's deadline cut it (a slow machine): the cursor goes on.
        assert!(page.scanned > 0);
    }

    // A crowd of slow queries (a field no event has: every payload parsed):
    // 4 run at once, the others wait their turn, and past a 5 s wait are
    // answered 503 with a JSON error, none left hanging. More at once each
    // round until the wait runs out, whatever the machine's speed.
    let mut seen_503 = false;
    for crowd in [200usize, 400, 800] {
        let started = std::time::Instant::now();
        let answers = futures::future::join_all((0..crowd).map(|i| {
            let addr = running.addr;
            async move {
                let resp = reqwest::get(format!(
                    "http://{addr}/api/v1/events?field=user.id={}&limit=10",
                    1_000 + i
                ))
                .await
                .expect("answered");
                (resp.status().as_u16(), resp.text().await.expect("body"))
            }
        }))
        .await;
        for (status, body) in &answers {
            match status {
                200 => {}
                503 => {
                    let err: ApiError = serde_json::from_str(body).expect("a JSON error");
                    assert!(
                        err.error.contains("4 event queries are running"),
                        "{}",
                        err.error
                    );
                    seen_503 = true;
                }
                other => panic!("{other}: {body}"),
            }
        }
        eprintln!(
            "{crowd} slow queries at once: {} answered 503, all within {:?}",
            answers.iter().filter(|(s, _)| *s == 503).count(),
            started.elapsed()
        );
        if seen_503 {
            break;
        }
    }
    assert!(
        seen_503,
        "a crowd of slow queries is turned away, not queued without end"
    );
    // And the server goes on answering.
    let (status, _) = get(running.addr, "/healthz").await;
    assert_eq!(status, 200);
    running.stop().await;
    nats.stop().await;
}
