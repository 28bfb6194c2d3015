//! Bodies of the HTTP API v1 (`/api/v1/...`), shared by the server and the
//! UI. Documented in `docs/API.md`.

use serde::{Deserialize, Serialize};

/// An error answer: what went wrong, in words a person can act on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// The message.
    pub error: String,
}

/// An event as listed (`GET /api/v1/events`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventSummary {
    /// Stable id, ordered by arrival.
    pub id: u64,
    /// When Eventscope received it (Unix ms).
    pub received_ms: i64,
    /// Event time from the payload, else received time (Unix ms).
    pub time_ms: i64,
    /// NATS subject.
    pub subject: String,
    /// `log`, `metric` or `raw`.
    pub kind: String,
    /// How the payload decoded: `json`, `logfmt`, `text`, `other_json`, `binary`.
    pub format: String,
    /// Log level, if any.
    pub level: Option<String>,
    /// Service, if known.
    pub service: Option<String>,
    /// Log message, if any.
    pub message: Option<String>,
    /// Payload size in bytes.
    pub size: usize,
    /// Same `Nats-Msg-Id` as an earlier event.
    pub duplicate: bool,
    /// JetStream stream, for JetStream events.
    pub stream: Option<String>,
    /// JetStream stream sequence, for JetStream events.
    pub seq: Option<u64>,
    /// The start of the payload as text (invalid UTF-8 replaced), at most
    /// 240 characters. Untrusted: render as text only.
    pub preview: String,
}

/// One page of events, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    /// The events.
    pub events: Vec<EventSummary>,
    /// Pass as `cursor` to get the next (older) page; absent at the end.
    pub next_cursor: Option<String>,
    /// How many stored events the query examined.
    pub scanned: usize,
}

/// A metric sample of an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// `name` or `name{k=v,…}`.
    pub series: String,
    /// Value.
    pub value: f64,
}

/// One event in full (`GET /api/v1/events/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventDetail {
    /// The summary fields.
    #[serde(flatten)]
    pub summary: EventSummary,
    /// NATS headers, `[name, value]` pairs.
    pub headers: Vec<(String, String)>,
    /// The payload as text, when it is valid UTF-8.
    pub payload_text: Option<String>,
    /// The payload in base64, when it is not valid UTF-8.
    pub payload_base64: Option<String>,
    /// Metric samples, for metric events.
    pub samples: Vec<Sample>,
    /// The correlation id the event was grouped by (from a header or a
    /// payload field), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<String>,
    /// The reply subject it was published with (a request), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// Payload field paths and headers (`header <name>`) masked or left
    /// out for the asker's role; the stored event has them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked: Vec<String>,
}

/// A sliding window of a projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Window {
    /// The last second.
    #[serde(rename = "1s")]
    S1,
    /// The last 10 seconds.
    #[serde(rename = "10s")]
    S10,
    /// The last minute.
    #[serde(rename = "1m")]
    M1,
    /// The last 15 minutes.
    #[serde(rename = "15m")]
    M15,
    /// The last hour.
    #[serde(rename = "1h")]
    H1,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 5] = [Window::S1, Window::S10, Window::M1, Window::M15, Window::H1];

    /// Length in milliseconds.
    pub fn ms(self) -> i64 {
        match self {
            Window::S1 => 1_000,
            Window::S10 => 10_000,
            Window::M1 => 60_000,
            Window::M15 => 900_000,
            Window::H1 => 3_600_000,
        }
    }

    /// Name as used in URLs (`1s`, `10s`, `1m`, `15m`, `1h`).
    pub fn as_str(self) -> &'static str {
        match self {
            Window::S1 => "1s",
            Window::S10 => "10s",
            Window::M1 => "1m",
            Window::M15 => "15m",
            Window::H1 => "1h",
        }
    }

    /// Parses a window name.
    pub fn parse(s: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.as_str() == s)
    }
}

/// A projection the server offers (`GET /api/v1/projections`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectionInfo {
    /// Name, as used in `/api/v1/projections/{name}`.
    pub name: String,
    /// What it computes.
    pub description: String,
    /// For a user-defined projection (a read model from the config file):
    /// its default window. Absent for built-ins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

