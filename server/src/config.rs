//! Command-line flags and their environment variables. Every flag has an
//! `EVENTSCOPE_*` variable of the same meaning; a flag wins over its variable.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Eventscope: a live dashboard for event-driven systems on NATS.
///
/// With no NATS URL it runs in demo mode: it starts a managed local
/// nats-server (JetStream on, data in a temporary folder, stopped on exit)
/// and a built-in producer of log and metric events, so the dashboard has
/// something to show. Give --nats-url to watch your own NATS instead.
#[derive(Debug, Clone, Parser)]
#[command(name = "eventscope", version, about, long_about)]
pub struct Config {
    /// NATS server to attach to (e.g. nats://127.0.0.1:4222). Without it,
    /// Eventscope starts its own nats-server and the demo producer.
    #[arg(long, env = "EVENTSCOPE_NATS_URL", value_name = "URL")]
    pub nats_url: Option<String>,

    /// Core NATS subject to watch, wildcards allowed (`logs.>`,
    /// `metrics.*.cpu`). Repeat the flag for several; in the variable,
    /// separate them with commas. Default: `>` (everything), unless
    /// --stream is given.
    #[arg(
        long = "subject",
        env = "EVENTSCOPE_SUBJECTS",
        value_delimiter = ',',
        value_name = "SUBJECT"
    )]
    pub subjects: Vec<String>,

    /// JetStream stream to read, with a start point: `NAME` (new messages
    /// only), `NAME@all`, `NAME@seq:1200` or `NAME@time:2026-11-26T06:00:00Z`.
    /// Read with an ordered consumer that resumes where it stopped after a
    /// NATS restart. Repeatable; comma-separated in the variable.
    #[arg(
        long = "stream",
        env = "EVENTSCOPE_STREAMS",
        value_delimiter = ',',
        value_name = "STREAM[@START]"
    )]
    pub streams: Vec<crate::ingest::jetstream::StreamSource>,

    /// Address the web UI, API and WebSocket listen on.
    #[arg(long, env = "EVENTSCOPE_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Run the demo producer even though --nats-url is given (it publishes
    /// to `logs.<service>` and `metrics.<service>` on that NATS).
    #[arg(long, env = "EVENTSCOPE_DEMO")]
    pub demo: bool,

    /// Events per second the demo producer publishes.
    #[arg(long, env = "EVENTSCOPE_DEMO_RATE", default_value_t = 200)]
    pub demo_rate: u32,

    /// The nats-server binary for demo mode. Default: `nats-server` on PATH,
    /// then the copy `scripts/setup.sh` installs under ~/.cache/eventscope.
    #[arg(long, env = "EVENTSCOPE_NATS_SERVER", value_name = "PATH")]
    pub nats_server_bin: Option<PathBuf>,

    /// Folder holding the built site (the wasm bundle, CSS and assets) that
    /// `cargo leptos build` writes.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Byte cap of the in-memory event log (payloads, index and
    /// dictionaries); the oldest events are evicted past it. Accepts sizes
    /// such as `512MiB` or `2GB`.
    #[arg(long, env = "EVENTSCOPE_STORE_BYTES", default_value = "512MiB")]
    pub store_bytes: bytesize::ByteSize,

    /// How often the live hub sends deltas to browsers, in milliseconds.
    #[arg(long, env = "EVENTSCOPE_TICK_MS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub tick_ms: u64,
}

impl Config {
    /// Demo mode: no NATS given, so run our own (and the producer).
    pub fn managed_nats(&self) -> bool {
        self.nats_url.is_none()
    }

    /// Whether the demo producer runs.
    pub fn demo_producer(&self) -> bool {
        self.managed_nats() || self.demo
    }

    /// The core subjects to subscribe to: those given, or `>` when neither
    /// subjects nor streams were given. (Not `>` beside a stream: the
    /// stream's messages would arrive twice, once over core NATS.)
    pub fn core_subjects(&self) -> Vec<String> {
        if self.subjects.is_empty() && self.streams.is_empty() {
            vec![">".to_string()]
        } else {
            self.subjects.clone()
        }
    }

    /// The hub's tick.
    pub fn tick(&self) -> Duration {
        Duration::from_millis(self.tick_ms)
    }

    /// A configuration for tests and embedding: attach to `nats_url`, watch
    /// `subjects`, listen on an ephemeral port, no demo.
    pub fn attach(nats_url: impl Into<String>, subjects: &[&str]) -> Self {
        Config {
            nats_url: Some(nats_url.into()),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            streams: Vec::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            demo: false,
            demo_rate: 200,
            nats_server_bin: None,
            site_root: PathBuf::from("target/site"),
            tick_ms: 100,
            store_bytes: bytesize::ByteSize::mib(64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_arguments_means_demo_mode() {
        let c = Config::try_parse_from(["eventscope"]).expect("parses");
        assert!(c.managed_nats() && c.demo_producer());
        assert_eq!(c.core_subjects(), vec![">".to_string()]);
        assert_eq!(c.addr.port(), 3000);
    }

    #[test]
    fn nats_url_turns_demo_off_unless_asked() {
        let c = Config::try_parse_from(["eventscope", "--nats-url", "nats://h:1"]).expect("parses");
        assert!(!c.managed_nats() && !c.demo_producer());
        let c = Config::try_parse_from(["eventscope", "--nats-url", "nats://h:1", "--demo"])
            .expect("parses");
        assert!(c.demo_producer());
    }

    #[test]
    fn subjects_repeat() {
        let c = Config::try_parse_from(["eventscope", "--subject", "logs.>", "--subject", "m.*"])
            .expect("parses");
        assert_eq!(c.subjects, vec!["logs.>", "m.*"]);
    }

    #[test]
    fn a_stream_alone_subscribes_to_no_core_subject() {
        let c = Config::try_parse_from(["eventscope", "--stream", "ORDERS@all"]).expect("parses");
        assert!(c.core_subjects().is_empty());
        assert_eq!(c.streams[0].stream, "ORDERS");
        let err =
            Config::try_parse_from(["eventscope", "--stream", "ORDERS@soon"]).expect_err("refused");
        assert!(err.to_string().contains("--stream"), "{err}");
    }

    #[test]
    fn store_size_takes_units() {
        let c = Config::try_parse_from(["eventscope", "--store-bytes", "2GiB"]).expect("parses");
        assert_eq!(c.store_bytes.as_u64(), 2 << 30);
        let err =
            Config::try_parse_from(["eventscope", "--store-bytes", "lots"]).expect_err("refused");
        assert!(err.to_string().contains("--store-bytes"), "{err}");
    }

    #[test]
    fn bad_tick_is_refused_with_the_flag_named() {
        let err = Config::try_parse_from(["eventscope", "--tick-ms", "0"]).expect_err("refused");
        assert!(err.to_string().contains("--tick-ms"), "{err}");
    }
}
