//! Live protocol v1's subscriptions over a real socket, against a real
//! nats-server: projection, tail and timeline views reproduce the server's
//! state exactly from a snapshot and deltas; unsubscribing stops a view; a
//! gap makes the client resubscribe and end up exact again; views the
//! server cannot serve get an error frame naming them.

mod common;

use app::api::{Chart, EventPage, ProjectionBody, ProjectionState, Window};
use app::wire::{Applied, Body, ClientMsg, LiveViews, View, ViewState};
use common::*;
use eventscope::config::Config;
use futures::SinkExt;
use std::time::Duration;

/// The usual set-up, attached to `{prefix}.>`: a nats-server, the app, a
/// publisher and a socket whose subscription is known to be live.
async fn attached(
    prefix: &str,
) -> (
    eventscope::demo::managed_nats::ManagedNats,
    eventscope::Running,
    async_nats::Client,
    WsStream,
) {
    let subjects = format!("{prefix}.>");
    let h = Harness::start(
        |url| Config::attach(url, &[subjects.as_str()]),
        &format!("{prefix}.probe"),
    )
    .await;
    (h.nats, h.running, h.client, h.ws)
}

/// Reads frames into `views` (resubscribing when it asks) until `done`
/// holds; returns what each frame did.
async fn views_until(
    ws: &mut WsStream,
    views: &mut LiveViews,
    what: &str,
    done: impl Fn(&LiveViews) -> bool,
) -> Vec<Applied> {
    let mut seen = Vec::new();
    within(what, async {
        while !done(views) {
            let applied = views.apply(next_frame(ws).await);
            if let Applied::Resubscribe(msg) = &applied {
                send(ws, msg).await;
            }
            if let Applied::Error(sub, message) = &applied {
                panic!("error frame for {sub:?}: {message}");
            }
            seen.push(applied);
        }
    })
    .await;
    seen
}

/// Applies every frame that arrives within `quiet` of the previous one.
async fn drain(ws: &mut WsStream, views: &mut LiveViews, quiet: Duration) {
    while let Ok(frame) = tokio::time::timeout(quiet, next_frame(ws)).await {
        if let Applied::Resubscribe(msg) = views.apply(frame) {
            send(ws, &msg).await;
        }
    }
}

fn projection(views: &LiveViews, key: &str) -> Option<ProjectionState> {
    views.get(key)?.state.as_ref()?.projection()
}