/// One demo scenario: its rate and what it has generated
/// (`GET /api/v1/demo`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DemoScenario {
    /// `saga`, `fanout`, `account`, `cqrs` or `logs`.
    pub name: String,
    /// Its rate now (0: off).
    pub rate: f64,
    /// What the rate counts: `flows/s` or `events/s`.
    pub unit: String,
    /// Flows started.
    pub started: u64,
    /// Flows written to complete.
    pub completed: u64,
    /// Flows written to end in compensation.
    pub compensated: u64,
    /// Flows written to stall.
    pub stalled: u64,
    /// Messages published.
    pub published: u64,
}

/// The demo producer's state, or `running: false` when it is off.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DemoState {
    /// Whether this Eventscope runs the demo producer.
    pub running: bool,
    /// Scenarios, in a fixed order.
    pub scenarios: Vec<DemoScenario>,
    /// Messages scheduled but not yet published (flows under way).
    pub pending: u64,
}

/// The list of projections.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectionList {
    /// Every projection.
    pub projections: Vec<ProjectionInfo>,
}

/// An event count over a window and the rate it makes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// Events in the window.
    pub count: u64,
    /// Events per second over the window.
    pub per_sec: f64,
}

/// A named rate (a subject, a service, a level).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyedRate {
    /// Subject, service or level.
    pub key: String,
    /// Count and rate.
    #[serde(flatten)]
    pub rate: Rate,
}

/// Log counts of one service, by level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceLevels {
    /// The service.
    pub service: String,
    /// Counts per level name (only levels seen in the window).
    pub levels: std::collections::BTreeMap<String, u64>,
}

/// Statistics of one metric series over a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricStats {
    /// `name` or `name{k=v,…}`.
    pub series: String,
    /// Samples in the window.
    pub count: u64,
    /// Sum of the samples.
    pub sum: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Median (relative error at most 1%).
    pub p50: f64,
    /// 90th percentile (relative error at most 1%).
    pub p90: f64,
    /// 99th percentile (relative error at most 1%).
    pub p99: f64,
}

/// An item of a top-k list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopItem {
    /// The key (message, subject or service).
    pub key: String,
    /// Events in the window.
    pub count: u64,
}

/// One group of a user-defined projection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomGroup {
    /// The group-by field's value (empty without group-by).
    pub key: String,
    /// Events (or samples) in the window.
    pub count: u64,
    /// The aggregate (absent for quantiles).
    pub value: Option<f64>,
    /// Median, for quantiles.
    pub p50: Option<f64>,
    /// 90th percentile, for quantiles.
    pub p90: Option<f64>,
    /// 99th percentile, for quantiles.
    pub p99: Option<f64>,
}

/// What a projection holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProjectionBody {
    /// Event counts and rates: all, per subject, per service, per level.
    Rates {
        /// All events.
        total: Rate,
        /// Per subject, busiest first.
        subjects: Vec<KeyedRate>,
        /// Per service, busiest first.
        services: Vec<KeyedRate>,
        /// Per level, least severe first.
        levels: Vec<KeyedRate>,
    },
    /// Log counts per service and level.
    LogLevels {
        /// Per level over all services.
        totals: std::collections::BTreeMap<String, u64>,
        /// Per service, by name.
        services: Vec<ServiceLevels>,
    },
    /// Metric statistics per series.
    Metrics {
        /// Per series, by name.
        series: Vec<MetricStats>,
    },
    /// A top-k list, largest first.
    TopK {
        /// The items.
        items: Vec<TopItem>,
    },
    /// A user-defined projection (from the config file).
    Custom {
        /// `count`, `rate`, `sum`, `min`, `max`, `mean`, `quantiles` or `distinct`.
        aggregate: String,
        /// The field aggregated, if any.
        field: Option<String>,
        /// The field grouped by, if any.
        group_by: Option<String>,
        /// One entry per group seen in the window, by key.
        groups: Vec<CustomGroup>,
    },
    /// Events per second, one bucket a second, for the last hour.
    RateHistory {
        /// Start of the first bucket (Unix ms).
        start_ms: i64,
        /// Bucket width (ms).
        step_ms: i64,
        /// All events per bucket.
        total: Vec<u64>,
        /// Per level name, per bucket (only levels seen).
        levels: std::collections::BTreeMap<String, Vec<u64>>,
    },
    /// Flows grouped by correlation id: counts and the most recent.
    Flows {
        /// Counts over the window.
        counts: FlowCounts,
        /// The stall timeout in force (ms).
        stall_ms: i64,
        /// Flows active in the window, most recent first (at most 200).
        flows: Vec<FlowSummary>,
    },
    /// Services and subjects as a graph, with rates on the edges.
    Topology {
        /// Nodes, by column then row.
        nodes: Vec<TopoNode>,
        /// Edges, by (from, to).
        edges: Vec<TopoEdge>,
    },
    /// CQRS pairs: throughput of each side and the read model's lag.
    Cqrs {
        /// One per configured pair.
        pairs: Vec<CqrsState>,
    },
}

