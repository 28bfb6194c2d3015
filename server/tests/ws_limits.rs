//! The live socket's limits, over a real socket against a real
//! nats-server (issue 16): a message too large closes the socket; a filter
//! too long gets an error frame; a client that keeps sending what the
//! server cannot read is closed and counted; a tail's summaries carry a cut
//! message, whatever the event's.

mod common;

use app::wire::{Body, ClientMsg, View};
use common::*;
use eventscope::config::Config;
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Reads until the server closes the socket; panics if it does not within
/// the test timeout. Returns the error frames' texts seen on the way.
async fn until_closed(ws: &mut WsStream) -> Vec<String> {
    within("the server closes the socket", async {
        let mut errors = Vec::new();
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    if let Ok(f) = serde_json::from_str::<app::wire::Frame>(&t)
                        && let Body::Error { message } = f.body
                    {
                        errors.push(message);
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return errors,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
}

/// A refused upgrade's status and the text of its JSON error (panics if
/// the upgrade failed otherwise, or the body is not the API's error).
fn refusal(e: tokio_tungstenite::tungstenite::Error) -> (u16, String) {
    let tokio_tungstenite::tungstenite::Error::Http(response) = e else {
        panic!("not refused with an HTTP status: {e}")
    };
    let body = response.body().as_deref().unwrap_or_default();
    let error: serde_json::Value = serde_json::from_slice(body).expect("a JSON error");
    let text = error["error"].as_str().expect("an error field").to_string();
    (response.status().as_u16(), text)
}

/// A server on `<prefix>.>` whose client addresses may hold 4
/// subscriptions (`--ws-per-address 4`).
async fn with_quota_of_4(prefix: &str) -> Harness {
    let subjects = format!("{prefix}.>");
    Harness::start(
        |url| {
            let mut c = Config::attach(url, &[subjects.as_str()]);
            c.ws_per_address = 4;
            c
        },
        &format!("{prefix}.probe"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_socket_refuses_what_a_client_should_not_send() {
    let Harness {
        nats,
        running,
        client,
        ws: _counts,
        ..
    } = Harness::start(|url| Config::attach(url, &["lim.>"]), "lim.probe").await;

    // A message over 64 KiB: the socket is closed.
    let mut ws = ws_open(running.addr).await;
    let huge = format!(
        r#"{{"type":"subscribe","view":{{"kind":"tail","filter":"{}","limit":10}}}}"#,
        "q".repeat(100 << 10)
    );
    let _ = ws.send(Message::Text(huge.into())).await;
    until_closed(&mut ws).await;

    // A filter over 2 KiB: an error frame, and the socket stays.
    let mut ws = ws_open(running.addr).await;
    let long = View::Tail {
        filter: format!("q={}", "x".repeat(3_000)),
        limit: 10,
    };
    send(&mut ws, &ClientMsg::Subscribe { view: long }).await;
    let frame = next_frame(&mut ws).await;
    match frame.body {
        Body::Error { message } => assert!(message.contains("2048 bytes"), "{message}"),
        other => panic!("expected an error frame, got {other:?}"),
    }
    send(&mut ws, &ClientMsg::Subscribe { view: View::Counts }).await;
    assert!(matches!(
        next_frame(&mut ws).await.body,
        Body::Snapshot { .. }
    ));

    // Garbage, again and again: an error frame each time, then closed.
    // (Exactly as many as it takes: what a client sends after the server
    // closed makes the kernel reset the connection, which can discard the
    // frames not yet read.)
    let mut ws = ws_open(running.addr).await;
    for i in 0..eventscope::live::ws::MAX_BAD_MESSAGES {
        if ws
            .send(Message::Text(format!("not json {i}").into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let errors = until_closed(&mut ws).await;
    assert!(errors.len() >= 2, "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("not a live protocol")));
    assert!(
        errors.last().is_some_and(|e| e.contains("closing")),
        "{errors:?}"
    );
    let (_, metrics) = get(running.addr, "/metrics").await;
    assert!(
        metrics.contains("eventscope_ws_closed_bad_total 1"),
        "{metrics}"
    );

    // A 60 KB error message: the tail's summary carries 500 characters.
    let mut ws = ws_open(running.addr).await;
    let view = View::Tail {
        filter: "subject=lim.logs".to_string(),
        limit: 10,
    };
    send(&mut ws, &ClientMsg::Subscribe { view }).await;
    let _snapshot = next_frame(&mut ws).await;
    let text = "trace line\n".repeat(6_000);
    client
        .publish(
            "lim.logs",
            serde_json::json!({"level": "error", "msg": text})
                .to_string()
                .into(),
        )
        .await
        .expect("publish");
    client.flush().await.expect("flush");
    let delta = within("the tail's delta", async {
        loop {
            let f = next_frame_within(&mut ws, Duration::from_secs(20)).await;
            if let Body::Delta { data } = f.body {
                return data;
            }
        }
    })
    .await;
    let json = serde_json::to_value(&delta).expect("json");
    let message = json["events"][0]["message"]
        .as_str()
        .expect("a message")
        .to_string();
    assert_eq!(message.chars().count(), 501, "500 and the ellipsis");
    assert!(message.ends_with('…'));

    running.stop().await;
    let mut nats = nats;
    nats.stop().await;
}

/// The live connections of one address share a quota of subscriptions
/// (`--ws-per-address`): past it a subscription gets an error frame, and
/// the quota comes back as views are unsubscribed or connections close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_shared_view() {
    let Harness {
        mut nats,
        running,
        ws: mut counts,
        ..
    } = with_quota_of_4("quota").await;
    // The harness's own socket holds one (counts).
    let tail = |i: u32| View::Tail {
        filter: format!("subject=quota.s{i}"),
        limit: 5,
    };
    let mut a = ws_open(running.addr).await;
    let mut b = ws_open(running.addr).await;
    for i in 1..=3 {
        let ws = if i < 3 { &mut a } else { &mut b };
        send(ws, &ClientMsg::Subscribe { view: tail(i) }).await;
        assert!(
            matches!(next_frame(ws).await.body, Body::Snapshot { .. }),
            "view {i} is within the quota"
        );
    }
    // A fifth for the address, on either connection: refused.
    send(&mut b, &ClientMsg::Subscribe { view: tail(4) }).await;
    match next_frame(&mut b).await.body {
        Body::Error { message } => assert!(message.contains("--ws-per-address"), "{message}"),
        other => panic!("expected an error frame, got {other:?}"),
    }
    // Subscribing again to a view it holds costs nothing.
    send(&mut b, &ClientMsg::Subscribe { view: tail(3) }).await;
    assert!(matches!(
        next_frame(&mut b).await.body,
        Body::Snapshot { .. }
    ));
    // Closing a connection gives its share back.
    a.close(None).await.expect("close");
    drop(a);
    within("the closed connection's share comes back", async {
        loop {
            send(&mut b, &ClientMsg::Subscribe { view: tail(5) }).await;
            if matches!(next_frame(&mut b).await.body, Body::Snapshot { .. }) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        running
            .stats
            .ws_quota_refused
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    let (_, metrics) = get(running.addr, "/metrics").await;
    assert!(
        metrics.contains("eventscope_ws_quota_refused_total "),
        "{metrics}"
    );
    drop(counts.close(None).await);
    running.stop().await;
    nats.stop().await;
}

/// Storms from one address are slowed, not served: subscribe-and-leave
/// past the address's allowance (its burst, then 100 a second) gets an
/// error frame; connect-and-leave past 64 at once (then 10 a second) gets
/// 429 before the handshake, with a JSON error, counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storms_from_one_address_are_slowed() {
    // A burst of 4 subscriptions (the harness's socket took one).
    let Harness {
        mut nats,
        running,
        ws: mut counts,
        ..
    } = with_quota_of_4("storm").await;

    // Subscribe and leave, 40 times, sent at once (never more than one
    // held): the allowance (3 left, then 100 a second) runs out. Each
    // subscribe is answered in order, with a snapshot or an error frame.
    let mut ws = ws_open(running.addr).await;
    for i in 0..40 {
        let view = View::Tail {
            filter: format!("subject=storm.s{i}"),
            limit: 5,
        };
        let key = view.key();
        send(&mut ws, &ClientMsg::Subscribe { view }).await;
        send(&mut ws, &ClientMsg::Unsubscribe { sub: key }).await;
    }
    let (mut served, mut slowed) = (0, 0);
    while served + slowed < 40 {
        match next_frame(&mut ws).await.body {
            Body::Snapshot { .. } => served += 1,
            Body::Error { message } => {
                assert!(message.contains("--ws-per-address"), "{message}");
                slowed += 1;
            }
            _ => {}
        }
    }
    assert!(served >= 3, "the allowance is served: {served}");
    assert!(slowed >= 10, "the storm is slowed: {slowed} of 40 refused");
    // After a pause the allowance is back.
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(
        &mut ws,
        &ClientMsg::Subscribe {
            view: View::Tail {
                filter: "subject=storm.after".to_string(),
                limit: 5,
            },
        },
    )
    .await;
    assert!(matches!(
        next_frame(&mut ws).await.body,
        Body::Snapshot { .. }
    ));

    // Connect and leave, 100 times: the first 64 or so are let in (the
    // harness's and the one above among them), the rest refused with 429.
    let url = format!("ws://{}/ws?v={}", running.addr, app::wire::PROTOCOL_VERSION);
    let mut refused = 0u64;
    let started = std::time::Instant::now();
    for _ in 0..100 {
        match tokio_tungstenite::connect_async(&url).await {
            Ok((mut c, _)) => drop(c.close(None).await),
            Err(e) => {
                let (status, error) = refusal(e);
                assert_eq!(status, 429, "{error}");
                assert!(error.contains("too fast"), "{error}");
                refused += 1;
            }
        }
    }
    // A burst of 64 (two of which the sockets above took), then 10 a
    // second for as long as the loop took.
    let refill = 10.0 * started.elapsed().as_secs_f64();
    assert!(
        (1..=38).contains(&refused) && refused as f64 >= 100.0 - 64.0 - refill - 1.0,
        "{refused} of 100 refused in {:?} (a burst of 64, then 10 a second)",
        started.elapsed()
    );
    let (_, metrics) = get(running.addr, "/metrics").await;
    assert!(
        metrics.contains(&format!("eventscope_ws_refused_total {refused}")),
        "{metrics}"
    );
    drop(ws.close(None).await);
    drop(counts.close(None).await);
    running.stop().await;
    nats.stop().await;
}

/// Past `--ws-max-clients` live connections, a new one is refused with
/// 503 and a JSON error, counted; one leaving makes room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_limit_a_new_socket_is_refused() {
    let Harness {
        mut nats,
        running,
        ws: counts,
        ..
    } = Harness::start(
        |url| {
            let mut c = Config::attach(url, &["cap.>"]);
            c.ws_max_clients = 4;
            c
        },
        "cap.probe",
    )
    .await;
    // The harness's socket and three more: the limit.
    let mut open = vec![counts];
    for _ in 0..3 {
        open.push(ws_open(running.addr).await);
    }
    let url = format!("ws://{}/ws?v={}", running.addr, app::wire::PROTOCOL_VERSION);
    let refused = |r: Result<_, tokio_tungstenite::tungstenite::Error>| {
        let Err(e) = r.map(drop) else {
            panic!("a fifth socket was let in past --ws-max-clients 4")
        };
        let (status, error) = refusal(e);
        assert_eq!(status, 503, "{error}");
        assert!(error.contains("4 live connections"), "{error}");
    };
    refused(tokio_tungstenite::connect_async(&url).await.map(drop));
    refused(tokio_tungstenite::connect_async(&url).await.map(drop));
    let (_, metrics) = get(running.addr, "/metrics").await;
    assert!(
        metrics.contains("eventscope_ws_refused_total 2"),
        "{metrics}"
    );
    // One leaves: once the server has seen it go, a new one is let in.
    let mut leaving = open.pop().expect("open");
    drop(leaving.close(None).await);
    within("a socket is let in after one left", async {
        loop {
            match tokio_tungstenite::connect_async(&url).await {
                Ok((ws, _)) => break open.push(ws),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    for mut ws in open {
        drop(ws.close(None).await);
    }
    running.stop().await;
    nats.stop().await;
}

/// A client holds 64 subscriptions at most: the 65th distinct view gets an
/// error frame naming it; after an unsubscribe there is room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_holds_64_subscriptions() {
    let Harness {
        mut nats,
        running,
        ws: counts,
        ..
    } = Harness::start(
        |url| {
            let mut c = Config::attach(url, &["subs.>"]);
            // No per-address limit: the per-client one is what is tested.
            c.ws_per_address = 0;
            c
        },
        "subs.probe",
    )
    .await;
    let mut ws = ws_open(running.addr).await;
    let view = |i: usize| View::Tail {
        filter: format!("subject=subs.s{i}"),
        limit: 5,
    };
    for i in 0..65 {
        send(&mut ws, &ClientMsg::Subscribe { view: view(i) }).await;
    }
    let (mut served, mut refused) = (0, Vec::new());
    while served + refused.len() < 65 {
        let frame = next_frame(&mut ws).await;
        match frame.body {
            Body::Snapshot { .. } => served += 1,
            Body::Error { message } => refused.push((frame.sub, message)),
            _ => {}
        }
    }
    assert_eq!(served, 64);
    assert_eq!(refused.len(), 1, "{refused:?}");
    let (sub, message) = &refused[0];
    assert_eq!(sub.as_deref(), Some(view(64).key().as_str()));
    assert!(message.contains("64 subscriptions"), "{message}");
    // One let go: the 65th fits.
    send(&mut ws, &ClientMsg::Unsubscribe { sub: view(0).key() }).await;
    send(&mut ws, &ClientMsg::Subscribe { view: view(64) }).await;
    loop {
        match next_frame(&mut ws).await.body {
            Body::Snapshot { .. } => break,
            Body::Error { message } => panic!("refused after an unsubscribe: {message}"),
            _ => {}
        }
    }
    drop(ws.close(None).await);
    drop(counts);
    running.stop().await;
    nats.stop().await;
}

/// `--ws-per-address 0` lifts the per-address limits: 100 connections
/// made at once and 300 subscriptions held from one address (past the
/// default's burst of 64 and hold of 256) are all served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_per_address_limits_with_0() {
    let Harness {
        mut nats,
        running,
        ws: counts,
        ..
    } = Harness::start(
        |url| {
            let mut c = Config::attach(url, &["open.>"]);
            c.ws_per_address = 0;
            c
        },
        "open.probe",
    )
    .await;
    let mut sockets = Vec::new();
    for _ in 0..100 {
        sockets.push(ws_open(running.addr).await);
    }
    // 60 subscriptions on each of 5 of them.
    for (s, ws) in sockets.iter_mut().take(5).enumerate() {
        for i in 0..60 {
            let view = View::Tail {
                filter: format!("subject=open.s{s}x{i}"),
                limit: 1,
            };
            send(ws, &ClientMsg::Subscribe { view }).await;
        }
        let mut served = 0;
        while served < 60 {
            match next_frame(ws).await.body {
                Body::Snapshot { .. } => served += 1,
                Body::Error { message } => panic!("refused: {message}"),
                _ => {}
            }
        }
    }
    let (_, metrics) = get(running.addr, "/metrics").await;
    assert!(
        metrics.contains("eventscope_ws_refused_total 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("eventscope_ws_quota_refused_total 0\n"),
        "{metrics}"
    );
    for mut ws in sockets {
        drop(ws.close(None).await);
    }
    drop(counts);
    running.stop().await;
    nats.stop().await;
}
