//! A NATS that is down when eventscope starts, and comes up later, is
//! connected to without a restart; readiness follows the connection.

mod common;

use common::*;
use eventscope::config::Config;
use eventscope::demo::managed_nats::free_port;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_when_nats_comes_up_later() {
    let port = free_port().expect("free port");
    let url = format!("nats://127.0.0.1:{port}");
    let running = eventscope::start(Config::attach(url.clone(), &["late.>"]))
        .await
        .expect("starts without NATS");

    let (status, body) = get(running.addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(running.addr, "/readyz").await;
    assert_eq!(status, 503, "not ready without NATS: {body}");
    assert!(body.contains(&url), "readyz names the URL: {body}");

    let mut ws = ws_connect(running.addr).await;
    let mut mirror = Mirror::default();
    mirror.apply(next_frame(&mut ws).await);
    assert!(!mirror.state.nats_connected);

    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut nats = nats_server(Some(port)).await;

    mirror
        .until(&mut ws, "server connects once NATS is up", |s| {
            s.nats_connected
        })
        .await;
    within("readyz turns 200", async {
        while get(running.addr, "/readyz").await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    let client = publisher(&nats.url()).await;
    let probes = wait_subscribed(&client, &mut ws, &mut mirror, "late.probe").await;
    for _ in 0..42 {
        client
            .publish("late.x", "{}".into())
            .await
            .expect("publish");
    }
    within("flush", client.flush()).await.expect("flush");
    mirror
        .until(&mut ws, "42 events counted", |s| s.total >= 42 + probes)
        .await;
    assert_eq!(mirror.count("late.x"), 42);

    running.stop().await;
    nats.stop().await;
}

/// `--demo` beside `--nats-url`: the demo producer publishes to the given
/// NATS, and its events are ingested like anyone's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_producer_publishes_to_a_given_nats() {
    let mut nats = nats_server(None).await;
    let mut config = Config::attach(nats.url(), &["logs.>", "metrics.>"]);
    config.demo = true;
    config.demo_rate = 400;
    let running = eventscope::start(config).await.expect("starts");
    let mut ws = ws_connect(running.addr).await;
    let mut mirror = Mirror::default();
    mirror.apply(next_frame(&mut ws).await);
    mirror
        .until(&mut ws, "demo logs and metrics", |s| {
            s.subjects.keys().any(|k| k.starts_with("logs."))
                && s.subjects.keys().any(|k| k.starts_with("metrics."))
        })
        .await;
    running.stop().await;
    nats.stop().await;
}