/// Where a flow (events sharing a correlation id) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowStatus {
    /// Steps are still arriving.
    Running,
    /// A completion step arrived (and no compensation).
    Completed,
    /// A compensation step arrived: the flow was undone.
    Compensated,
    /// No step for longer than the stall timeout, and not finished.
    Stalled,
}

impl FlowStatus {
    /// Every status, in the order the UI shows them.
    pub const ALL: [FlowStatus; 4] = [
        FlowStatus::Running,
        FlowStatus::Completed,
        FlowStatus::Compensated,
        FlowStatus::Stalled,
    ];

    /// The name used on the wire and in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowStatus::Running => "running",
            FlowStatus::Completed => "completed",
            FlowStatus::Compensated => "compensated",
            FlowStatus::Stalled => "stalled",
        }
    }
}

/// Flow counts over a window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowCounts {
    /// Flows whose first step is in the window.
    pub started: u64,
    /// Flows that completed in the window.
    pub completed: u64,
    /// Flows that were compensated in the window.
    pub compensated: u64,
    /// Flows that passed the stall timeout in the window and are still stalled.
    pub stalled: u64,
    /// Flows running now (not finished, not stalled).
    pub running: u64,
}

/// One flow, in a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowSummary {
    /// The correlation id.
    pub id: String,
    /// Where it stands.
    pub status: FlowStatus,
    /// First step (Unix ms, received time).
    pub started_ms: i64,
    /// Last step (Unix ms).
    pub last_ms: i64,
    /// Steps seen.
    pub steps: u32,
    /// Steps logged at error level or worse.
    pub errors: u32,
    /// Subject of the first step.
    pub first_subject: String,
    /// Subject of the last step.
    pub last_subject: String,
    /// For a compensated flow the step before the first compensation, for
    /// a stalled one its last step: where it stopped.
    pub stopped_at: Option<String>,
    /// Services taking part, in order of first appearance.
    pub services: Vec<String>,
}

/// One step of a flow (`GET /api/v1/flows/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowStep {
    /// The event's id in the log (it may have been evicted since).
    pub event_id: u64,
    /// Received time (Unix ms).
    pub t_ms: i64,
    /// Milliseconds since the previous step (0 for the first).
    pub gap_ms: i64,
    /// Subject.
    pub subject: String,
    /// Service, if known.
    pub service: Option<String>,
    /// Log level, if a log event.
    pub level: Option<String>,
    /// `step`, `completion` or `compensation`.
    pub role: String,
}

/// A flow with its steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowDetail {
    /// The flow.
    pub flow: FlowSummary,
    /// Its steps, oldest first (the first 64 kept; see `steps_dropped`).
    pub steps: Vec<FlowStep>,
    /// Steps past the kept ones, counted but not listed.
    pub steps_dropped: u32,
    /// The stall timeout in force (ms).
    pub stall_ms: i64,
}

