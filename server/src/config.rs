//! Configuration: command-line flags, their `EVENTSCOPE_*` environment
//! variables, and a TOML file (`--config`) with the same keys (the flag's
//! long name with `_` for `-`, `subjects` and `streams` as arrays) plus what
//! only a file can say: `[[decode]]` overrides. Precedence: flag, then
//! variable, then file, then default. A bad key or value in the file is
//! refused with the file and the key named.

use crate::demo::scenarios::Scenario;
use crate::ingest::decode::Mapping;
use crate::projection::cqrs::CqrsPair;
use crate::projection::custom::ProjectionDef;
use crate::projection::flows::FlowRules;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use serde::Deserialize;
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
    #[arg(long, env = "EVENTSCOPE_NATS_URL", value_name = "URL", global = true)]
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

    /// Read the streams with a durable consumer of this name (one per
    /// stream) instead of an ephemeral one: the server remembers what was
    /// acknowledged, so a restarted Eventscope continues where it stopped.
    #[arg(long, env = "EVENTSCOPE_DURABLE", value_name = "NAME")]
    pub durable: Option<String>,

    /// Address the web UI, API and WebSocket listen on.
    #[arg(long, env = "EVENTSCOPE_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Another web origin allowed to open the live WebSocket (the server's
    /// own always is), e.g. `https://ops.example`. Repeatable.
    #[arg(
        long = "allowed-origin",
        env = "EVENTSCOPE_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Who may use Eventscope: `none` (nobody signs in; refused on an
    /// address other than loopback unless --insecure-no-auth) or `users`
    /// (local users and API tokens from the config file's `[[users]]` and
    /// `[[tokens]]`; docs/SECURITY.md).
    #[arg(
        long = "auth",
        id = "auth_mode",
        env = "EVENTSCOPE_AUTH",
        value_enum,
        default_value = "none",
        value_name = "MODE"
    )]
    pub auth_mode: crate::access::AuthMode,

    /// Serve with no sign-in on an address other than loopback: anyone who
    /// reaches the port reads every event and changes the demo. Only for
    /// a network where that is wanted.
    #[arg(long, env = "EVENTSCOPE_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,

    /// Also publish each audit record (sign-ins, refusals, changes) to the
    /// NATS being watched, on `eventscope.audit.<action>`, for other tools
    /// to keep; this instance does not take its own records in twice.
    #[arg(long, env = "EVENTSCOPE_AUDIT_TO_NATS")]
    pub audit_to_nats: bool,

    /// A host name the server is reached by, besides IP addresses and
    /// `localhost` (the name behind a reverse proxy, e.g.
    /// `eventscope.example.com`): a request naming any other host is
    /// refused, against DNS rebinding. Repeatable.
    #[arg(
        long = "public-name",
        env = "EVENTSCOPE_PUBLIC_NAMES",
        value_delimiter = ',',
        value_name = "HOST"
    )]
    pub public_names: Vec<String>,

    /// The secret that signs and encrypts session cookies (32 bytes or
    /// more); instances sharing it serve the same users. Default: a random
    /// one at each start (sign-ins end with the process). Prefer the
    /// variable or the file to the flag, which `ps` shows.
    #[arg(
        long,
        env = "EVENTSCOPE_SESSION_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub session_secret: Option<Secret>,

    /// Hours a sign-in lasts.
    #[arg(long, env = "EVENTSCOPE_SESSION_HOURS", default_value_t = 12, value_name = "HOURS",
          value_parser = clap::value_parser!(u32).range(1..=720))]
    pub session_hours: u32,

    /// Local users (`[[users]]` in the config file only).
    #[arg(skip)]
    pub users: Vec<crate::access::users::UserEntry>,

    /// API tokens (`[[tokens]]` in the config file only).
    #[arg(skip)]
    pub tokens: Vec<crate::access::users::TokenEntry>,

    /// The reverse proxy trusted with `--auth proxy` (`[proxy]` in the
    /// config file only).
    #[arg(skip)]
    pub proxy: Option<crate::access::ProxySettings>,

    /// Group-to-role rules, first match wins (`[[role_mapping]]`, config
    /// file only).
    #[arg(skip)]
    pub role_mapping: Vec<crate::access::roles::RoleRule>,

    /// The OpenID Connect provider of `--auth oidc` (`[oidc]`, config file
    /// only).
    #[arg(skip)]
    pub oidc: Option<crate::access::oidc::OidcSettings>,

    /// The role of a user no rule matches (`default_role`, config file
    /// only; `none`: no access).
    #[arg(skip)]
    pub default_role: crate::access::roles::DefaultRole,

    /// The scope of a user no rule matches (`default_scope`, config file
    /// only).
    #[arg(skip)]
    pub default_scope: Option<String>,

    /// Subject scopes by name (`[scopes.NAME]`, config file only).
    #[arg(skip)]
    pub scopes: std::collections::BTreeMap<String, crate::access::scope::ScopeEntry>,

    /// Fields and headers masked by role (`[[masks]]`, config file only).
    #[arg(skip)]
    pub masks: Vec<crate::access::mask::MaskEntry>,

    /// Run the demo producer even though --nats-url is given (it publishes
    /// its scenarios' flows, logs and metrics on that NATS, and makes an
    /// `ACCOUNTS` stream there; see --demo-scenario).
    #[arg(long, env = "EVENTSCOPE_DEMO")]
    pub demo: bool,

    /// How to authenticate to NATS (and TLS).
    #[command(flatten)]
    pub auth: NatsAuth,

    /// Events per second of the demo's background logs and metrics (the
    /// `logs` scenario's rate).
    #[arg(
        long,
        env = "EVENTSCOPE_DEMO_RATE",
        default_value_t = 200,
        global = true
    )]
    pub demo_rate: u32,

    /// A demo scenario to run, with its rate: `saga`, `fanout`, `account`,
    /// `cqrs` or `logs`, alone (its default rate) or as `saga=5` (flows per
    /// second; events per second for `account` and `logs`). Repeatable;
    /// comma-separated in the variable. Default: all of them. Rates can
    /// be changed from the UI while it runs.
    #[arg(
        long = "demo-scenario",
        env = "EVENTSCOPE_DEMO_SCENARIOS",
        value_delimiter = ',',
        value_name = "NAME[=RATE]",
        global = true
    )]
    pub demo_scenarios: Vec<DemoScenarioArg>,

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

    /// Byte budget of the projections' live state and the time-travel
    /// checkpoints together: past it, checkpoints give way (time travel
    /// folds further from the nearest, or reaches less far back). Sizes
    /// such as `128MiB`.
    #[arg(long, env = "EVENTSCOPE_PROJECTION_BYTES", default_value = "128MiB")]
    pub projection_bytes: bytesize::ByteSize,

    /// Partitions of the projections: the folds run side by side on this
    /// many threads and are merged for reading (docs/DESIGN.md,
    /// "Partitions"). Default: 2 with 8 cores or more, else 1 (measured:
    /// docs/PERFORMANCE.md, "Many cores").
    #[arg(long, env = "EVENTSCOPE_PARTITIONS", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=crate::projection::partition::MAX_PARTITIONS as i64))]
    pub partitions: Option<u16>,

    /// Messages the NATS client holds for each subscription while ingest
    /// is busy; past it the client drops them, each counted as
    /// `eventscope_events_dropped_total{reason="nats_slow_consumer"}`.
    /// About 120 MiB at the default and 300-byte payloads.
    #[arg(long, env = "EVENTSCOPE_NATS_BUFFER", value_name = "MESSAGES",
          default_value_t = crate::ingest::SUBSCRIPTION_CAPACITY as u32,
          value_parser = clap::value_parser!(u32).range(64..=4_194_304))]
    pub nats_buffer: u32,

    /// Bytes the NATS client holds for all subscriptions together while
    /// ingest is busy (each message weighed as its subject, headers and
    /// payload plus about 200 bytes); past it, as past `--nats-buffer`,
    /// messages are dropped and counted. Sizes such as `128MiB`; 0: no
    /// byte bound.
    #[arg(long, env = "EVENTSCOPE_NATS_BUFFER_BYTES", default_value = "128MiB")]
    pub nats_buffer_bytes: bytesize::ByteSize,

    /// Live-socket subscriptions the browsers of one address may hold
    /// together (0: no limit), so one client cannot take every shared
    /// view. Behind a reverse proxy every browser has the proxy's
    /// address: raise it, or 0.
    #[arg(long, env = "EVENTSCOPE_WS_PER_ADDRESS", value_name = "N",
          default_value_t = crate::live::ws::SUBSCRIPTIONS_PER_ADDRESS)]
    pub ws_per_address: u32,

    /// Live connections (browser tabs, API clients) open at once; past it
    /// a new one is refused with 503 and counted.
    #[arg(long, env = "EVENTSCOPE_WS_MAX_CLIENTS", value_name = "N",
          default_value_t = crate::live::ws::MAX_CLIENTS,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub ws_max_clients: u32,

    /// HTTP connections open at once (pages, API calls, live sockets);
    /// past it new ones wait in the OS's backlog until one closes. Each
    /// has 60 s to send a request head.
    #[arg(long, env = "EVENTSCOPE_MAX_CONNECTIONS", value_name = "N",
          default_value_t = crate::api::lenient::MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(16..=1_000_000))]
    pub max_connections: u32,

    /// How long a client has to send a request head (tests shorten it).
    #[arg(skip = crate::api::lenient::HEAD_TIMEOUT)]
    pub head_timeout: Duration,

    /// How long a sign-in lasts, when shorter than `session_hours` (tests
    /// shorten it).
    #[arg(skip)]
    pub session_lifetime: Option<Duration>,

    /// How often the live hub sends deltas to browsers, in milliseconds.
    #[arg(long, env = "EVENTSCOPE_TICK_MS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub tick_ms: u64,

    /// A TOML file with the same keys as these flags (`nats_url`,
    /// `subjects`, `store_bytes`…) and `[[decode]]` per-subject decoding
    /// overrides. Flags and variables win over the file.
    #[arg(long, env = "EVENTSCOPE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Per-subject decoding overrides (config file only).
    #[arg(skip)]
    pub decode: Vec<Mapping>,

    /// User-defined projections (config file only).
    #[arg(skip)]
    pub projection: Vec<ProjectionDef>,

    /// Header giving an event's correlation id (the first one present
    /// wins; then the payload's `correlation_id`-like fields). Repeatable.
    /// Default: Nats-Correlation-Id, X-Correlation-Id, Correlation-Id,
    /// traceparent (its trace id).
    #[arg(
        long = "correlation-header",
        env = "EVENTSCOPE_CORRELATION_HEADERS",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub correlation_headers: Vec<String>,

    /// Header naming the service that published an event (the first one
    /// present wins over the payload's `service`-like fields and the
    /// subject; a `[[decode]]` entry's `service` or `service_name` wins
    /// over it). Repeatable. Default: Nats-Service, X-Service.
    #[arg(
        long = "service-header",
        env = "EVENTSCOPE_SERVICE_HEADERS",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub service_headers: Vec<String>,

    /// How flows are read: completion and compensation words or subject
    /// patterns and the stall timeout (`[flows]` in the config file).
    #[arg(skip)]
    pub flows: FlowRules,

    /// CQRS pairs to watch (`[[cqrs]]` in the config file). Demo mode
    /// watches its own inventory pair when none is given.
    #[arg(skip)]
    pub cqrs: Vec<CqrsPair>,

    /// What to run: the dashboard (no subcommand) or `demo`.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// How often JetStream consumers are listed for the topology (ms).
    #[arg(skip = 5_000u64)]
    pub consumer_poll_ms: u64,
}

