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

/// The eventscope binary, run with `args`: its HTTP address (read from its
/// log, which is read to its end so the process never waits to write) and
/// the log lines that name what a stop aborted.
struct Binary {
    child: tokio::process::Child,
    addr: String,
    aborted: tokio::task::JoinHandle<Vec<String>>,
}

impl Binary {
    async fn start(args: &[&str]) -> Binary {
        Binary::start_with(args, &[]).await
    }

    /// The same with `vars` set in its environment.
    async fn start_with(args: &[&str], vars: &[(&str, &str)]) -> Binary {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventscope"))
            .args(args)
            .envs(vars.iter().copied())
            .args(["--addr", "127.0.0.1:0"])
            .env("EVENTSCOPE_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("eventscope starts");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let aborted = tokio::spawn(async move {
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
        Binary {
            child,
            addr,
            aborted,
        }
    }

    /// A client that sends half a request and never the rest: the HTTP
    /// server's graceful stop would wait for it for ever.
    async fn hold_half_a_request(&self) -> tokio::net::TcpStream {
        let mut loris = tokio::net::TcpStream::connect(&self.addr)
            .await
            .expect("connects");
        loris
            .write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .expect("half a request");
        // Time for the server to take the connection from the listen
        // queue and read what came (one still queued is simply shut).
        tokio::time::sleep(Duration::from_secs(1)).await;
        loris
    }

    fn signal(&self, signal: i32) {
        let pid = self.child.id().expect("running") as i32;
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on our own child's pid, which has not been reaped.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0);
    }

    /// Its exit status, and how long after `since` it came (12 s at most).
    async fn ended(&mut self, since: Instant) -> (std::process::ExitStatus, Duration) {
        let status = tokio::time::timeout(Duration::from_secs(12), self.child.wait())
            .await
            .expect("the process ends within 12 s")
            .expect("status");
        (status, since.elapsed())
    }
}

/// SIGTERM ends the binary within 10 s although NATS is unreachable, the
/// demo producer is blocked publishing into a client that cannot send (its
/// buffer full after a few seconds at 20,000 messages a second), and an
/// HTTP client has sent half a request (the graceful stop waits for it:
/// without the stop's deadline this fails). The log names what the
/// deadline aborted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_process_in_bounded_time_with_nats_down() {
    let port = free_port().expect("port");
    let url = format!("nats://127.0.0.1:{port}");
    let mut bin = Binary::start(&["--nats-url", &url, "--demo", "--demo-rate", "20000"]).await;
    // Long enough for the producer's JetStream set-up to time out and its
    // publishes to fill the client's buffer.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let loris = bin.hold_half_a_request().await;
    assert!(
        bin.child.try_wait().expect("wait").is_none(),
        "still running"
    );
    bin.signal(libc::SIGTERM);
    let (status, took) = bin.ended(Instant::now()).await;
    assert!(took <= Duration::from_secs(10), "took {took:?}");
    assert!(status.success(), "{status:?}");
    let aborted = within("the log ends", bin.aborted)
        .await
        .expect("read the log");
    assert!(
        aborted.iter().any(|l| l.contains("the HTTP server")),
        "{aborted:?}"
    );
    drop(loris);
}

/// A second signal during a stop ends the process at once (status 130),
/// not when the stop's deadline passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_ends_the_process_at_once() {
    let port = free_port().expect("port");
    let url = format!("nats://127.0.0.1:{port}");
    let mut bin = Binary::start(&["--nats-url", &url]).await;
    // The graceful stop then waits its full 6 s.
    let loris = bin.hold_half_a_request().await;
    bin.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        bin.child.try_wait().expect("wait").is_none(),
        "still stopping"
    );
    let second = Instant::now();
    bin.signal(libc::SIGTERM);
    let (status, took) = bin.ended(second).await;
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(
        took < Duration::from_secs(2),
        "took {took:?} after the second signal"
    );
    drop(loris);
}

/// Demo mode's managed nats-server dies with an eventscope that is killed
/// (SIGKILL: no stop runs), rather than living on as an orphan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_eventscope_leaves_no_nats_server_behind() {
    let bin_path = nats_bin();
    let mut bin = Binary::start(&[
        "--demo",
        "--nats-server-bin",
        bin_path.to_str().expect("utf-8 path"),
    ])
    .await;
    let pid = bin.child.id().expect("running");
    // Its children, as the kernel lists them per thread.
    let children = || -> Vec<u32> {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|c| {
                c.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect()
    };
    let nats = within("the managed nats-server runs", async {
        loop {
            if let Some(&c) = children().iter().find(|&&c| {
                std::fs::read_to_string(format!("/proc/{c}/comm"))
                    .is_ok_and(|n| n.starts_with("nats-server"))
            }) {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    bin.signal(libc::SIGKILL);
    let _ = bin.ended(Instant::now()).await;
    // Gone, or a zombie waiting for whoever inherited it to reap it.
    let alive = || {
        std::fs::read_to_string(format!("/proc/{nats}/stat")).is_ok_and(|stat| {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        })
    };
    within("the nats-server ends with it", async {
        while alive() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// A variable is read (a bad one refuses to start, saying what it read),
/// and a flag given beside it wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_wins_over_its_variable() {
    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventscope"))
        .env("EVENTSCOPE_TICK_MS", "3")
        .output()
        .await
        .expect("runs");
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("tick-ms") && said.contains('3'), "{said}");
    // The same variable with the flag: the flag's value, and it runs.
    let port = free_port().expect("port");
    let url = format!("nats://127.0.0.1:{port}");
    let mut bin = Binary::start_with(
        &["--nats-url", &url, "--tick-ms", "50"],
        &[("EVENTSCOPE_TICK_MS", "3")],
    )
    .await;
    bin.signal(libc::SIGTERM);
    let (status, _) = bin.ended(Instant::now()).await;
    assert!(status.success(), "{status:?}");
}