/// Lag between two steps of the same flows, in ms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LagStats {
    /// Pairs measured.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

/// One CQRS pair: the write side beside its read model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CqrsState {
    /// Its name (config).
    pub name: String,
    /// Subject pattern of the commands.
    pub command_subject: String,
    /// Subject pattern of the resulting events.
    pub event_subject: String,
    /// Subject pattern of the read model's updates.
    pub read_model_subject: String,
    /// Commands over the window.
    pub commands: Rate,
    /// Events over the window.
    pub events: Rate,
    /// Read-model updates over the window.
    pub updates: Rate,
    /// Command to read-model update, for commands in the window whose
    /// update has arrived (matched by correlation id).
    pub lag: LagStats,
    /// Commands in the window whose read-model update has not arrived.
    pub waiting: u64,
}

/// A node of the topology: a service or a subject (group).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopoNode {
    /// `svc:<name>`, `sub:<subject>`, `str:<stream>` or
    /// `con:<stream>/<consumer>`.
    pub id: String,
    /// `service`, `subject`, `stream` or `consumer`.
    pub kind: String,
    /// The name shown.
    pub label: String,
    /// Column, from the left (distance from where flows start).
    pub column: u32,
    /// Row within the column.
    pub row: u32,
}

/// An edge of the topology.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopoEdge {
    /// Node id it leaves.
    pub from: String,
    /// Node id it enters.
    pub to: String,
    /// `publishes` (service → subject), `consumes` (subject → service),
    /// `stores` (subject → JetStream stream) or `delivers` (stream →
    /// consumer).
    pub kind: String,
    /// The subject (pattern) whose messages it carries.
    pub subject: String,
    /// Events over the window.
    pub rate: Rate,
    /// Of those, logged at error level or worse.
    pub errors: u64,
    /// For a JetStream consumer's edge: messages it has yet to be delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<u64>,
}

/// One field of an inferred schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SchemaField {
    /// Path (`a.b` for nested objects).
    pub path: String,
    /// JSON types seen (`string`, `number`, `bool`, `null`, `array`,
    /// `object`) and how often.
    pub types: std::collections::BTreeMap<String, u64>,
    /// Share of the schema's payloads that had it (0 to 1).
    pub presence: f64,
    /// The first value seen, as text (cut to 80 characters).
    pub example: String,
}

/// The schema of one kind of payload (`GET /api/v1/schemas`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SchemaInfo {
    /// Subject group, and ` · <type>` when payloads carry a type field.
    pub key: String,
    /// Subject group (ids in subjects shown as `*`).
    pub subject: String,
    /// The payloads' type field, if they have one.
    pub event_type: Option<String>,
    /// Payloads read.
    pub samples: u64,
    /// Drifts raised.
    pub drifts: u64,
    /// When the last drift was seen (Unix ms).
    pub last_drift_ms: Option<i64>,
    /// Fields, by path.
    pub fields: Vec<SchemaField>,
}

/// Every inferred schema.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SchemaList {
    /// By key.
    pub schemas: Vec<SchemaInfo>,
    /// Drifts raised in all.
    pub drifts: u64,
    /// Payloads not read (over the per-subject budget, or past the cap).
    pub skipped: u64,
}

/// A projection's state (`GET /api/v1/projections/{name}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectionState {
    /// The projection.
    pub name: String,
    /// The window the numbers cover (absent for the history).
    pub window: Option<Window>,
    /// The moment the state is for (Unix ms).
    pub at_ms: i64,
    /// The last event folded in, if any.
    pub last_event_id: Option<u64>,
    /// Whether this is the live state (no `at=` given).
    pub live: bool,
    /// Thinned to the asker's subject scope: rows that cannot be tied to
    /// an allowed subject are left out, totals are of the rows shown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scoped: bool,
    /// The numbers.
    pub body: ProjectionBody,
}

