//! The `eventscope` binary: parses the command line, sets up logging, starts
//! the server and stops it cleanly on ctrl-c or SIGTERM.

use eventscope::config::Config;
use tracing_subscriber::EnvFilter;

/// mimalloc: the event path allocates small strings and buffers on every
/// worker thread; glibc's malloc spent about a quarter of the hub's time in
/// its own bookkeeping (docs/PERFORMANCE.md, stop 15).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = match Config::load_from(std::env::args_os()) {
        Ok(c) => c,
        // --help, --version and flag errors print themselves, as clap does.
        Err(eventscope::config::ConfigError::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("eventscope: {e}");
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("EVENTSCOPE_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,async_nats=warn")),
        )
        .init();
    let mut signals = Signals::listen();

    if config.command == Some(eventscope::config::Command::Demo) {
        return run_demo(config, signals).await;
    }
    let demo = config.managed_nats();
    let mut running = eventscope::start(config).await?;
    tracing::info!(
        url = %format!("http://{}", running.addr),
        nats = %eventscope::ingest::redact_url(&running.nats_url),
        demo,
        "eventscope is serving: open the url in a browser"
    );
    let failure = tokio::select! {
        _ = signals.next() => None,
        why = running.failed() => Some(why),
    };
    match &failure {
        None => tracing::info!("shutting down"),
        Some(why) => tracing::error!(
            %why,
            "a task the server needs has ended: exiting rather than serving data that no longer moves"
        ),
    }
    exit_within(EXIT_WITHIN);
    tokio::select! {
        _ = running.stop() => {}
        _ = signals.next() => {
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        }
    }
    match failure {
        None => Ok(()),
        Some(why) => Err(anyhow::anyhow!(why)),
    }
}

/// `eventscope demo`: the demo producer alone, against --nats-url.
async fn run_demo(config: Config, mut signals: Signals) -> anyhow::Result<()> {
    let Some(url) = config.nats_url.clone() else {
        eprintln!(
            "eventscope demo: give the NATS to publish to with --nats-url (e.g. nats://127.0.0.1:4222)"
        );
        std::process::exit(2);
    };
    let client = eventscope::ingest::connect(
        &url,
        "eventscope-demo",
        &config.auth,
        eventscope::ingest::ClientBuffer::default(),
        std::sync::Arc::new(eventscope::stats::Stats::default()),
    )
    .await?;
    let control = std::sync::Arc::new(eventscope::demo::producer::DemoControl::new(
        &config.demo_rates(),
    ));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let producer = tokio::spawn(eventscope::demo::producer::run(
        client,
        control,
        eventscope::event::now_ms() as u64,
        shutdown.clone(),
    ));
    tracing::info!(
        nats = %eventscope::ingest::redact_url(&url),
        "demo producer running; ctrl-c stops it"
    );
    signals.next().await;
    shutdown.cancel();
    let _ = producer.await;
    Ok(())
}

/// The most a stop takes from the signal to the process's end, whatever a
/// task or the runtime's blocking pool is doing (NATS down, a publish
/// waiting for room, a long query).
const EXIT_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Ends the process `after` from now if it has not ended by then: a
/// plain thread, so it fires even if every runtime worker is stuck.
fn exit_within(after: std::time::Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(after);
        eprintln!("eventscope: did not stop within {after:?}; exiting");
        std::process::exit(1);
    });
}

/// SIGTERM and ctrl-c, listened for from the start: a signal that comes
/// while the server starts (or just after it says it serves) stops it
/// cleanly rather than killing it.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn listen() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| {
                signal(kind)
                    .map_err(|e| tracing::error!(error = %e, "cannot listen for {name}"))
                    .ok()
            };
            Signals {
                term: listen(SignalKind::terminate(), "SIGTERM"),
                int: listen(SignalKind::interrupt(), "ctrl-c"),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = recv(&mut self.term) => {},
                _ = recv(&mut self.int) => {},
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