/// A subcommand.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Run only the demo producer against --nats-url, no dashboard: the
    /// demo's flows, logs and metrics as a load generator or a live example
    /// for another Eventscope (`eventscope demo --nats-url nats://host:4222
    /// --demo-scenario saga=50`).
    Demo,
    /// Print the argon2 hash of a password read from standard input, as a
    /// `[[users]]` entry for the config file
    /// (`eventscope hash-password --name ana --role operator`).
    HashPassword {
        /// The user's name.
        #[arg(long, default_value = "me")]
        name: String,
        /// The user's role: viewer, operator or admin.
        #[arg(long, default_value = "viewer", value_parser = parse_role)]
        role: crate::access::Role,
    },
    /// Print a new random API token, and its `[[tokens]]` entry for the
    /// config file (only the token's SHA-256 is kept there).
    NewToken {
        /// A name for the token, shown in the audit trail.
        #[arg(long)]
        name: String,
        /// The token's role: viewer, operator or admin.
        #[arg(long, default_value = "viewer", value_parser = parse_role)]
        role: crate::access::Role,
    },
}

fn parse_role(s: &str) -> Result<crate::access::Role, String> {
    crate::access::Role::parse(s)
        .ok_or_else(|| format!("no role {s:?}; there are viewer, operator and admin"))
}

/// `--demo-scenario NAME[=RATE]`.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoScenarioArg {
    /// The scenario.
    pub scenario: Scenario,
    /// Its rate, if given.
    pub rate: Option<f64>,
}