/// Field `field` of the body of a projection state given as JSON (as the
/// API and the live protocol send it), when the body is of kind `kind`.
/// The browser reads projections this way: decoding a whole
/// [`ProjectionBody`] would put every kind's decoder into every page's wasm.
pub fn body_field<T: serde::de::DeserializeOwned>(
    state: &serde_json::Value,
    kind: &str,
    field: &str,
) -> Option<T> {
    let body = state.get("body")?;
    if body.get("kind")?.as_str()? != kind {
        return None;
    }
    // A clone, decoded from an owned `Value`: the same decoder every other
    // browser-side decode uses (a borrowed one would be another per type).
    serde_json::from_value(body.get(field)?.clone()).ok()
}

/// Event density over the log's span (`GET /api/v1/timeline`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Start of the first bucket (Unix ms).
    pub start_ms: i64,
    /// Bucket width (ms).
    pub step_ms: i64,
    /// Events received per bucket.
    pub counts: Vec<u64>,
    /// Oldest event held.
    pub first_id: Option<u64>,
    /// Newest event held.
    pub last_id: Option<u64>,
    /// The earliest moment `at=` can rebuild (Unix ms), if any.
    pub earliest_at_ms: Option<i64>,
}

/// One band of a chart's legend.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChartBand {
    /// Its name (a level, or `no level`).
    pub name: String,
    /// Its colour, `#rrggbb`.
    pub color: String,
    /// Events in the window.
    pub count: u64,
}

/// A chart drawn by the server (`GET /api/v1/charts/{name}`, and the live
/// `chart` view).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    /// Which chart (`levels`).
    pub name: String,
    /// The window drawn, ending at `at_ms`.
    pub window: Window,
    /// The moment the chart ends at (Unix ms).
    pub at_ms: i64,
    /// Whether this is the live state (no `at=` given).
    pub live: bool,
    /// The drawing, SVG. Made by the server from numbers and times only (no
    /// event content), so it is safe to insert as markup.
    pub svg: String,
    /// The legend, bottom band first; names are event content: text only.
    pub bands: Vec<ChartBand>,
    /// Events in the window.
    pub total: u64,
}

/// Percentiles a metric chart can draw.
pub const PERCENTILES: [u8; 3] = [50, 90, 99];

/// Which metric series a metric chart or table takes: a metric's name and
/// tags each series must carry; and which percentiles to draw. Written as
/// a query string: `metric=http.latency&tags=region=eu,code=200&p=50,99`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricFilter {
    /// The metric's name (the series key before `{`).
    pub metric: String,
    /// Tags every series taken must have, `(key, value)`.
    pub tags: Vec<(String, String)>,
    /// Percentiles to draw (of [`PERCENTILES`]); empty for all of them.
    pub percentiles: Vec<u8>,
}

/// A series key (`name` or `name{k=v,…}`) as its name and tags.
pub fn split_series(series: &str) -> (&str, Vec<(&str, &str)>) {
    match series.split_once('{') {
        Some((name, rest)) => {
            let tags = rest
                .trim_end_matches('}')
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .collect();
            (name, tags)
        }
        None => (series, Vec::new()),
    }
}

