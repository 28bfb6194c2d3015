//! The demo producer from the outside, against a real nats-server: the
//! `eventscope demo --nats-url URL` subcommand (the binary itself) publishes
//! the scenarios it is given, and `PUT /api/v1/demo` changes rates while a
//! dashboard runs its demo, refusing what it cannot do with a clear error.

mod common;

use app::api::{ApiError, DemoState};
use common::*;
use eventscope::config::Config;
use futures::StreamExt;
use std::process::Stdio;
use std::time::Duration;

fn header(m: &async_nats::Message, name: &str) -> Option<String> {
    m.headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_subcommand_publishes_its_scenarios_to_the_given_nats() {
    let nats = nats_server(None).await;
    let client = publisher(&nats.url()).await;
    let mut sub = client.subscribe(">").await.expect("subscribe");
    client.flush().await.expect("flush");
    let mut producer = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventscope"))
        .args([
            "demo",
            "--nats-url",
            &nats.url(),
            "--demo-scenario",
            "saga=20",
        ])
        .env("EVENTSCOPE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("eventscope demo starts");
    // Only the saga runs: orders with a correlation id, the fraud check as
    // a request with a reply inbox, and the services' logs; no fan-out, no
    // accounts, no background metrics (NATS's own subjects aside).
    let (mut placed, mut asked, mut other) = (0, 0, Vec::new());
    within("saga traffic", async {
        while placed < 5 || asked < 5 {
            let m = sub.next().await.expect("messages");
            let subject = m.subject.as_str();
            if subject == "orders.placed" {
                assert!(header(&m, "Nats-Correlation-Id").is_some_and(|c| c.starts_with("ord-")));
                placed += 1;
            } else if subject == "fraud.check" {
                let reply = m.reply.as_ref().map(|r| r.to_string());
                assert!(reply.is_some_and(|r| r.starts_with("_INBOX.payments.")));
                asked += 1;
            } else if !(subject.starts_with("orders.")
                || subject.starts_with("payments.")
                || subject.starts_with("inventory.")
                || subject.starts_with("shipping.")
                || subject.starts_with("logs.")
                || subject.starts_with("_INBOX.")
                // The producer sets up its JetStream stream and consumer
                // whatever runs.
                || subject.starts_with('$'))
            {
                other.push(subject.to_string());
            }
        }
    })
    .await;
    assert_eq!(other, Vec::<String>::new(), "only the saga's subjects");
    producer.kill().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_subcommand_without_a_nats_url_says_what_to_give() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventscope"))
        .arg("demo")
        .env_remove("EVENTSCOPE_NATS_URL")
        .output();
    let out = within("eventscope demo exits", out).await.expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--nats-url"), "{err}");
}

async fn put(addr: std::net::SocketAddr, body: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .put(format!("http://{addr}/api/v1/demo"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send();
    let resp = within("http put", resp).await.expect("http put");
    let status = resp.status().as_u16();
    (status, within("body", resp.text()).await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_rates_change_over_the_api_and_bad_requests_are_refused() {
    let nats = nats_server(None).await;
    let mut config = Config::attach(nats.url(), &["demo.none"]);
    config.demo = true;
    config.demo_scenarios = vec![
        "saga=0".parse().expect("arg"),
        "logs=0".parse().expect("arg"),
    ];
    let running = eventscope::start(config).await.expect("app starts");
    let addr = running.addr;
    let rate =
        |s: &DemoState, name: &str| s.scenarios.iter().find(|x| x.name == name).map(|x| x.rate);
    let (status, before): (u16, DemoState) = json(addr, "/api/v1/demo").await;
    assert_eq!(status, 200);
    assert!(before.running);
    assert_eq!(rate(&before, "saga"), Some(0.0));

    let (status, body) = put(addr, r#"{"rates":{"saga":7,"logs":0}}"#).await;
    assert_eq!(status, 200, "{body}");
    let answered: DemoState = serde_json::from_str(&body).expect("demo state");
    assert_eq!(rate(&answered, "saga"), Some(7.0));
    let (_, after): (u16, DemoState) = json(addr, "/api/v1/demo").await;
    assert_eq!(rate(&after, "saga"), Some(7.0));
    // The producer runs at the new rate: flows start.
    within("sagas start", async {
        loop {
            let (_, s): (u16, DemoState) = json(addr, "/api/v1/demo").await;
            if s.scenarios
                .iter()
                .any(|x| x.name == "saga" && x.started > 0)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;

    for (body, says) in [
        (
            r#"{"rates":{"sagas":1}}"#,
            "no demo scenario \"sagas\"; there are: saga, fanout",
        ),
        (r#"{"rates":{"saga":-1}}"#, "outside 0..=100000"),
        (r#"{"rate":{"saga":1}}"#, "must be JSON such as"),
        ("saga=1", "must be JSON such as"),
    ] {
        let (status, text) = put(addr, body).await;
        assert_eq!(status, 400, "{body}: {text}");
        let err: ApiError = serde_json::from_str(&text).expect("an error body");
        assert!(err.error.contains(says), "{body}: {}", err.error);
    }
    // A refused request changes nothing, not even its valid part.
    let (status, _) = put(addr, r#"{"rates":{"logs":5,"nope":1}}"#).await;
    assert_eq!(status, 400);
    let (_, now): (u16, DemoState) = json(addr, "/api/v1/demo").await;
    assert_eq!(rate(&now, "logs"), Some(0.0));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_rates_cannot_change_where_no_demo_runs() {
    let nats = nats_server(None).await;
    let running = eventscope::start(Config::attach(nats.url(), &["x.>"]))
        .await
        .expect("app starts");
    let (status, state): (u16, DemoState) = json(running.addr, "/api/v1/demo").await;
    assert_eq!(status, 200);
    assert!(!state.running);
    let (status, text) = put(running.addr, r#"{"rates":{"saga":1}}"#).await;
    assert_eq!(status, 409, "{text}");
    let err: ApiError = serde_json::from_str(&text).expect("an error body");
    assert!(err.error.contains("not running here"), "{}", err.error);
    running.stop().await;
}