async fn publish_logs(client: &async_nats::Client, subject: &str, level: &str, n: u32) {
    for i in 0..n {
        let p = format!(r#"{{"level":"{level}","msg":"{level} number {i}","n":{i}}}"#);
        client
            .publish(subject.to_string(), p.into())
            .await
            .expect("publish");
    }
    within("flush", client.flush()).await.expect("flush");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_view_reproduces_the_server_state_from_patches() {
    let (mut nats, running, client, mut ws) = attached("pv").await;
    let addr = running.addr;
    let mut views = LiveViews::new(100);
    let view = View::Projection {
        name: "log_levels".into(),
        window: Window::H1,
    };
    let key = view.key();
    send(&mut ws, &views.subscribe(view)).await;
    views_until(&mut ws, &mut views, "projection snapshot", |v| {
        projection(v, &key).is_some()
    })
    .await;

    // Three rounds of changes, each arriving as patches that apply.
    for round in 1..=3u32 {
        publish_logs(&client, "pv.logs.payments", "error", 5 * round).await;
        publish_logs(&client, "pv.logs.orders", "info", 20).await;
        let (errors, infos) = (
            u64::from(5 * round * (round + 1) / 2),
            u64::from(20 * round),
        );
        let seen = views_until(&mut ws, &mut views, "the round's patches", |v| {
            projection(v, &key).is_some_and(|p| match p.body {
                ProjectionBody::LogLevels { totals, .. } => {
                    totals.get("error") == Some(&errors) && totals.get("info") == Some(&infos)
                }
                _ => false,
            })
        })
        .await;
        // (Frames of the socket's counts view are `Ignored` here.)
        assert!(
            seen.iter().any(|a| matches!(a, Applied::Updated(_))),
            "round {round} arrived as frames of the view: {seen:?}"
        );
        assert!(
            !seen.iter().any(|a| matches!(a, Applied::Resubscribe(_))),
            "round {round}: every patch applied: {seen:?}"
        );
        drain(&mut ws, &mut views, Duration::from_millis(400)).await;
    }

    // Quiet now: the client's state is the server's, field for field.
    drain(&mut ws, &mut views, Duration::from_millis(400)).await;
    let (status, server): (u16, ProjectionState) =
        json(addr, "/api/v1/projections/log_levels?window=1h").await;
    assert_eq!(status, 200);
    let client_state = projection(&views, &key).expect("state");
    assert_eq!(client_state.body, server.body);
    assert_eq!(client_state.last_event_id, server.last_event_id);
    assert_eq!(client_state.name, "log_levels");
    let text = serde_json::to_string(&client_state.body).expect("json");
    assert!(text.contains("error"), "{text}");

    running.stop().await;
    nats.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_view_sends_only_matching_events_in_order_and_stops_when_unsubscribed() {
    let (mut nats, running, client, mut ws) = attached("tv").await;
    let addr = running.addr;

    // Two errors before subscribing: they are the snapshot.
    publish_logs(&client, "tv.logs.a", "error", 2).await;
    within("the two errors are stored", async {
        while json::<EventPage>(addr, "/api/v1/events?level=error")
            .await
            .1
            .events
            .len()
            < 2
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    let mut views = LiveViews::new(1_000);
    let view = View::Tail {
        filter: "subject=tv.logs.>&level=error".into(),
        limit: 50,
    };
    let key = view.key();
    send(&mut ws, &views.subscribe(view)).await;
    let tail_len = |v: &LiveViews| match v.get(&key).and_then(|s| s.state.as_ref()) {
        Some(ViewState::Tail { events, .. }) => Some(events.len()),
        _ => None,
    };
    views_until(&mut ws, &mut views, "tail snapshot", |v| {
        tail_len(v).is_some()
    })
    .await;
    assert_eq!(
        tail_len(&views),
        Some(2),
        "the snapshot holds the two errors"
    );

    // Interleaved: 30 errors among 300 infos and 30 errors elsewhere.
    for round in 0..30u32 {
        publish_logs(&client, "tv.logs.b", "info", 10).await;
        let p = format!(r#"{{"level":"error","msg":"boom","round":{round}}}"#);
        client
            .publish("tv.logs.b", p.into())
            .await
            .expect("publish");
        client
            .publish("tv.other", r#"{"level":"error"}"#.into())
            .await
            .expect("publish");
    }
    within("flush", client.flush()).await.expect("flush");
    views_until(&mut ws, &mut views, "every matching error", |v| {
        tail_len(v) == Some(32)
    })
    .await;
    drain(&mut ws, &mut views, Duration::from_millis(400)).await;
    let Some(ViewState::Tail {
        events, skipped, ..
    }) = views.get(&key).and_then(|s| s.state.clone())
    else {
        panic!("tail state")
    };
    let events = Vec::from(events);
    assert_eq!(events.len(), 32, "no more than the matching events");
    assert_eq!(skipped, 0);
    assert!(events.iter().all(|e| e.subject.starts_with("tv.logs.")));
    assert!(events.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    let rounds: Vec<String> = events.iter().skip(2).map(|e| e.preview.clone()).collect();
    for (i, p) in rounds.iter().enumerate() {
        assert!(p.contains(&format!("\"round\":{i}")), "{i}: {p}");
    }

    // Unsubscribed: more errors arrive, no frame of this view does.
    send(&mut ws, &views.unsubscribe(&key)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    publish_logs(&client, "tv.logs.c", "error", 10).await;
    let until = tokio::time::Instant::now() + Duration::from_millis(800);
    while let Ok(frame) = tokio::time::timeout_at(until, next_frame(&mut ws)).await {
        assert_ne!(frame.sub.as_deref(), Some(key.as_str()), "{frame:?}");
    }

    running.stop().await;
    nats.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_makes_the_client_resubscribe_and_end_up_exact() {
    let (mut nats, running, client, mut ws) = attached("gap").await;
    let addr = running.addr;
    let mut views = LiveViews::new(100);
    let view = View::Projection {
        name: "rates".into(),
        window: Window::M15,
    };
    let key = view.key();
    send(&mut ws, &views.subscribe(view)).await;
    views_until(&mut ws, &mut views, "snapshot", |v| {
        projection(v, &key).is_some()
    })
    .await;

    // Lose one delta on purpose, as a client that missed a frame would.
    publish_logs(&client, "gap.logs.a", "info", 10).await;
    let lost = within("a delta to lose", async {
        loop {
            let frame = next_frame(&mut ws).await;
            if frame.sub.as_deref() == Some(key.as_str())
                && matches!(frame.body, Body::Delta { .. })
            {
                return frame;
            }
        }
    })
    .await;
    publish_logs(&client, "gap.logs.a", "info", 10).await;
    let mut resubscribed = false;
    within("the next delta is seen as a gap", async {
        while !resubscribed {
            let frame = next_frame(&mut ws).await;
            assert_ne!(frame.seq, lost.seq, "the server repeated a frame");
            match views.apply(frame) {
                Applied::Resubscribe(msg) => {
                    assert_eq!(
                        msg,
                        ClientMsg::Subscribe {
                            view: views.get(&key).expect("kept").view.clone()
                        }
                    );
                    send(&mut ws, &msg).await;
                    resubscribed = true;
                }
                Applied::Error(_, m) => panic!("{m}"),
                _ => {}
            }
        }
    })
    .await;
    assert!(
        views.get(&key).expect("kept").state.is_none(),
        "state dropped"
    );
    views_until(&mut ws, &mut views, "fresh snapshot", |v| {
        projection(v, &key).is_some()
    })
    .await;
    publish_logs(&client, "gap.logs.b", "warn", 7).await;
    drain(&mut ws, &mut views, Duration::from_millis(500)).await;
    let (_, server): (u16, ProjectionState) =
        json(addr, "/api/v1/projections/rates?window=15m").await;
    let client_state = projection(&views, &key).expect("state");
    assert_eq!(client_state.body, server.body);
    assert_eq!(client_state.last_event_id, server.last_event_id);

    running.stop().await;
    nats.stop().await;
}

fn band(chart: &Chart, name: &str) -> u64 {
    chart
        .bands
        .iter()
        .find(|b| b.name == name)
        .map_or(0, |b| b.count)
}

/// A chart view is drawn by the server: its legend counts what was
/// published, by level, once the second they arrived in is over; the HTTP
/// chart (JSON, bare SVG, and as of a moment before) agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_view_is_redrawn_as_events_arrive_and_agrees_with_the_api() {
    let (mut nats, running, client, mut ws) = attached("cv").await;
    let addr = running.addr;
    let mut views = LiveViews::new(10);
    let view = View::Chart {
        name: "levels".into(),
        window: Window::M15,
        filter: String::new(),
    };
    let key = view.key();
    let chart = |v: &LiveViews| v.get(&key)?.state.as_ref()?.chart();
    send(&mut ws, &views.subscribe(view.clone())).await;
    views_until(&mut ws, &mut views, "chart snapshot", |v| {
        chart(v).is_some()
    })
    .await;
    let first = chart(&views).expect("chart");
    assert_eq!((band(&first, "error"), band(&first, "warn")), (0, 0));
    assert!(first.svg.starts_with("<svg"), "{:.60}", first.svg);
    let before = chrono::Utc::now() - chrono::Duration::milliseconds(1);
    tokio::time::sleep(Duration::from_millis(50)).await;

    publish_logs(&client, "cv.logs.payments", "error", 7).await;
    publish_logs(&client, "cv.logs.orders", "warn", 3).await;
    views_until(&mut ws, &mut views, "the chart redrawn with them", |v| {
        chart(v).is_some_and(|c| band(&c, "error") == 7 && band(&c, "warn") == 3)
    })
    .await;
    let live = chart(&views).expect("chart");
    assert!(!live.svg.contains("cv.logs"), "no event content in the SVG");
    // Everything else on `cv.>` is a probe, with no level.
    assert_eq!(live.total, 10 + band(&live, "no level"));

    let (status, api): (u16, Chart) = json(addr, "/api/v1/charts/levels?window=15m").await;
    assert_eq!(status, 200);
    assert_eq!((band(&api, "error"), band(&api, "warn")), (7, 3));
    let (status, svg) = get(addr, "/api/v1/charts/levels.svg?window=1m").await;
    assert_eq!(status, 200);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let at = before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (status, past): (u16, Chart) =
        json(addr, &format!("/api/v1/charts/levels?window=15m&at={at}")).await;
    assert_eq!(status, 200);
    assert!(!past.live);
    assert_eq!((band(&past, "error"), band(&past, "warn")), (0, 0));
    let (status, body) = get(addr, "/api/v1/charts/pie").await;
    assert_eq!(status, 404);
    assert!(body.contains("levels"), "{body}");

    running.stop().await;
    nats.stop().await;
}

/// The metrics chart takes the series of one metric with the given tags:
/// its samples are counted exactly, live and over HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metric_chart_takes_the_chosen_series_only() {
    let (mut nats, running, client, mut ws) = attached("mv").await;
    let addr = running.addr;
    for (route, n, scale) in [("/a", 100u32, 1.0), ("/b", 7, 1_000.0)] {
        for i in 1..=n {
            let p = format!(
                r#"{{"name":"lat","value":{},"tags":{{"route":"{route}"}}}}"#,
                f64::from(i) * scale
            );
            client
                .publish("mv.metrics", p.into())
                .await
                .expect("publish");
        }
    }
    within("flush", client.flush()).await.expect("flush");

    let mut views = LiveViews::new(10);
    let view = View::Chart {
        name: "metrics".into(),
        window: Window::M1,
        filter: "metric=lat&tags=route%3D%2Fa&p=99".into(),
    };
    let key = view.key();
    send(&mut ws, &views.subscribe(view)).await;
    views_until(&mut ws, &mut views, "the chart of /a", |v| {
        v.get(&key)
            .and_then(|s| s.state.as_ref())
            .and_then(ViewState::chart)
            .is_some_and(|c| c.total == 100)
    })
    .await;
    let c = views
        .get(&key)
        .and_then(|s| s.state.as_ref())
        .and_then(ViewState::chart);
    let c = c.expect("chart");
    assert_eq!(
        c.bands.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(),
        vec!["p99"]
    );

    let (status, all): (u16, Chart) =
        json(addr, "/api/v1/charts/metrics?metric=lat&window=1m").await;
    assert_eq!(status, 200);
    assert_eq!(all.total, 107, "both routes without a tag filter");
    let (status, body) = get(addr, "/api/v1/charts/metrics?window=1m").await;
    assert_eq!(status, 400);
    assert!(body.contains("choose a metric"), "{body}");
    let (status, body) = get(addr, "/api/v1/charts/metrics?metric=lat&tags=route").await;
    assert_eq!(status, 400);
    assert!(body.contains("route"), "{body}");

    running.stop().await;
    nats.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_the_server_cannot_serve_get_an_error_naming_them() {
    let mut nats = nats_server(None).await;
    let running = eventscope::start(Config::attach(nats.url(), &["e.>"]))
        .await
        .expect("app starts");
    let mut ws = ws_open(running.addr).await;

    let cases = [
        (
            View::Projection {
                name: "no_such".into(),
                window: Window::M1,
            },
            "no_such",
        ),
        (
            View::Tail {
                filter: "level=loud".into(),
                limit: 10,
            },
            "level",
        ),
        (
            View::Tail {
                filter: String::new(),
                limit: 0,
            },
            "limit",
        ),
        (
            View::Tail {
                filter: "level=error&before=3".into(),
                limit: 5,
            },
            "bounds",
        ),
        (View::Timeline { buckets: 0 }, "buckets"),
        (
            View::Chart {
                name: "pie".into(),
                window: Window::M1,
                filter: String::new(),
            },
            "levels",
        ),
        (
            View::Chart {
                name: "metrics".into(),
                window: Window::M1,
                filter: "metric=x&p=75".into(),
            },
            "75",
        ),
    ];
    for (view, says) in cases {
        send(&mut ws, &ClientMsg::Subscribe { view: view.clone() }).await;
        let frame = next_frame(&mut ws).await;
        assert_eq!(frame.sub, Some(view.key()));
        match frame.body {
            Body::Error { message } => assert!(message.contains(says), "{says}: {message}"),
            other => panic!("{view:?}: expected an error, got {other:?}"),
        }
    }
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        "{\"op\":\"subscribe\"}".into(),
    ))
    .await
    .expect("send");
    let frame = next_frame(&mut ws).await;
    assert_eq!(frame.sub, None);
    assert!(matches!(frame.body, Body::Error { .. }), "{frame:?}");

    // Views refused do not count against the client's subscriptions.
    for i in 0..70 {
        let view = View::Projection {
            name: format!("missing_{i}"),
            window: Window::M1,
        };
        send(&mut ws, &ClientMsg::Subscribe { view }).await;
        assert!(matches!(next_frame(&mut ws).await.body, Body::Error { .. }));
    }

    // The socket is still good for views that exist.
    let mut views = LiveViews::new(10);
    send(&mut ws, &views.subscribe(View::Timeline { buckets: 30 })).await;
    views_until(&mut ws, &mut views, "timeline snapshot", |v| {
        v.get("timeline/30")
            .and_then(|s| s.state.as_ref())
            .and_then(ViewState::timeline)
            .is_some()
    })
    .await;

    running.stop().await;
    nats.stop().await;
}

/// The next text frame of `ws`, raw.
async fn next_text(ws: &mut WsStream) -> String {
    use futures::StreamExt;
    within("a frame", async {
        loop {
            match ws.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => return t.to_string(),
                Some(Ok(_)) => {}
                other => panic!("socket ended: {other:?}"),
            }
        }
    })
    .await
}

/// Two clients of one view get its frames made once: each delta, with its
/// seq, is the same text byte for byte on both sockets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_of_a_view_share_its_frames_byte_for_byte() {
    let (mut nats, running, client, counts) = attached("share").await;
    let view = View::Projection {
        name: "rates".into(),
        window: Window::M1,
    };
    let (mut a, mut b) = (ws_open(running.addr).await, ws_open(running.addr).await);
    for ws in [&mut a, &mut b] {
        send(ws, &ClientMsg::Subscribe { view: view.clone() }).await;
        let snapshot: app::wire::Frame =
            serde_json::from_str(&next_text(ws).await).expect("a frame");
        assert!(matches!(snapshot.body, Body::Snapshot { .. }));
    }
    // A delta is due on both sockets; from then on each one's frames are
    // the other's (the same seq, the same bytes), three in a row.
    publish_logs(&client, "share.logs", "info", 5).await;
    let first_b = next_text(&mut b).await;
    let mut first_a = next_text(&mut a).await;
    // (One socket may have seen the other's first delta as part of its
    // snapshot: line both up on the same seq.)
    let seq = |t: &str| {
        serde_json::from_str::<app::wire::Frame>(t)
            .expect("a frame")
            .seq
    };
    while seq(&first_a) < seq(&first_b) {
        first_a = next_text(&mut a).await;
    }
    let mut first_b = first_b;
    while seq(&first_b) < seq(&first_a) {
        first_b = next_text(&mut b).await;
    }
    assert_eq!(first_a, first_b);
    for i in 0..2 {
        publish_logs(&client, "share.logs", "warn", 3 + i).await;
        assert_eq!(next_text(&mut a).await, next_text(&mut b).await);
    }
    for mut ws in [a, b, counts] {
        drop(ws.close(None).await);
    }
    running.stop().await;
    nats.stop().await;
}

/// A view of the hour's rates with no traffic: its state moves only with
/// the clock, which a client follows by itself (`at_ms`), so no frame is
/// sent over ten ticks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_with_nothing_new_sends_nothing() {
    let (mut nats, running, _client, counts) = attached("quiet").await;
    let mut ws = ws_open(running.addr).await;
    let view = View::Projection {
        name: "top_subjects".into(),
        window: Window::H1,
    };
    send(&mut ws, &ClientMsg::Subscribe { view }).await;
    let snapshot: app::wire::Frame =
        serde_json::from_str(&next_text(&mut ws).await).expect("a frame");
    assert!(matches!(snapshot.body, Body::Snapshot { .. }));
    // Ten ticks of 100 ms.
    let more = tokio::time::timeout(Duration::from_secs(1), next_text(&mut ws)).await;
    assert!(more.is_err(), "a frame with nothing new: {more:?}");
    drop(ws.close(None).await);
    drop(counts);
    running.stop().await;
    nats.stop().await;
}
