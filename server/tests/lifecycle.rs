//! The process's life: a bounded stop, a managed nats-server that outlives
//! the thread that started it, readiness that follows the live hub, and a
//! task that ends early reported rather than hidden.

mod common;

use common::*;
use eventscope::config::Config;
use eventscope::demo::managed_nats::{ManagedNats, free_port};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// `PR_SET_PDEATHSIG` fires when the thread that forked the child ends: a
/// server spawned from a thread that then ends must live on.
#[test]
fn the_managed_server_outlives_the_thread_that_started_it() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let handle = runtime.handle().clone();
    let port = free_port().expect("port");
    let mut nats = std::thread::spawn(move || {
        handle
            .block_on(ManagedNats::start(&nats_bin(), port))
            .expect("nats-server starts")
    })
    .join()
    .expect("the starting thread ends");
    // The kernel's signal, had it come, lands at once; give it time.
    std::thread::sleep(Duration::from_millis(500));
    runtime.block_on(async {
        assert!(
            !nats.exited(),
            "nats-server died with the thread that started it"
        );
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("nats-server still accepts connections");
        nats.stop().await;
    });
}

/// A hub that stops turning (here: waiting for the log, which a reader
/// holds) makes `/readyz` answer 503 and say so; it is ready again once the
/// hub turns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_live_hub() {
    let mut nats = nats_server(None).await;
    let running = eventscope::start(Config::attach(nats.url(), &["ready.>"]))
        .await
        .expect("app starts");
    within("ready", async {
        while get(running.addr, "/readyz").await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    // Hold the log: the hub's next fold waits for it.
    let (held, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let store = std::sync::Arc::clone(&running.store);
    let holder = std::thread::spawn(move || {
        let _held = store.read();
        held.0.send(()).expect("signal");
        release.1.recv().ok();
    });
    held.1.recv().expect("the log is held");
    let client = publisher(&nats.url()).await;
    client
        .publish("ready.x", "{}".into())
        .await
        .expect("publish");
    client.flush().await.expect("flush");
    let (status, body) = within("readyz says the hub is stuck", async {
        loop {
            let (status, body) = get(running.addr, "/readyz").await;
            if status != 200 {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    assert_eq!(status, 503);
    assert!(body.contains("live hub has not turned"), "{body}");
    release.0.send(()).expect("release");
    holder.join().expect("holder");
    within("ready again", async {
        while get(running.addr, "/readyz").await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    running.stop().await;
    nats.stop().await;
}

/// A task the server needs that ends (here: core ingest, which cannot
/// subscribe) is reported by `Running::failed`, which the binary turns
/// into an exit with an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_ends_early_is_reported() {
    let mut nats = nats_server(None).await;
    let mut running = eventscope::start(Config::attach(nats.url(), &["not a subject"]))
        .await
        .expect("app starts");
    let why = tokio::time::timeout(Duration::from_secs(20), running.failed())
        .await
        .expect("the failed ingest is reported");
    // Ingest ends, and with its queue closed the hub ends too: either may
    // be seen first.
    assert!(
        why == "core NATS ingest stopped" || why == "the live hub stopped",
        "{why}"
    );
    running.stop().await;
    nats.stop().await;
}

/// SIGTERM ends the binary within 10 s although NATS is unreachable, the
/// demo producer is blocked publishing into a client that cannot send (its
/// buffer full after a few seconds at 20,000 messages a second), and an
/// HTTP client has sent half a request (the graceful stop waits for it:
/// without the stop's deadline this fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_process_in_bounded_time_with_nats_down() {
    let port = free_port().expect("port");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventscope"))
        .args([
            "--nats-url",
            &format!("nats://127.0.0.1:{port}"),
            "--demo",
            "--demo-rate",
            "20000",
            "--addr",
            "127.0.0.1:0",
        ])
        .env("EVENTSCOPE_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("eventscope starts");
    // Long enough for the producer's JetStream set-up to time out and its
    // publishes to fill the client's buffer.
    tokio::time::sleep(Duration::from_secs(8)).await;
    // And a client that sends half a request and never the rest: the HTTP
    // server's graceful stop would wait for it for ever.
    // (The log is read to its end, so the process never waits to write.)
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let log = tokio::spawn(async move {
        let (mut tx, mut aborted) = (Some(tx), Vec::new());
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("aborted") {
                aborted.push(line.clone());
            }
            if let Some(at) = line.find("http://") {
                let rest = &line[at + 7..];
                let end = rest
                    .find(|c: char| c == '/' || c.is_whitespace() || c == '\x1b')
                    .unwrap_or(rest.len());
                if let Some(tx) = tx.take() {
                    let _ = tx.send(rest[..end].to_string());
                }
            }
        }
        aborted
    });
    let addr = within("the HTTP address is logged", rx)
        .await
        .expect("logged");
    let mut loris = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connects");
    loris
        .write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("half a request");
    assert!(child.try_wait().expect("wait").is_none(), "still running");
    let pid = child.id().expect("pid") as i32;
    #[allow(unsafe_code)]
    // SAFETY: kill(2) on our own child's pid, which has not been reaped.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0);
    let asked = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(12), child.wait())
        .await
        .expect("the process ends within 12 s of SIGTERM")
        .expect("status");
    let took = asked.elapsed();
    assert!(took <= Duration::from_secs(10), "took {took:?}");
    assert!(status.success(), "{status:?}");
    // The stop's deadline passed with the HTTP server still waiting for
    // the half request: the log names what was aborted.
    let aborted = within("the log ends", log).await.expect("read the log");
    assert!(
        aborted.iter().any(|l| l.contains("the HTTP server")),
        "{aborted:?}"
    );
    drop(loris);
}