impl std::str::FromStr for DemoScenarioArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, rate) = match s.split_once('=') {
            Some((n, r)) => (n.trim(), Some(r.trim())),
            None => (s.trim(), None),
        };
        let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
        let scenario = Scenario::parse(name)
            .ok_or_else(|| format!("no demo scenario {name:?}; there are: {}", names.join(", ")))?;
        let rate = rate
            .map(|r| {
                r.parse::<f64>()
                    .ok()
                    .filter(|v| (0.0..=crate::demo::producer::MAX_RATE).contains(v))
                    .ok_or_else(|| format!("rate {r:?} of {name} is not a number from 0 to 100000"))
            })
            .transpose()?;
        Ok(DemoScenarioArg { scenario, rate })
    }
}

/// A secret given on the command line, in a variable or in the file: never
/// shown by `Debug` (so never in a log line).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// NATS authentication and TLS (PRODUCT.md F1). Each has a variable; the
/// secrets' values are hidden from `--help` and from logs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NatsAuth {
    /// User name, with --nats-password.
    #[arg(long, env = "EVENTSCOPE_NATS_USER")]
    pub nats_user: Option<String>,
    /// Password, with --nats-user.
    #[arg(long, env = "EVENTSCOPE_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<Secret>,
    /// Token.
    #[arg(long, env = "EVENTSCOPE_NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<Secret>,
    /// NKey seed (`SU…`).
    #[arg(long, env = "EVENTSCOPE_NATS_NKEY", hide_env_values = true)]
    pub nats_nkey: Option<Secret>,
    /// A `.creds` file (JWT and NKey seed).
    #[arg(long, env = "EVENTSCOPE_NATS_CREDS", value_name = "FILE")]
    pub nats_creds: Option<PathBuf>,
    /// CA certificate to trust for the server's TLS (turns TLS on).
    #[arg(long, env = "EVENTSCOPE_NATS_TLS_CA", value_name = "FILE")]
    pub nats_tls_ca: Option<PathBuf>,
    /// Client certificate for mutual TLS, with --nats-tls-key.
    #[arg(
        long,
        env = "EVENTSCOPE_NATS_TLS_CERT",
        value_name = "FILE",
        requires = "nats_tls_key"
    )]
    pub nats_tls_cert: Option<PathBuf>,
    /// Client key for mutual TLS, with --nats-tls-cert.
    #[arg(
        long,
        env = "EVENTSCOPE_NATS_TLS_KEY",
        value_name = "FILE",
        requires = "nats_tls_cert"
    )]
    pub nats_tls_key: Option<PathBuf>,
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag or variable was wrong (or `--help` / `--version` was asked).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown key or a wrong type.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML reader said (with the key and line).
        message: String,
    },
    /// A key's value is not acceptable.
    #[error("config file {path}: {at}key `{key}`: {message}")]
    Value {
        /// The file.
        path: PathBuf,
        /// Where the key is set (`line N: `), if it could be found.
        at: String,
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The line (from 1) of the config file `text` that sets `key`: at its top
/// level (before any table), or in the `nth` (from 0) `[table]` or
/// `[[table]]` entry named `table` (that entry's header line if the key is
/// not in it: a default was at fault).
fn key_line(text: &str, table: Option<(&str, usize)>, key: &str) -> Option<usize> {
    let mut current: Option<(&str, usize)> = None;
    let mut seen: std::collections::HashMap<&str, usize> = Default::default();
    let mut header = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            let name = t
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim();
            let n = seen.entry(name).or_insert(0);
            current = Some((name, *n));
            *n += 1;
            if current == table {
                header = Some(i + 1);
            }
            continue;
        }
        if current == table
            && let Some((k, _)) = t.split_once('=')
            && k.trim().trim_matches('"') == key
        {
            return Some(i + 1);
        }
    }
    header
}

/// `line N: ` when the line is known, for an error message.
fn line_prefix(line: Option<usize>) -> String {
    line.map_or_else(String::new, |n| format!("line {n}: "))
}

/// The config file's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    nats_url: Option<String>,
    subjects: Option<Vec<String>>,
    streams: Option<Vec<String>>,
    durable: Option<String>,
    allowed_origins: Option<Vec<String>>,
    addr: Option<String>,
    demo: Option<bool>,
    demo_rate: Option<u32>,
    demo_scenarios: Option<Vec<String>>,
    nats_server_bin: Option<PathBuf>,
    site_root: Option<PathBuf>,
    tick_ms: Option<u64>,
    nats_buffer: Option<u32>,
    nats_buffer_bytes: Option<String>,
    ws_per_address: Option<u32>,
    ws_max_clients: Option<u32>,
    max_connections: Option<u32>,
    partitions: Option<u16>,
    store_bytes: Option<String>,
    projection_bytes: Option<String>,
    nats_user: Option<String>,
    nats_password: Option<Secret>,
    nats_token: Option<Secret>,
    nats_nkey: Option<Secret>,
    nats_creds: Option<PathBuf>,
    nats_tls_ca: Option<PathBuf>,
    nats_tls_cert: Option<PathBuf>,
    nats_tls_key: Option<PathBuf>,
    #[serde(default)]
    decode: Vec<Mapping>,
    #[serde(default)]
    projection: Vec<ProjectionDef>,
    correlation_headers: Option<Vec<String>>,
    service_headers: Option<Vec<String>>,
    flows: Option<FlowRules>,
    #[serde(default)]
    cqrs: Vec<CqrsPair>,
    auth: Option<crate::access::AuthMode>,
    insecure_no_auth: Option<bool>,
    audit_to_nats: Option<bool>,
    public_names: Option<Vec<String>>,
    session_secret: Option<Secret>,
    session_hours: Option<u32>,
    #[serde(default)]
    users: Vec<crate::access::users::UserEntry>,
    #[serde(default)]
    tokens: Vec<crate::access::users::TokenEntry>,
    proxy: Option<crate::access::ProxySettings>,
    #[serde(default)]
    role_mapping: Vec<crate::access::roles::RoleRule>,
    default_role: Option<crate::access::roles::DefaultRole>,
    default_scope: Option<String>,
    #[serde(default)]
    scopes: std::collections::BTreeMap<String, crate::access::scope::ScopeEntry>,
    #[serde(default)]
    masks: Vec<crate::access::mask::MaskEntry>,
    oidc: Option<crate::access::oidc::OidcSettings>,
}

