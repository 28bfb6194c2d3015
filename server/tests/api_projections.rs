//! Projections and time travel through the v1 API, against a real
//! nats-server: the state as of an earlier event equals what the live
//! projection said at that moment; evicted moments answer 410.

mod common;

use app::api::{ApiError, EventPage, ProjectionBody, ProjectionList, ProjectionState, Timeline};
use common::*;
use eventscope::config::Config;

async fn publish_phase(client: &async_nats::Client, errors: u32, infos: u32, latencies: &[f64]) {
    for i in 0..errors {
        let p = format!(r#"{{"level":"error","msg":"card declined","n":{i}}}"#);
        client
            .publish("tt.logs.payments", p.into())
            .await
            .expect("publish");
    }
    for i in 0..infos {
        let p = format!(r#"{{"level":"info","msg":"ok","n":{i}}}"#);
        client
            .publish("tt.logs.orders", p.into())
            .await
            .expect("publish");
    }
    for v in latencies {
        let p = format!(r#"{{"name":"latency_ms","value":{v},"tags":{{"route":"/pay"}}}}"#);
        client
            .publish("tt.metrics.api", p.into())
            .await
            .expect("publish");
    }
    within("flush", client.flush()).await.expect("flush");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_as_of_an_event_equals_the_live_state_then() {
    let Harness {
        mut nats,
        running,
        client,
        mut ws,
        mut mirror,
        probes,
    } = Harness::start(|url| Config::attach(url, &["tt.>"]), "tt.probe").await;
    let addr = running.addr;

    let (status, list): (u16, ProjectionList) = json(addr, "/api/v1/projections").await;
    assert_eq!(status, 200);
    // The catalogue: every built-in, nothing else (no config file here).
    let names: Vec<String> = list.projections.iter().map(|p| p.name.clone()).collect();
    let builtins: Vec<String> = eventscope::projection::builtin::builtin_catalogue()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, builtins);

    let lat_a: Vec<f64> = (1..=200).map(|i| i as f64).collect();
    publish_phase(&client, 7, 20, &lat_a).await;
    let phase_a = probes + 7 + 20 + 200;
    mirror
        .until(&mut ws, "phase A stored", |s| {
            s.health.store_events >= phase_a
        })
        .await;

    let (_, newest): (u16, EventPage) = json(addr, "/api/v1/events?limit=1").await;
    let id_a = newest.events[0].id;
    let (_, live_rates): (u16, ProjectionState) =
        json(addr, "/api/v1/projections/rates?window=1h").await;
    let (_, live_metrics): (u16, ProjectionState) =
        json(addr, "/api/v1/projections/metrics?window=1h").await;
    let (_, live_errors): (u16, ProjectionState) =
        json(addr, "/api/v1/projections/top_errors?window=1h").await;
    assert!(live_rates.live);
    let ProjectionBody::Rates { total, .. } = &live_rates.body else {
        panic!("rates")
    };
    assert_eq!(total.count, phase_a);
    let ProjectionBody::Metrics { series } = &live_metrics.body else {
        panic!("metrics")
    };
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].series, "latency_ms{route=/pay}");
    assert_eq!(
        (series[0].count, series[0].min, series[0].max),
        (200, 1.0, 200.0)
    );
    assert!(
        (series[0].p50 - 100.0).abs() <= 1.0,
        "p50 {}",
        series[0].p50
    );
    assert!(
        (series[0].p99 - 198.0).abs() <= 1.98,
        "p99 {}",
        series[0].p99
    );

    // Phase B changes everything; then travel back to the end of phase A.
    publish_phase(&client, 3, 50, &[1000.0; 50]).await;
    mirror
        .until(&mut ws, "phase B stored", |s| {
            s.health.store_events >= phase_a + 103
        })
        .await;
    for (name, live) in [
        ("rates", &live_rates),
        ("metrics", &live_metrics),
        ("top_errors", &live_errors),
    ] {
        let (status, past): (u16, ProjectionState) = json(
            addr,
            &format!("/api/v1/projections/{name}?window=1h&at={id_a}"),
        )
        .await;
        assert_eq!(status, 200);
        assert!(!past.live);
        assert_eq!(past.last_event_id, Some(id_a));
        assert_eq!(past.body, live.body, "{name} as of event {id_a}");
    }
    let (_, now): (u16, ProjectionState) = json(addr, "/api/v1/projections/rates?window=1h").await;
    let ProjectionBody::Rates { total, .. } = &now.body else {
        panic!("rates")
    };
    assert_eq!(total.count, phase_a + 103);

    // Before the first event: the empty state.
    let (status, before): (u16, ProjectionState) = json(
        addr,
        "/api/v1/projections/rates?window=1h&at=2001-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(status, 200);
    let ProjectionBody::Rates { total, .. } = &before.body else {
        panic!("rates")
    };
    assert_eq!(total.count, 0);

    let (_, timeline): (u16, Timeline) = json(addr, "/api/v1/timeline?buckets=10").await;
    assert_eq!(timeline.counts.iter().sum::<u64>(), phase_a + 103);
    // The buckets cover the log's span, about 10 of them, no empty one
    // past its end; nothing was evicted, so time travel reaches back to
    // the first event.
    let (first_ms, last_ms) = running.store.read().span_ms().expect("events");
    let (n, step) = (timeline.counts.len() as i64, timeline.step_ms);
    assert!((1..=11).contains(&n), "{n} buckets");
    assert!(timeline.start_ms <= first_ms && first_ms < timeline.start_ms + step);
    assert!(
        timeline.start_ms + (n - 1) * step <= last_ms && last_ms < timeline.start_ms + n * step
    );
    assert!(
        timeline.counts.last().is_some_and(|c| *c > 0),
        "the last bucket holds the last event"
    );
    let earliest = timeline
        .earliest_at_ms
        .expect("time travel reaches the log");
    assert!(
        earliest <= first_ms,
        "{earliest} after the first event {first_ms}"
    );

    let (status, err): (u16, ApiError) = json(addr, "/api/v1/projections/nope").await;
    assert_eq!(status, 404);
    assert!(err.error.contains("rates"), "{}", err.error);
    let (status, err): (u16, ApiError) = json(addr, "/api/v1/projections/rates?window=2m").await;
    assert_eq!(status, 400);
    assert!(
        err.error.contains("1s, 10s, 1m, 15m or 1h"),
        "{}",
        err.error
    );
    let (status, err): (u16, ApiError) = json(addr, "/api/v1/projections/rates?at=noon").await;
    assert_eq!(status, 400);
    assert!(err.error.contains("RFC 3339"), "{}", err.error);

    running.stop().await;
    nats.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_moments_answer_gone_with_the_earliest_reachable() {
    let Harness {
        mut nats,
        running,
        client,
        mut ws,
        mut mirror,
        ..
    } = Harness::start(
        |url| {
            let mut config = Config::attach(url, &["ev.>"]);
            config.store_bytes = bytesize::ByteSize::kib(256);
            config
        },
        "ev.probe",
    )
    .await;
    let addr = running.addr;

    let pad = "x".repeat(900);
    for i in 0..2_000 {
        let p = format!(r#"{{"level":"info","msg":"{pad}","n":{i}}}"#);
        client
            .publish("ev.logs.bulk", p.into())
            .await
            .expect("publish");
    }
    within("flush", client.flush()).await.expect("flush");
    mirror
        .until(&mut ws, "evictions", |s| {
            s.health.evicted > 0 && s.subjects.get("ev.logs.bulk").map_or(0, |c| c.count) == 2_000
        })
        .await;

    let (status, err): (u16, ApiError) = json(addr, "/api/v1/projections/rates?at=1").await;
    assert_eq!(status, 404, "event 1 was evicted: {}", err.error);
    let (status, err): (u16, ApiError) =
        json(addr, "/api/v1/projections/rates?at=2001-01-01T00:00:00Z").await;
    assert_eq!(status, 410);
    assert!(
        err.error.contains("earliest that can be rebuilt"),
        "{}",
        err.error
    );
    // The newest moments are still reachable.
    let (_, newest): (u16, EventPage) = json(addr, "/api/v1/events?limit=1").await;
    let (status, _): (u16, ProjectionState) = json(
        addr,
        &format!("/api/v1/projections/rates?at={}", newest.events[0].id),
    )
    .await;
    assert_eq!(status, 200);

    running.stop().await;
    nats.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_defined_projection_from_the_config_file() {
    let mut nats = nats_server(None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("eventscope.toml");
    std::fs::write(
        &path,
        format!(
            r#"nats_url = "{}"
subjects = ["shop.>"]

[[projection]]
name = "revenue_by_country"
subject = "shop.orders"
where = ["total < 400"]
group_by = "country"
aggregate = "sum"
field = "total"
window = "15m"
"#,
            nats.url()
        ),
    )
    .expect("write config");
    let mut config =
        Config::load_ignoring_env(["eventscope", "--config", path.to_str().expect("utf-8")])
            .expect("loads");
    config.addr = "127.0.0.1:0".parse().expect("addr");
    let running = eventscope::start(config).await.expect("app starts");
    let addr = running.addr;
    let client = publisher(&nats.url()).await;
    let mut ws = ws_connect(addr).await;
    let mut mirror = Mirror::default();
    mirror.apply(next_frame(&mut ws).await);
    wait_subscribed(&client, &mut ws, &mut mirror, "shop.probe").await;

    for (country, total) in [("DE", 30), ("DE", 70), ("FR", 5), ("FR", 500)] {
        let p = format!(r#"{{"country":"{country}","total":{total}}}"#);
        client
            .publish("shop.orders", p.into())
            .await
            .expect("publish");
    }
    within("flush", client.flush()).await.expect("flush");
    mirror
        .until(&mut ws, "orders counted", |s| {
            s.subjects.get("shop.orders").map_or(0, |c| c.count) == 4
        })
        .await;

    let (_, list): (u16, ProjectionList) = json(addr, "/api/v1/projections").await;
    let info = list
        .projections
        .iter()
        .find(|p| p.name == "revenue_by_country")
        .expect("listed");
    assert!(
        info.description.contains("by country"),
        "{}",
        info.description
    );
    let (status, state): (u16, ProjectionState) =
        json(addr, "/api/v1/projections/revenue_by_country").await;
    assert_eq!(status, 200);
    assert_eq!(
        state.window,
        Some(app::api::Window::M15),
        "the definition's window"
    );
    let ProjectionBody::Custom { groups, .. } = state.body else {
        panic!("custom body")
    };
    let got: Vec<(String, Option<f64>)> = groups.into_iter().map(|g| (g.key, g.value)).collect();
    assert_eq!(
        got,
        vec![("DE".into(), Some(100.0)), ("FR".into(), Some(5.0))]
    );

    running.stop().await;
    nats.stop().await;
}
