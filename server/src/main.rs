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

    match &config.command {
        Some(eventscope::config::Command::Demo) => return run_demo(config, signals).await,
        Some(eventscope::config::Command::HashPassword { name, role }) => {
            return hash_password(name, *role);
        }
        Some(eventscope::config::Command::NewToken { name, role }) => {
            return new_token(name, *role);
        }
        None => {}
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

/// `eventscope hash-password`: reads a password from standard input (one
/// line) and prints its `[[users]]` entry.
fn hash_password(name: &str, role: eventscope::access::Role) -> anyhow::Result<()> {
    use std::io::BufRead as _;
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!("Type the password, then Enter (it is shown as you type):");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    if password.len() > eventscope::access::users::MAX_PASSWORD {
        anyhow::bail!(
            "the password has more than {} bytes",
            eventscope::access::users::MAX_PASSWORD
        );
    }
    let hash = eventscope::access::users::hash_password(password).map_err(anyhow::Error::msg)?;
    println!(
        "[[users]]\nname = {}\npassword_hash = \"{hash}\"\nrole = \"{}\"",
        toml_string(name),
        role.name()
    );
    Ok(())
}

/// `eventscope new-token`: prints a new token and its `[[tokens]]` entry.
fn new_token(name: &str, role: eventscope::access::Role) -> anyhow::Result<()> {
    let token = eventscope::access::users::random_token();
    println!(
        "# The token, for the script's `Authorization: Bearer` header (kept nowhere else):\n\
         # {token}\n\
         [[tokens]]\nname = {}\nsha256 = \"{}\"\nrole = \"{}\"",
        toml_string(name),
        eventscope::access::users::token_sha256(&token),
        role.name()
    );
    Ok(())
}

/// `s` as a TOML string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
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