impl MetricFilter {
    /// Reads the filter from `(key, value)` pairs (`metric`, `tags`, `p`);
    /// an unknown key or a bad value is an error that says which.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut f = MetricFilter::default();
        for (k, v) in pairs {
            match k {
                "metric" => f.metric = v.trim().to_string(),
                "tags" => f.tags = parse_tags(v)?,
                "p" => {
                    for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        let p = p
                            .trim_start_matches('p')
                            .parse::<u8>()
                            .ok()
                            .filter(|p| PERCENTILES.contains(p))
                            .ok_or_else(|| {
                                format!("p={p:?} is not a percentile; use 50, 90 or 99")
                            })?;
                        if !f.percentiles.contains(&p) {
                            f.percentiles.push(p);
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "unknown metric filter key {other:?}; known: metric, tags, p"
                    ));
                }
            }
        }
        Ok(f)
    }

    /// The filter as a query string (empty parts left out).
    pub fn to_query(&self) -> String {
        let mut parts = Vec::new();
        if !self.metric.is_empty() {
            parts.push(format!(
                "metric={}",
                crate::format::url_component(&self.metric)
            ));
        }
        if !self.tags.is_empty() {
            parts.push(format!(
                "tags={}",
                crate::format::url_component(&self.tags_text())
            ));
        }
        if !self.percentiles.is_empty() {
            let ps: Vec<String> = self.percentiles.iter().map(u8::to_string).collect();
            parts.push(format!("p={}", ps.join("%2C")));
        }
        parts.join("&")
    }

    /// The tags as typed: `k=v,k2=v2`.
    pub fn tags_text(&self) -> String {
        self.tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Whether series `series` (a key such as `name{k=v}`) is taken.
    pub fn matches(&self, series: &str) -> bool {
        let (name, tags) = split_series(series);
        name == self.metric
            && self
                .tags
                .iter()
                .all(|(k, v)| tags.iter().any(|(tk, tv)| tk == k && tv == v))
    }

    /// The percentiles to draw: those chosen, else all.
    pub fn shown(&self) -> Vec<u8> {
        if self.percentiles.is_empty() {
            PERCENTILES.to_vec()
        } else {
            PERCENTILES
                .into_iter()
                .filter(|p| self.percentiles.contains(p))
                .collect()
        }
    }
}

/// `k=v,k2=v2` as pairs; an item without `=` is an error naming it.
pub fn parse_tags(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("tag {t:?} is not key=value"))
        })
        .collect()
}

/// One bucket of a metric's history: its samples' percentiles.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// Start of the bucket (Unix ms).
    pub t_ms: i64,
    /// Samples in the bucket.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

#[cfg(test)]
mod metric_filter_tests {
    use super::*;

    #[test]
    fn a_filter_takes_the_metric_with_all_its_tags_and_round_trips() {
        let f = MetricFilter::from_pairs([
            ("metric", "http.latency"),
            ("tags", "region=eu, code=200"),
            ("p", "99,p50"),
        ])
        .expect("filter");
        assert!(f.matches("http.latency{code=200,region=eu,route=/a}"));
        assert!(!f.matches("http.latency{region=eu}"), "code missing");
        assert!(!f.matches("http.latency.count{code=200,region=eu}"));
        assert_eq!(f.shown(), vec![50, 99]);
        assert_eq!(
            f.to_query(),
            "metric=http.latency&tags=region%3Deu%2Ccode%3D200&p=99%2C50"
        );
        let all = MetricFilter::from_pairs([("metric", "q")]).expect("filter");
        assert!(all.matches("q") && all.matches("q{a=b}"));
        assert_eq!(all.shown(), vec![50, 90, 99]);
        assert!(
            MetricFilter::from_pairs([("p", "75")])
                .unwrap_err()
                .contains("75")
        );
        assert!(
            MetricFilter::from_pairs([("tags", "eu")])
                .unwrap_err()
                .contains("eu")
        );
        assert!(
            MetricFilter::from_pairs([("x", "1")])
                .unwrap_err()
                .contains("x")
        );
        assert_eq!(
            split_series("m{a=1,b=2}"),
            ("m", vec![("a", "1"), ("b", "2")])
        );
    }
}

/// What a signed-in user may do (docs/SECURITY.md). Ordered: each role
/// can do everything the ones before it can.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads every page, view and event the user's scopes allow.
    #[default]
    Viewer,
    /// A viewer who can also change things: the demo's rates (and
    /// re-drive and export, when those exist).
    Operator,
    /// An operator who can also read the audit trail.
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The role's name in the config file and the API.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role named `name`.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Whether this role may do what `needed` may.
    pub fn can(self, needed: Role) -> bool {
        self >= needed
    }
}

/// Who is looking at a page or asking the API: what the server decided
/// for the request, shown in the top bar (the server checks every request
/// itself; the UI only hides what the role cannot use).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The user's or token's name; empty when nobody signed in (no
    /// sign-in configured).
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Signed in with a session (so the top bar offers to sign out).
    pub signed_in: bool,
    /// The subject scope limiting what they see (its name), if any: the
    /// top bar says so, and so do the views it thins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}