impl Config {
    /// Reads flags from `args` (the first is the program name), variables
    /// from the environment and, if `--config` names one, the file.
    pub fn load_from<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Config::load_with(Config::command(), args)
    }

    /// Like [`Config::load_from`], reading no `EVENTSCOPE_*` variable: for
    /// tests and tools, whose answers must not depend on the shell that
    /// runs them (`scripts/env.sh` sets `EVENTSCOPE_NATS_SERVER`).
    pub fn load_ignoring_env<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Config::load_with(Config::command().mut_args(|a| a.env(None)), args)
    }

    fn load_with<I, T>(command: clap::Command, args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = command.try_get_matches_from(args)?;
        let mut config = Config::from_arg_matches(&matches)?;
        if let Some(path) = config.config.clone() {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let file: FileConfig = toml::from_str(&text).map_err(|e| {
                // The line, and the key set on it (a wrong type's message
                // names neither).
                let at = e.span().map(|s| {
                    let start = s.start.min(text.len());
                    let n = text[..start].matches('\n').count() + 1;
                    let line = text.lines().nth(n - 1).unwrap_or("");
                    match line.split_once('=') {
                        Some((key, _)) if !line.trim_start().starts_with('[') => {
                            format!("line {n}: key `{}`: ", key.trim().trim_matches('"'))
                        }
                        _ => format!("line {n}: "),
                    }
                });
                ConfigError::Parse {
                    path: path.clone(),
                    message: format!("{}{}", at.unwrap_or_default(), e.message()),
                }
            })?;
            config.apply_file(file, &path, &text, &matches)?;
        }
        Ok(config)
    }

    /// Takes each key of the file that no flag or variable set.
    fn apply_file(
        &mut self,
        file: FileConfig,
        path: &std::path::Path,
        text: &str,
        matches: &clap::ArgMatches,
    ) -> Result<(), ConfigError> {
        let unset = |id: &str| {
            !matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        // A key of the file's top level, or `table.key` of its first
        // `[table]`, with the line that sets it.
        let bad = |key: &'static str, message: String| {
            let line = match key.split_once('.') {
                Some((table, k)) => key_line(text, Some((table, 0)), k),
                None => key_line(text, None, key),
            };
            ConfigError::Value {
                path: path.to_path_buf(),
                at: line_prefix(line),
                key,
                message,
            }
        };
        if let Some(v) = file.nats_url.filter(|_| unset("nats_url")) {
            self.nats_url = Some(v);
        }
        if let Some(v) = file.subjects.filter(|_| unset("subjects")) {
            self.subjects = v;
        }
        if let Some(v) = file.streams.filter(|_| unset("streams")) {
            self.streams = v
                .iter()
                .map(|s| s.parse().map_err(|e| bad("streams", e)))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = file.durable.filter(|_| unset("durable")) {
            self.durable = Some(v);
        }
        if let Some(v) = file.allowed_origins.filter(|_| unset("allowed_origins")) {
            self.allowed_origins = v;
        }
        if let Some(v) = file.addr.filter(|_| unset("addr")) {
            self.addr = v
                .parse()
                .map_err(|e| bad("addr", format!("{v:?} is not host:port ({e})")))?;
        }
        if let Some(v) = file.demo.filter(|_| unset("demo")) {
            self.demo = v;
        }
        if let Some(v) = file.demo_rate.filter(|_| unset("demo_rate")) {
            self.demo_rate = v;
        }
        if let Some(v) = file.demo_scenarios.filter(|_| unset("demo_scenarios")) {
            self.demo_scenarios = v
                .iter()
                .map(|s| s.parse().map_err(|e| bad("demo_scenarios", e)))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = file.nats_server_bin.filter(|_| unset("nats_server_bin")) {
            self.nats_server_bin = Some(v);
        }
        if let Some(v) = file.site_root.filter(|_| unset("site_root")) {
            self.site_root = v;
        }
        if let Some(v) = file.tick_ms.filter(|_| unset("tick_ms")) {
            if !(10..=10_000).contains(&v) {
                return Err(bad("tick_ms", format!("{v} is outside 10..=10000")));
            }
            self.tick_ms = v;
        }
        if let Some(v) = file.nats_buffer.filter(|_| unset("nats_buffer")) {
            if !(64..=4_194_304).contains(&v) {
                return Err(bad("nats_buffer", format!("{v} is outside 64..=4194304")));
            }
            self.nats_buffer = v;
        }
        if let Some(v) = file.ws_per_address.filter(|_| unset("ws_per_address")) {
            self.ws_per_address = v;
        }
        if let Some(v) = file.ws_max_clients.filter(|_| unset("ws_max_clients")) {
            if !(1..=65_536).contains(&v) {
                return Err(bad("ws_max_clients", format!("{v} is outside 1..=65536")));
            }
            self.ws_max_clients = v;
        }
        if let Some(v) = file.max_connections.filter(|_| unset("max_connections")) {
            if !(16..=1_000_000).contains(&v) {
                return Err(bad(
                    "max_connections",
                    format!("{v} is outside 16..=1000000"),
                ));
            }
            self.max_connections = v;
        }
        if let Some(v) = file.partitions.filter(|_| unset("partitions")) {
            let max = crate::projection::partition::MAX_PARTITIONS;
            if !(1..=max).contains(&usize::from(v)) {
                return Err(bad("partitions", format!("{v} is outside 1..={max}")));
            }
            self.partitions = Some(v);
        }
        for (key, value, slot, example) in [
            (
                "store_bytes",
                file.store_bytes,
                &mut self.store_bytes,
                "512MiB",
            ),
            (
                "nats_buffer_bytes",
                file.nats_buffer_bytes,
                &mut self.nats_buffer_bytes,
                "128MiB",
            ),
            (
                "projection_bytes",
                file.projection_bytes,
                &mut self.projection_bytes,
                "128MiB",
            ),
        ] {
            if let Some(v) = value.filter(|_| unset(key)) {
                *slot = v.parse().map_err(|e| {
                    bad(key, format!("{v:?} is not a size such as {example} ({e})"))
                })?;
            }
        }
        let a = &mut self.auth;
        macro_rules! take {
            ($($key:ident),*) => {$(
                if let Some(v) = file.$key.filter(|_| unset(stringify!($key))) {
                    a.$key = Some(v);
                }
            )*};
        }
        take!(
            nats_user,
            nats_password,
            nats_token,
            nats_nkey,
            nats_creds,
            nats_tls_ca,
            nats_tls_cert,
            nats_tls_key
        );
        self.decode = file.decode;
        let builtins: Vec<String> = crate::projection::builtin::builtin_catalogue()
            .into_iter()
            .map(|p| p.name)
            .collect();
        let mut seen = std::collections::HashSet::new();
        for (i, def) in file.projection.iter().enumerate() {
            def.validate(&builtins)
                .and_then(|()| {
                    seen.insert(def.name.clone())
                        .then_some(())
                        .ok_or_else(|| ("name", format!("name {:?} is used twice", def.name)))
                })
                .map_err(|(key, e)| ConfigError::Value {
                    path: path.to_path_buf(),
                    at: line_prefix(key_line(text, Some(("projection", i)), key)),
                    key: match key {
                        "name" => "projection.name",
                        "field" => "projection.field",
                        "window" => "projection.window",
                        _ => "projection.where",
                    },
                    message: format!("entry {} ({:?}): {e}", i + 1, def.name),
                })?;
        }
        self.projection = file.projection;
        if let Some(v) = file
            .correlation_headers
            .filter(|_| unset("correlation_headers"))
        {
            self.correlation_headers = v;
        }
        if let Some(v) = file.service_headers.filter(|_| unset("service_headers")) {
            self.service_headers = v;
        }
        if let Some(rules) = file.flows {
            if rules.stall_after.is_zero() {
                return Err(bad("flows.stall_after", "must be more than 0".to_string()));
            }
            self.flows = rules;
        }
        self.cqrs = file.cqrs;
        if let Some(v) = file.auth.filter(|_| unset("auth_mode")) {
            self.auth_mode = v;
        }
        if let Some(v) = file.audit_to_nats.filter(|_| unset("audit_to_nats")) {
            self.audit_to_nats = v;
        }
        if let Some(v) = file.insecure_no_auth.filter(|_| unset("insecure_no_auth")) {
            self.insecure_no_auth = v;
        }
        if let Some(v) = file.public_names.filter(|_| unset("public_names")) {
            self.public_names = v;
        }
        if let Some(v) = file.session_secret.filter(|_| unset("session_secret")) {
            self.session_secret = Some(v);
        }
        if let Some(v) = file.session_hours.filter(|_| unset("session_hours")) {
            if !(1..=720).contains(&v) {
                return Err(bad("session_hours", format!("{v} is outside 1..=720")));
            }
            self.session_hours = v;
        }
        // Each entry checked, with its line; names used once.
        let entry_error =
            |table: &'static str, i: usize, name: &str, key: &'static str, e: String| {
                ConfigError::Value {
                    path: path.to_path_buf(),
                    at: line_prefix(key_line(text, Some((table, i)), key)),
                    key: match (table, key) {
                        ("users", "name") => "users.name",
                        ("users", _) => "users.password_hash",
                        (_, "name") => "tokens.name",
                        _ => "tokens.sha256",
                    },
                    message: format!("entry {} ({name:?}): {e}", i + 1),
                }
            };
        let mut names = std::collections::HashSet::new();
        for (i, u) in file.users.iter().enumerate() {
            crate::access::users::check_user(u)
                .and_then(|()| {
                    names
                        .insert(u.name.clone())
                        .then_some(())
                        .ok_or(("name", "the name is used twice".to_string()))
                })
                .map_err(|(key, e)| entry_error("users", i, &u.name, key, e))?;
        }
        let mut digests = std::collections::HashSet::new();
        for (i, t) in file.tokens.iter().enumerate() {
            crate::access::users::check_token(t)
                .and_then(|()| {
                    digests
                        .insert(t.sha256.to_ascii_lowercase())
                        .then_some(())
                        .ok_or(("sha256", "the same token is listed twice".to_string()))
                })
                .map_err(|(key, e)| entry_error("tokens", i, &t.name, key, e))?;
        }
        if let Some(proxy) = &file.proxy {
            proxy.check().map_err(|(key, e)| ConfigError::Value {
                path: path.to_path_buf(),
                at: line_prefix(key_line(text, Some(("proxy", 0)), key)),
                key: match key {
                    "trusted" => "proxy.trusted",
                    "user_header" => "proxy.user_header",
                    _ => "proxy.groups_header",
                },
                message: e,
            })?;
        }
        for (i, rule) in file.role_mapping.iter().enumerate() {
            crate::access::roles::check_rule(rule).map_err(|(key, e)| ConfigError::Value {
                path: path.to_path_buf(),
                at: line_prefix(key_line(text, Some(("role_mapping", i)), key)),
                key: if key == "group" {
                    "role_mapping.group"
                } else {
                    "role_mapping.group_regex"
                },
                message: format!("entry {}: {e}", i + 1),
            })?;
        }
        if let Some(o) = &file.oidc {
            o.check().map_err(|(key, e)| ConfigError::Value {
                path: path.to_path_buf(),
                at: line_prefix(key_line(text, Some(("oidc", 0)), key)),
                key: match key {
                    "issuer" => "oidc.issuer",
                    "client_id" => "oidc.client_id",
                    _ => "oidc.redirect_url",
                },
                message: e,
            })?;
        }
        for (name, entry) in &file.scopes {
            crate::access::scope::check(name, entry).map_err(|(key, e)| ConfigError::Value {
                path: path.to_path_buf(),
                at: line_prefix(key_line(text, Some((&format!("scopes.{name}"), 0)), key)),
                key: if key == "deny" {
                    "scopes.deny"
                } else {
                    "scopes.allow"
                },
                message: e,
            })?;
        }
        for (i, entry) in file.masks.iter().enumerate() {
            crate::access::mask::check(entry).map_err(|(key, e)| ConfigError::Value {
                path: path.to_path_buf(),
                at: line_prefix(key_line(text, Some(("masks", i)), key)),
                key: match key {
                    "fields" => "masks.fields",
                    "headers" => "masks.headers",
                    _ => "masks.roles",
                },
                message: format!("entry {}: {e}", i + 1),
            })?;
        }
        // Every scope named is defined: a typo must not give all subjects.
        let unknown = |table: &'static str, i: usize, key: &'static str, scope: &Option<String>| {
            match scope {
                Some(name) if !file.scopes.contains_key(name) => Err(ConfigError::Value {
                    path: path.to_path_buf(),
                    at: line_prefix(key_line(
                        text,
                        (!table.is_empty()).then_some((table, i)),
                        "scope",
                    )),
                    key,
                    message: format!(
                        "no scope named {name:?}: define it as [scopes.{name}] with allow or deny patterns"
                    ),
                }),
                _ => Ok(()),
            }
        };
        for (i, u) in file.users.iter().enumerate() {
            unknown("users", i, "users.scope", &u.scope)?;
        }
        for (i, t) in file.tokens.iter().enumerate() {
            unknown("tokens", i, "tokens.scope", &t.scope)?;
        }
        for (i, r) in file.role_mapping.iter().enumerate() {
            unknown("role_mapping", i, "role_mapping.scope", &r.scope)?;
        }
        if let Some(name) = &file.default_scope
            && !file.scopes.contains_key(name)
        {
            return Err(ConfigError::Value {
                path: path.to_path_buf(),
                at: line_prefix(key_line(text, None, "default_scope")),
                key: "default_scope",
                message: format!(
                    "no scope named {name:?}: define it as [scopes.{name}] with allow or deny patterns"
                ),
            });
        }
        self.users = file.users;
        self.tokens = file.tokens;
        self.oidc = file.oidc;
        self.proxy = file.proxy;
        self.role_mapping = file.role_mapping;
        if let Some(v) = file.default_role {
            self.default_role = v;
        }
        self.default_scope = file.default_scope;
        self.scopes = file.scopes;
        self.masks = file.masks;
        Ok(())
    }

    /// Demo mode: no NATS given, so run our own (and the producer).
    pub fn managed_nats(&self) -> bool {
        self.nats_url.is_none()
    }

    /// Each demo scenario's starting rate (0: off): those given, or all at
    /// their defaults; `logs` defaults to --demo-rate.
    pub fn demo_rates(&self) -> std::collections::BTreeMap<Scenario, f64> {
        let default = |s: Scenario| match s {
            Scenario::Logs => f64::from(self.demo_rate),
            other => other.default_rate(),
        };
        if self.demo_scenarios.is_empty() {
            return Scenario::ALL.into_iter().map(|s| (s, default(s))).collect();
        }
        self.demo_scenarios
            .iter()
            .map(|a| (a.scenario, a.rate.unwrap_or_else(|| default(a.scenario))))
            .collect()
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

    /// Partitions of the projections: `--partitions`, else
    /// [`default_partitions`](crate::projection::partition::default_partitions).
    pub fn partitions(&self) -> usize {
        self.partitions.map_or_else(
            crate::projection::partition::default_partitions,
            usize::from,
        )
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
            durable: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            allowed_origins: Vec::new(),
            demo: false,
            demo_rate: 200,
            demo_scenarios: Vec::new(),
            nats_server_bin: None,
            site_root: PathBuf::from("target/site"),
            tick_ms: 100,
            nats_buffer: crate::ingest::SUBSCRIPTION_CAPACITY as u32,
            nats_buffer_bytes: bytesize::ByteSize::b(crate::ingest::SUBSCRIPTION_BYTES),
            ws_per_address: crate::live::ws::SUBSCRIPTIONS_PER_ADDRESS,
            ws_max_clients: crate::live::ws::MAX_CLIENTS,
            max_connections: crate::api::lenient::MAX_CONNECTIONS,
            head_timeout: crate::api::lenient::HEAD_TIMEOUT,
            session_lifetime: None,
            partitions: None,
            store_bytes: bytesize::ByteSize::mib(64),
            projection_bytes: bytesize::ByteSize::mib(128),
            auth: NatsAuth::default(),
            config: None,
            decode: Vec::new(),
            projection: Vec::new(),
            correlation_headers: Vec::new(),
            service_headers: Vec::new(),
            flows: FlowRules::default(),
            cqrs: Vec::new(),
            consumer_poll_ms: 5_000,
            command: None,
            auth_mode: crate::access::AuthMode::None,
            insecure_no_auth: false,
            audit_to_nats: false,
            public_names: Vec::new(),
            session_secret: None,
            session_hours: 12,
            users: Vec::new(),
            tokens: Vec::new(),
            proxy: None,
            oidc: None,
            role_mapping: Vec::new(),
            default_role: crate::access::roles::DefaultRole::None,
            default_scope: None,
            scopes: Default::default(),
            masks: Vec::new(),
        }
    }

    /// What the NATS client may hold for ingest's subscriptions.
    pub fn nats_client_buffer(&self) -> crate::ingest::ClientBuffer {
        crate::ingest::ClientBuffer {
            messages: self.nats_buffer as usize,
            bytes: self.nats_buffer_bytes.as_u64(),
        }
    }

    /// The decoders this configuration asks for.
    pub fn decoders(&self) -> crate::ingest::decode::Decoders {
        let mut d = crate::ingest::decode::Decoders::new(self.decode.clone());
        if !self.correlation_headers.is_empty() {
            d = d.with_correlation_headers(self.correlation_headers.clone());
        }
        if !self.service_headers.is_empty() {
            d = d.with_service_headers(self.service_headers.clone());
        }
        d
    }

    /// The CQRS pairs watched: those configured, else in demo mode the
    /// demo's own.
    pub fn cqrs_pairs(&self) -> Vec<CqrsPair> {
        if self.cqrs.is_empty() && self.demo_producer() {
            vec![CqrsPair::demo()]
        } else {
            self.cqrs.clone()
        }
    }

    /// The user-defined projections: those configured, else in demo mode
    /// the balances of the demo's event-sourced accounts (a running total
    /// of each account's signed `amount`).
    pub fn projection_defs(&self) -> Vec<ProjectionDef> {
        if self.projection.is_empty() && self.demo_producer() {
            vec![ProjectionDef::account_balances()]
        } else {
            self.projection.clone()
        }
    }

    /// Empty projections as this configuration defines them. A flow that
    /// reaches a CQRS pair's read model is complete.
    pub fn projections(&self) -> crate::projection::builtin::Projections {
        let pairs = self.cqrs_pairs();
        let mut rules = self.flows.clone();
        rules
            .complete
            .extend(pairs.iter().map(|p| p.read_model.clone()));
        crate::projection::builtin::Projections::with_custom(&self.projection_defs())
            .with_flow_rules(rules)
            .with_cqrs(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flags only: no `EVENTSCOPE_*` variable of the shell running the
    /// tests is read.
    fn parse<const N: usize>(args: [&str; N]) -> Result<Config, clap::Error> {
        let matches = Config::command()
            .mut_args(|a| a.env(None))
            .try_get_matches_from(args)?;
        Config::from_arg_matches(&matches)
    }

    #[test]
    fn no_arguments_means_demo_mode() {
        let c = parse(["eventscope"]).expect("parses");
        assert!(c.managed_nats() && c.demo_producer());
        assert_eq!(c.core_subjects(), vec![">".to_string()]);
        assert_eq!(c.addr.port(), 3000);
    }

    #[test]
    fn nats_url_turns_demo_off_unless_asked() {
        let c = parse(["eventscope", "--nats-url", "nats://h:1"]).expect("parses");
        assert!(!c.managed_nats() && !c.demo_producer());
        let c = parse(["eventscope", "--nats-url", "nats://h:1", "--demo"]).expect("parses");
        assert!(c.demo_producer());
    }

    #[test]
    fn subjects_repeat() {
        let c = parse(["eventscope", "--subject", "logs.>", "--subject", "m.*"]).expect("parses");
        assert_eq!(c.subjects, vec!["logs.>", "m.*"]);
    }

    #[test]
    fn a_stream_alone_subscribes_to_no_core_subject() {
        let c = parse(["eventscope", "--stream", "ORDERS@all"]).expect("parses");
        assert!(c.core_subjects().is_empty());
        assert_eq!(c.streams[0].stream, "ORDERS");
        let err = parse(["eventscope", "--stream", "ORDERS@soon"]).expect_err("refused");
        assert!(err.to_string().contains("--stream"), "{err}");
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let c = parse(["eventscope", "--nats-token", "s3cret-t0ken"]).expect("parses");
        assert_eq!(
            c.auth.nats_token.as_ref().map(Secret::expose),
            Some("s3cret-t0ken")
        );
        assert!(!format!("{c:?}").contains("s3cret"), "{c:?}");
    }

    #[test]
    fn store_size_takes_units() {
        let c = parse(["eventscope", "--store-bytes", "2GiB"]).expect("parses");
        assert_eq!(c.store_bytes.as_u64(), 2 << 30);
        let err = parse(["eventscope", "--store-bytes", "lots"]).expect_err("refused");
        assert!(err.to_string().contains("--store-bytes"), "{err}");
    }

    fn write(text: &str) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    #[test]
    fn a_bad_value_in_the_file_names_its_key_and_its_line() {
        // Issue 16: a wrong type named the line but not the key; a bad
        // size and a bad `where` named the key but not the line.
        let cases = [
            (
                "tick_ms = 100\nstore_bytes = true\n",
                "line 2: key `store_bytes`",
            ),
            (
                "tick_ms = 100\n\nstore_bytes = \"lots\"\n",
                "line 3: key `store_bytes`",
            ),
            (
                "[[projection]]\nname = \"ok\"\naggregate = \"count\"\n\n[[projection]]\nname = \"slow\"\naggregate = \"count\"\nwhere = [\"latency_ms 200\"]\n",
                "line 8: key `projection.where`",
            ),
            (
                "[flows]\nstall_after = \"0s\"\n",
                "line 2: key `flows.stall_after`",
            ),
        ];
        for (text, want) in cases {
            let f = write(text);
            let path = f.path().to_str().expect("utf-8 path");
            let err = Config::load_ignoring_env(["eventscope", "--config", path])
                .expect_err("refused")
                .to_string();
            assert!(err.contains(path), "{err}");
            assert!(err.contains(want), "{want:?} in {err}");
        }
    }

    #[test]
    fn file_keys_apply_and_flags_win() {
        let f = write(
            r#"
nats_url = "nats://file:4222"
subjects = ["logs.>", "metrics.*"]
store_bytes = "2MiB"
tick_ms = 250
partitions = 3

[[decode]]
subject = "legacy.>"
format = "logfmt"
level = "sev"
"#,
        );
        let path = f.path().to_str().expect("utf-8 path");
        let c = Config::load_ignoring_env(["eventscope", "--config", path]).expect("loads");
        assert_eq!(c.nats_url.as_deref(), Some("nats://file:4222"));
        assert_eq!(c.subjects, vec!["logs.>", "metrics.*"]);
        assert_eq!(c.store_bytes.as_u64(), 2 << 20);
        assert_eq!(c.tick_ms, 250);
        assert_eq!(c.partitions(), 3);
        assert_eq!(c.decode.len(), 1);
        assert_eq!(c.decode[0].level.as_deref(), Some("sev"));
        let c = Config::load_ignoring_env(["eventscope", "--config", path, "--tick-ms", "50"])
            .expect("loads");
        assert_eq!(c.tick_ms, 50, "the flag wins");
        let c = Config::load_ignoring_env(["eventscope", "--config", path, "--partitions", "5"])
            .expect("loads");
        assert_eq!(c.partitions(), 5, "the flag wins");
        assert!(Config::load_ignoring_env(["eventscope", "--partitions", "0"]).is_err());
    }

    #[test]
    fn a_bad_file_names_the_file_and_the_key() {
        let f = write("nats_ur = \"nats://x\"\n");
        let path = f.path().to_str().expect("utf-8 path");
        let err = Config::load_ignoring_env(["eventscope", "--config", path]).expect_err("refused");
        let msg = err.to_string();
        assert!(msg.contains(path) && msg.contains("nats_ur"), "{msg}");

        let f = write("store_bytes = \"lots\"\n");
        let path = f.path().to_str().expect("utf-8 path");
        let msg = Config::load_ignoring_env(["eventscope", "--config", path])
            .expect_err("refused")
            .to_string();
        assert!(msg.contains(path) && msg.contains("store_bytes"), "{msg}");

        let f = write("[[decode]]\nsubject = \"a\"\nformat = \"yaml\"\n");
        let path = f.path().to_str().expect("utf-8 path");
        let msg = Config::load_ignoring_env(["eventscope", "--config", path])
            .expect_err("refused")
            .to_string();
        assert!(msg.contains(path) && msg.contains("yaml"), "{msg}");

        let msg = Config::load_ignoring_env(["eventscope", "--config", "/nonexistent/e.toml"])
            .expect_err("refused")
            .to_string();
        assert!(msg.contains("/nonexistent/e.toml"), "{msg}");
    }

    #[test]
    fn flows_and_correlation_headers_come_from_the_file() {
        let f = write(
            "correlation_headers = [\"X-Saga\"]\nservice_headers = [\"X-App\"]\n[flows]\ncomplete = [\"shipping.*.done\"]\nstall_after = \"2m\"\n",
        );
        let path = f.path().to_str().expect("utf-8 path");
        let c = Config::load_ignoring_env(["eventscope", "--config", path]).expect("valid");
        assert_eq!(c.correlation_headers, ["X-Saga"]);
        assert_eq!(c.service_headers, ["X-App"]);
        // Flags win over the file, and reach the decoders.
        let c = Config::load_ignoring_env([
            "eventscope",
            "--config",
            path,
            "--correlation-header",
            "X-Trace,X-Saga",
            "--service-header",
            "X-Svc",
        ])
        .expect("valid");
        assert_eq!(c.correlation_headers, ["X-Trace", "X-Saga"]);
        assert_eq!(c.service_headers, ["X-Svc"]);
        let h = |k: &str, v: &str| (k.to_string(), v.to_string());
        let d = c.decoders().decode_message(
            "a.b",
            b"{}",
            &[h("X-Saga", "s-1"), h("X-Svc", "billing"), h("X-App", "no")],
        );
        assert_eq!(d.correlation_id.as_deref(), Some("s-1"));
        assert_eq!(d.service.as_deref(), Some("billing"));
        assert_eq!(c.flows.complete, ["shipping.*.done"]);
        assert_eq!(c.flows.stall_after, Duration::from_secs(120));
        // Unset keys keep their defaults.
        assert!(c.flows.compensate.iter().any(|w| w == "refunded"));

        let f = write("[flows]\nstall_after = \"soon\"\n");
        let path = f.path().to_str().expect("utf-8 path");
        let msg = Config::load_ignoring_env(["eventscope", "--config", path])
            .expect_err("refused")
            .to_string();
        assert!(
            msg.contains(path) && msg.contains("soon") && msg.contains("duration"),
            "{msg}"
        );
    }

    #[test]
    fn demo_scenarios_take_names_and_rates() {
        let c = parse(["eventscope"]).expect("valid");
        assert_eq!(c.demo_rates().len(), Scenario::ALL.len());
        let c = parse([
            "eventscope",
            "--demo-scenario",
            "saga=5",
            "--demo-scenario",
            "logs",
            "--demo-rate",
            "50",
        ])
        .expect("valid");
        let rates: Vec<(Scenario, f64)> = c.demo_rates().into_iter().collect();
        assert_eq!(rates, [(Scenario::Saga, 5.0), (Scenario::Logs, 50.0)]);
        let err = parse(["eventscope", "--demo-scenario", "sagas"])
            .expect_err("refused")
            .to_string();
        assert!(err.contains("sagas") && err.contains("fanout"), "{err}");
        let err = parse(["eventscope", "--demo-scenario", "saga=fast"])
            .expect_err("refused")
            .to_string();
        assert!(err.contains("fast"), "{err}");
    }

    #[test]
    fn the_demo_subcommand_takes_the_url_and_scenarios_after_it() {
        let c = parse([
            "eventscope",
            "demo",
            "--nats-url",
            "nats://h:1",
            "--demo-scenario",
            "saga=50",
        ])
        .expect("valid");
        assert_eq!(c.command, Some(Command::Demo));
        assert_eq!(c.nats_url.as_deref(), Some("nats://h:1"));
        assert_eq!(
            c.demo_rates().into_iter().collect::<Vec<_>>(),
            [(Scenario::Saga, 50.0)]
        );
        assert_eq!(parse(["eventscope"]).expect("valid").command, None);
    }

    #[test]
    fn bad_tick_is_refused_with_the_flag_named() {
        let err = parse(["eventscope", "--tick-ms", "0"]).expect_err("refused");
        assert!(err.to_string().contains("--tick-ms"), "{err}");
    }

    /// README's flags table is the spec: every flag is in it, with the
    /// variable the code reads and, where the table gives one literal
    /// value, the code's default.
    #[test]
    fn every_flag_is_in_the_readme_with_its_variable_and_default() {
        use clap::CommandFactory;
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
        // flag -> (variable, default as the table says it)
        let mut table = std::collections::HashMap::new();
        for row in readme.lines().filter(|l| l.starts_with("| `--")) {
            let cols: Vec<&str> = row.split(" | ").collect();
            let ticked = |c: &str| -> Vec<String> {
                c.split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_string)
                    .collect()
            };
            let flags: Vec<String> = ticked(cols[0])
                .iter()
                .filter_map(|f| f.strip_prefix("--"))
                .map(|f| f.split(' ').next().unwrap_or(f).to_string())
                .collect();
            // `EVENTSCOPE_NATS_USER` / `_PASSWORD`: the second shares the
            // first's prefix.
            let mut vars = ticked(cols[1]);
            if let [first, second] = vars.as_mut_slice()
                && second.starts_with('_')
            {
                let base = &first[..first.rfind('_').expect("a variable")];
                *second = format!("{base}{second}");
            }
            let default = match ticked(cols[2]).as_slice() {
                [one] if cols[2].trim() == format!("`{one}`") => Some(one.clone()),
                _ => None,
            };
            assert_eq!(flags.len(), vars.len(), "{row}");
            for (flag, var) in flags.into_iter().zip(vars) {
                table.insert(flag, (var, default.clone()));
            }
        }
        let mut wrong = Vec::new();
        for arg in Config::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            let Some((var, default)) = table.remove(long) else {
                wrong.push(format!("--{long} is not in README's table"));
                continue;
            };
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            if env.as_deref() != Some(var.as_str()) {
                wrong.push(format!(
                    "--{long}: the code reads {env:?}, README says {var}"
                ));
            }
            let code_default: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            if let Some(d) = default
                && code_default != [d.clone()]
            {
                wrong.push(format!(
                    "--{long}: default {code_default:?} in the code, `{d}` in README"
                ));
            }
        }
        for flag in table.keys() {
            wrong.push(format!("README has --{flag}, the code does not"));
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        /// A value in TOML: plausible, wrong-typed or odd.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                "-?[0-9]{1,22}".prop_map(|s| s),
                Just("true".to_string()),
                "[a-zA-Z0-9 .>*=<!_-]{0,30}".prop_map(|s| format!("{s:?}")),
                ".{0,20}".prop_map(|s| format!("{s:?}")),
                "[0-9]{1,4}(B|KiB|MiB|GiB|GB|lots)".prop_map(|s| format!("{s:?}")),
                prop::collection::vec("[a-z.>*@:0-9]{0,12}", 0..4).prop_map(|v| format!("{v:?}")),
                "\\{[a-z]{1,5} = [0-9]{1,3}\\}".prop_map(|s| s),
                ".{0,12}".prop_map(|s| s),
            ]
        }

        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::sample::select(vec![
                    "nats_url",
                    "subjects",
                    "streams",
                    "durable",
                    "addr",
                    "demo",
                    "demo_rate",
                    "demo_scenarios",
                    "tick_ms",
                    "nats_buffer",
                    "nats_buffer_bytes",
                    "partitions",
                    "store_bytes",
                    "projection_bytes",
                    "nats_user",
                    "nats_token",
                    "correlation_headers",
                    "service_headers",
                    "name",
                    "subject",
                    "where",
                    "group_by",
                    "aggregate",
                    "field",
                    "window",
                    "format",
                    "time",
                    "level",
                    "message",
                    "command",
                    "events",
                    "read_model",
                    "complete",
                    "compensate",
                    "stall_after",
                ])
                .prop_map(str::to_string),
                "[a-z_]{1,10}",
            ]
        }

        fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                6 => (key(), value()).prop_map(|(k, v)| format!("{k} = {v}")),
                1 => prop::sample::select(vec![
                    "[[projection]]", "[[decode]]", "[flows]", "[[cqrs]]", "[nope]", "[[",
                ])
                .prop_map(str::to_string),
                1 => ".{0,30}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(crate::fuzz_cases(1_000)))]

            /// Any config file: no panic; a config, or an error that names
            /// the file.
            #[test]
            fn fuzz_config_files_load_or_say_why(lines in prop::collection::vec(line(), 0..12)) {
                let f = write(&lines.join("\n"));
                let path = f.path().to_string_lossy().to_string();
                match Config::load_ignoring_env(["eventscope", "--config", &path]) {
                    Ok(c) => prop_assert!(c.tick_ms >= 10),
                    Err(e) => prop_assert!(e.to_string().contains(&path), "{e}"),
                }
            }
        }
    }
}
