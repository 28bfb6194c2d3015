//! Decoding payloads into what the projections need (PRODUCT.md F2): JSON
//! log events and metric events with the common field aliases, metric
//! arrays, logfmt lines and plain text. Anything else is kept as a raw
//! event: decoding never fails and never drops, it only classifies.
//!
//! Pure functions, no I/O: `decode(subject, payload)` is deterministic, so
//! replaying stored payloads gives the same events again.
//!
//! Field aliases (first one present wins):
//! - time: `ts`, `time`, `timestamp`, `@timestamp`: RFC 3339 text, or a
//!   number of seconds, milliseconds, microseconds or nanoseconds since the
//!   Unix epoch (told apart by magnitude);
//! - level: `level`, `severity`, `lvl`: a name (`warn`, `WARNING`, `err`,
//!   `critical`…), a pino/bunyan number (10..=60) or a syslog number (0..=7);
//! - message: `msg`, `message`;
//! - service: `service`, `app`, `source`; else from the subject (see
//!   [`service_from_subject`]);
//! - correlation: `correlation_id`, `correlationId`, `trace_id`, `traceId`.
//!
//! A JSON object with a string `name` and a numeric `value` is a metric
//! (`tags`: an object of scalars); an array of those is several metrics.

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// What a `[[decode]]` entry of the config file forces the payload to be
/// read as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatHint {
    /// Try JSON, then logfmt, then text (the default).
    #[default]
    Auto,
    /// JSON only; anything else is raw.
    Json,
    /// logfmt only (any keys); anything else is raw.
    Logfmt,
    /// The whole payload is the message.
    Text,
    /// Do not decode: keep as raw bytes.
    Raw,
}

/// A per-subject override of decoding, from the config file's `[[decode]]`
/// entries: which fields hold the time, level, message, service and
/// correlation id (tried before the usual aliases), a fixed service name,
/// or a forced format.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Subject pattern the entry applies to (wildcards allowed).
    pub subject: String,
    /// Forced format.
    #[serde(default)]
    pub format: FormatHint,
    /// Field holding the time.
    pub time: Option<String>,
    /// Field holding the level.
    pub level: Option<String>,
    /// Field holding the message.
    pub message: Option<String>,
    /// Field holding the service.
    pub service: Option<String>,
    /// Field holding the correlation id.
    pub correlation: Option<String>,
    /// A fixed service name for every event on these subjects.
    pub service_name: Option<String>,
}

/// The decoder with the config file's overrides: the first `[[decode]]`
/// entry whose pattern matches a subject applies.
#[derive(Clone, Debug, Default)]
pub struct Decoders {
    mappings: Vec<Mapping>,
    correlation_headers: Vec<String>,
    service_headers: Vec<String>,
}

/// Headers that name the publishing service, tried in this order.
pub const SERVICE_HEADERS: [&str; 2] = ["Nats-Service", "X-Service"];

/// Headers that carry a correlation id, tried in this order before the
/// payload's fields. `traceparent` (W3C) gives its trace id.
pub const CORRELATION_HEADERS: [&str; 4] = [
    "Nats-Correlation-Id",
    "X-Correlation-Id",
    "Correlation-Id",
    "traceparent",
];

impl Decoders {
    /// A decoder with these overrides and the default correlation headers.
    pub fn new(mappings: Vec<Mapping>) -> Self {
        Decoders {
            mappings,
            correlation_headers: CORRELATION_HEADERS.iter().map(|h| h.to_string()).collect(),
            service_headers: SERVICE_HEADERS.iter().map(|h| h.to_string()).collect(),
        }
    }

    /// Reads the service from these headers (in order) instead of the
    /// default ones; an empty list reads the payload and subject only.
    pub fn with_service_headers(mut self, headers: Vec<String>) -> Self {
        self.service_headers = headers;
        self
    }

    /// Reads correlation ids from these headers (in order) instead of the
    /// default ones; an empty list reads payload fields only.
    pub fn with_correlation_headers(mut self, headers: Vec<String>) -> Self {
        self.correlation_headers = headers;
        self
    }

    /// Decodes a message: its payload as [`Self::decode`] does, with the
    /// correlation id taken from the first correlation header present, else
    /// from the payload; and the service from the first service header
    /// present, unless a `[[decode]]` entry says where the service is.
    pub fn decode_message(
        &self,
        subject: &str,
        payload: &[u8],
        headers: &[(String, String)],
    ) -> Decoded {
        let mapping = self.mapping(subject);
        let mut d = decode_with(subject, payload, mapping);
        if headers.is_empty() {
            return d;
        }
        if let Some(id) = correlation_from_headers(&self.correlation_headers, headers) {
            d.correlation_id = Some(id.into());
        }
        let mapped = mapping.is_some_and(|m| m.service.is_some() || m.service_name.is_some());
        if !mapped && let Some(name) = first_header(&self.service_headers, headers) {
            d.service = Some(name.into());
        }
        d
    }

    /// Decodes `payload` published on `subject`. Never fails.
    pub fn decode(&self, subject: &str, payload: &[u8]) -> Decoded {
        decode_with(subject, payload, self.mapping(subject))
    }

    fn mapping(&self, subject: &str) -> Option<&Mapping> {
        self.mappings
            .iter()
            .find(|m| crate::event::subject_matches(&m.subject, subject))
    }
}

/// The trimmed, non-empty value of the first of `names` among `headers`
/// (names compared without case).
fn first_header<'h>(names: &[String], headers: &'h [(String, String)]) -> Option<&'h str> {
    names.iter().find_map(|name| {
        let (_, v) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))?;
        Some(v.trim()).filter(|v| !v.is_empty())
    })
}

/// The value of the first of `names` among `headers` (names compared
/// without case); for `traceparent`, its trace id.
pub fn correlation_from_headers(names: &[String], headers: &[(String, String)]) -> Option<String> {
    if headers.is_empty() {
        return None;
    }
    names.iter().find_map(|name| {
        let (_, v) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))?;
        let v = v.trim();
        let v = if name.eq_ignore_ascii_case("traceparent") {
            // version-traceid-parentid-flags
            v.split('-').nth(1).unwrap_or(v)
        } else {
            v
        };
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// Severity of a log event, ordered from least to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Finest detail.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected, handled.
    Warn,
    /// A failure.
    Error,
    /// A failure that stops the service.
    Fatal,
}

impl Level {
    /// All levels, least severe first.
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    /// Lower-case name, as shown and as accepted in filters.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    /// Parses a level name in any case, with common synonyms.
    pub fn parse(name: &str) -> Option<Level> {
        let lower = name.trim().to_ascii_lowercase();
        Some(match lower.as_str() {
            "trace" | "trc" | "verbose" => Level::Trace,
            "debug" | "dbg" => Level::Debug,
            "info" | "inf" | "information" | "informational" | "notice" => Level::Info,
            "warn" | "wrn" | "warning" => Level::Warn,
            "error" | "err" | "eror" => Level::Error,
            "fatal" | "ftl" | "critical" | "crit" | "panic" | "emerg" | "emergency" | "alert" => {
                Level::Fatal
            }
            _ => return None,
        })
    }

    /// A numeric level: pino/bunyan (10 trace … 60 fatal) from 10 up,
    /// syslog severity (0 emergency … 7 debug) below.
    pub fn from_number(n: f64) -> Option<Level> {
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        Some(if n >= 10.0 {
            match n as u64 {
                10..=19 => Level::Trace,
                20..=29 => Level::Debug,
                30..=39 => Level::Info,
                40..=49 => Level::Warn,
                50..=59 => Level::Error,
                _ => Level::Fatal,
            }
        } else {
            match n as u64 {
                0..=2 => Level::Fatal,
                3 => Level::Error,
                4 => Level::Warn,
                5 | 6 => Level::Info,
                _ => Level::Debug,
            }
        })
    }
}

/// What kind of event a payload turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A log event (JSON object, logfmt line or plain text).
    Log,
    /// One or more metric samples.
    Metric,
    /// Nothing we understand: kept as bytes, counted as a decode failure.
    Raw,
}

impl Kind {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Log => "log",
            Kind::Metric => "metric",
            Kind::Raw => "raw",
        }
    }
}

/// How the payload was read (the "decode status" shown in the inspector).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Parsed as JSON.
    Json,
    /// Parsed as logfmt (`key=value` pairs).
    Logfmt,
    /// UTF-8 text, taken whole as the message.
    Text,
    /// JSON that is neither a log object nor metrics (an array, a number…).
    OtherJson,
    /// Not UTF-8 (or empty): kept as bytes.
    Binary,
}

impl Format {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Logfmt => "logfmt",
            Format::Text => "text",
            Format::OtherJson => "other_json",
            Format::Binary => "binary",
        }
    }
}

/// One metric sample.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSample {
    /// Metric name.
    pub name: String,
    /// The value.
    pub value: f64,
    /// Time of the sample, Unix milliseconds, if the payload said.
    pub time_ms: Option<i64>,
    /// Tags, sorted by key (so the same tag set always looks the same).
    pub tags: Vec<(String, String)>,
}

/// A decoded piece of text: a string that holds up to 24 bytes inline, so
/// the usual service name, level or short message costs no allocation (two
/// per event, allocated in ingest and freed in the hub, were 5% of the
/// CPU of a burst).
pub type Text = compact_str::CompactString;

/// What a payload says, as far as the projections care.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// Log, metric or raw.
    pub kind: Kind,
    /// How it was read.
    pub format: Format,
    /// Event time, Unix milliseconds, if the payload carried one.
    pub time_ms: Option<i64>,
    /// Log level, if any.
    pub level: Option<Level>,
    /// Service name (from the payload, else from the subject).
    pub service: Option<Text>,
    /// Log message, if any.
    pub message: Option<Text>,
    /// Correlation id from the payload, if any.
    pub correlation_id: Option<Text>,
    /// Metric samples (empty unless `kind` is `Metric`).
    pub metrics: Vec<MetricSample>,
}

impl Decoded {
    fn raw(format: Format, subject: &str) -> Self {
        Decoded {
            kind: Kind::Raw,
            format,
            time_ms: None,
            level: None,
            service: service_from_subject(subject),
            message: None,
            correlation_id: None,
            metrics: Vec::new(),
        }
    }
}

/// Subject tokens that name a kind of traffic rather than a service.
const CATEGORY_TOKENS: [&str; 14] = [
    "logs",
    "log",
    "metrics",
    "metric",
    "events",
    "event",
    "traces",
    "trace",
    "app",
    "apps",
    "svc",
    "service",
    "services",
    "telemetry",
];

/// The service a subject names when the payload does not: the first token
/// that is not a category word (`logs`, `metrics`, `events`, `app`…), so
/// `logs.orders.eu`, `app.logs.orders` and `orders.created` all give
/// `orders`. Wildcard or empty tokens give none, and so do reply inboxes
/// (`_INBOX.…`): who answers is not in their name.
pub fn service_from_subject(subject: &str) -> Option<Text> {
    if subject.starts_with("_INBOX") {
        return None;
    }
    let token = subject
        .split('.')
        .find(|t| !CATEGORY_TOKENS.iter().any(|c| t.eq_ignore_ascii_case(c)))?;
    (!token.is_empty() && token != "*" && token != ">").then(|| token.into())
}

/// Decodes `payload`, published on `subject`, with no overrides. Never fails.
pub fn decode(subject: &str, payload: &[u8]) -> Decoded {
    decode_with(subject, payload, None)
}

/// Decodes with an optional per-subject [`Mapping`]. Never fails.
pub fn decode_with(subject: &str, payload: &[u8], mapping: Option<&Mapping>) -> Decoded {
    let mut decoded = decode_inner(subject, payload, mapping);
    if let Some(name) = mapping.and_then(|m| m.service_name.as_ref()) {
        decoded.service = Some(name.as_str().into());
    }
    decoded
}

fn decode_inner(subject: &str, payload: &[u8], mapping: Option<&Mapping>) -> Decoded {
    let hint = mapping.map_or(FormatHint::Auto, |m| m.format);
    let trimmed = payload.trim_ascii();
    if trimmed.is_empty() || hint == FormatHint::Raw {
        return Decoded::raw(Format::Binary, subject);
    }
    let json_ok = matches!(hint, FormatHint::Auto | FormatHint::Json);
    // Not valid JSON after all: read on as text.
    if json_ok && matches!(trimmed[0], b'{' | b'[') {
        let mut fields = Fields::default();
        if let Ok(json) = decode_json(trimmed, mapping, &mut fields) {
            return json.into_decoded(fields, subject);
        }
    }
    let Ok(text) = std::str::from_utf8(trimmed) else {
        return Decoded::raw(Format::Binary, subject);
    };
    match hint {
        FormatHint::Json => return Decoded::raw(Format::Binary, subject),
        FormatHint::Auto | FormatHint::Logfmt => {
            if let Some(decoded) = decode_logfmt(subject, text, mapping, hint == FormatHint::Logfmt)
            {
                return decoded;
            }
            if hint == FormatHint::Logfmt {
                return Decoded::raw(Format::Binary, subject);
            }
        }
        FormatHint::Text | FormatHint::Raw => {}
    }
    Decoded {
        kind: Kind::Log,
        format: Format::Text,
        time_ms: None,
        level: sniff_level(text),
        service: service_from_subject(subject),
        message: Some(text.into()),
        correlation_id: None,
        metrics: Vec::new(),
    }
}

/// A leading level word in a text line: `ERROR something`, `[warn] x`.
/// Only shouted (all capitals) or bracketed words count, so a message that
/// merely starts with "error" in prose is not taken for a level.
fn sniff_level(text: &str) -> Option<Level> {
    let bracketed = text.starts_with('[');
    let word = text
        .trim_start_matches('[')
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()?;
    let shouted = word.len() >= 3 && word.chars().all(|c| c.is_ascii_uppercase());
    if shouted || bracketed {
        Level::parse(word)
    } else {
        None
    }
}

// ---------------------------------------------------------------- JSON

/// The fields of one JSON object that we look at; everything else is
/// skipped without allocating.
#[derive(Default)]
struct Fields {
    time_ms: Option<i64>,
    level: Option<Level>,
    message: Option<Text>,
    service: Option<Text>,
    correlation_id: Option<Text>,
    name: Option<String>,
    value: Option<f64>,
    tags: Vec<(String, String)>,
}

/// What a JSON payload turned out to be. An object's fields are written
/// into the caller's [`Fields`] in place: moving them through each return
/// cost a tenth of the decode time in memory copies.
enum Json {
    Object,
    Metrics(Vec<MetricSample>),
    Other,
}

impl Fields {
    fn metric(&self) -> Option<MetricSample> {
        Some(MetricSample {
            name: self.name.clone()?,
            value: self.value?,
            time_ms: self.time_ms,
            tags: self.tags.clone(),
        })
    }
}

impl Json {
    fn into_decoded(self, f: Fields, subject: &str) -> Decoded {
        match self {
            Json::Object => {
                if let Some(sample) = f.metric() {
                    let service = sample
                        .tags
                        .iter()
                        .find(|(k, _)| k == "service")
                        .map(|(_, v)| v.as_str().into())
                        .or(f.service)
                        .or_else(|| service_from_subject(subject));
                    Decoded {
                        kind: Kind::Metric,
                        format: Format::Json,
                        time_ms: f.time_ms,
                        level: None,
                        service,
                        message: None,
                        correlation_id: f.correlation_id,
                        metrics: vec![sample],
                    }
                } else {
                    Decoded {
                        kind: Kind::Log,
                        format: Format::Json,
                        time_ms: f.time_ms,
                        level: f.level,
                        service: f.service.or_else(|| service_from_subject(subject)),
                        message: f.message,
                        correlation_id: f.correlation_id,
                        metrics: Vec::new(),
                    }
                }
            }
            Json::Metrics(samples) => Decoded {
                kind: Kind::Metric,
                format: Format::Json,
                time_ms: samples.iter().find_map(|s| s.time_ms),
                level: None,
                service: samples
                    .iter()
                    .find_map(|s| s.tags.iter().find(|(k, _)| k == "service"))
                    .map(|(_, v)| v.as_str().into())
                    .or_else(|| service_from_subject(subject)),
                message: None,
                correlation_id: None,
                metrics: samples,
            },
            Json::Other => Decoded::raw(Format::OtherJson, subject),
        }
    }
}

fn decode_json(
    bytes: &[u8],
    mapping: Option<&Mapping>,
    fields: &mut Fields,
) -> Result<Json, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let json = de::Deserializer::deserialize_any(&mut de, JsonVisitor(mapping, fields))?;
    de.end()?;
    Ok(json)
}

struct JsonVisitor<'m, 'f>(Option<&'m Mapping>, &'f mut Fields);

impl<'de> Visitor<'de> for JsonVisitor<'_, '_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object or array")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Json, A::Error> {
        FieldsVisitor(self.0).fill(self.1, map)?;
        Ok(Json::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut samples = Vec::new();
        let mut all_metrics = true;
        while let Some(item) = seq.next_element_seed(FieldsSeed(self.0))? {
            match item.as_ref().and_then(Fields::metric) {
                Some(sample) if all_metrics => samples.push(sample),
                _ => all_metrics = false,
            }
        }
        Ok(if all_metrics && !samples.is_empty() {
            Json::Metrics(samples)
        } else {
            Json::Other
        })
    }
}

/// Deserializes one array element: `Some(fields)` for an object, `None`
/// for anything else (skipped).
struct FieldsSeed<'m>(Option<&'m Mapping>);

impl<'de> de::DeserializeSeed<'de> for FieldsSeed<'_> {
    type Value = Option<Fields>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Fields>, D::Error> {
        struct ElementVisitor<'m>(Option<&'m Mapping>);
        impl<'de> Visitor<'de> for ElementVisitor<'_> {
            type Value = Option<Fields>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                FieldsVisitor(self.0).visit_map(map).map(Some)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(None)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
        }
        d.deserialize_any(ElementVisitor(self.0))
    }
}

struct FieldsVisitor<'m>(Option<&'m Mapping>);

/// Which field a key names under a mapping's overrides, if any.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Time,
    Level,
    Message,
    Service,
    Correlation,
}

fn mapped_role(mapping: Option<&Mapping>, key: &str) -> Option<Role> {
    let m = mapping?;
    let is = |f: &Option<String>| f.as_deref() == Some(key);
    if is(&m.time) {
        Some(Role::Time)
    } else if is(&m.level) {
        Some(Role::Level)
    } else if is(&m.message) {
        Some(Role::Message)
    } else if is(&m.service) {
        Some(Role::Service)
    } else if is(&m.correlation) {
        Some(Role::Correlation)
    } else {
        None
    }
}

impl FieldsVisitor<'_> {
    fn visit_map<'de, A: MapAccess<'de>>(self, map: A) -> Result<Fields, A::Error> {
        let mut f = Fields::default();
        self.fill(&mut f, map)?;
        Ok(f)
    }

    fn fill<'de, A: MapAccess<'de>>(self, f: &mut Fields, mut map: A) -> Result<(), A::Error> {
        // Fields named by the mapping win over the usual aliases.
        let mut mapped: Vec<Role> = Vec::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if let Some(role) = mapped_role(self.0, &key) {
                let v = map.next_value::<Scalar>()?;
                match role {
                    Role::Time => f.time_ms = v.time_ms(),
                    Role::Level => f.level = v.level(),
                    Role::Message => f.message = v.text(),
                    Role::Service => f.service = v.text().filter(|s| !s.is_empty()),
                    Role::Correlation => f.correlation_id = v.text(),
                }
                mapped.push(role);
                continue;
            }
            let taken = |r: Role| mapped.contains(&r);
            match key.as_ref() {
                "ts" | "time" | "timestamp" | "@timestamp"
                    if f.time_ms.is_none() && !taken(Role::Time) =>
                {
                    f.time_ms = map.next_value::<Scalar>()?.time_ms();
                }
                "level" | "severity" | "lvl" if f.level.is_none() && !taken(Role::Level) => {
                    f.level = map.next_value::<Scalar>()?.level();
                }
                "msg" | "message" if f.message.is_none() && !taken(Role::Message) => {
                    f.message = map.next_value::<Scalar>()?.text();
                }
                "service" | "app" | "source" if f.service.is_none() && !taken(Role::Service) => {
                    f.service = map.next_value::<Scalar>()?.text().filter(|s| !s.is_empty());
                }
                "correlation_id" | "correlationId" | "trace_id" | "traceId"
                    if f.correlation_id.is_none() =>
                {
                    f.correlation_id = map.next_value::<Scalar>()?.text();
                }
                "name" if f.name.is_none() => {
                    f.name = map.next_value::<Scalar>()?.text().map(Text::into_string);
                }
                "value" if f.value.is_none() => f.value = map.next_value::<Scalar>()?.number(),
                "tags" | "labels" if f.tags.is_empty() => {
                    f.tags = map.next_value::<Tags>()?.0;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A JSON scalar (objects and arrays become `Other`, skipped). Text is
/// borrowed from the payload when it has no escapes: a level or a time
/// read as text costs no allocation.
enum Scalar<'de> {
    Text(std::borrow::Cow<'de, str>),
    Number(f64),
    Bool(bool),
    Other,
}

impl Scalar<'_> {
    fn text(self) -> Option<Text> {
        match self {
            Scalar::Text(s) => Some(s.as_ref().into()),
            Scalar::Number(n) => Some(format_number(n).into()),
            Scalar::Bool(b) => Some(if b { "true" } else { "false" }.into()),
            Scalar::Other => None,
        }
    }

    fn number(self) -> Option<f64> {
        match self {
            Scalar::Number(n) if n.is_finite() => Some(n),
            Scalar::Text(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
            _ => None,
        }
    }

    fn level(self) -> Option<Level> {
        match self {
            Scalar::Text(s) => Level::parse(&s),
            Scalar::Number(n) => Level::from_number(n),
            _ => None,
        }
    }

    fn time_ms(self) -> Option<i64> {
        match self {
            Scalar::Number(n) => epoch_to_ms(n),
            Scalar::Text(s) => parse_time_text(&s),
            _ => None,
        }
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// Seconds, milliseconds, microseconds or nanoseconds since the epoch, told
/// apart by magnitude (seconds up to the year 5138, and so on).
pub fn epoch_to_ms(n: f64) -> Option<i64> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let ms = if n < 1e11 {
        n * 1e3
    } else if n < 1e14 {
        n
    } else if n < 1e17 {
        n / 1e3
    } else {
        n / 1e6
    };
    Some(ms.round() as i64)
}

/// RFC 3339 (`2026-11-26T06:00:00.123Z`, with an offset or `Z`), or a
/// number in a string.
fn parse_time_text(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    // "2026-11-26 06:00:00Z" and friends: a space instead of the T.
    if s.len() > 10 && s.as_bytes()[10] == b' ' {
        let with_t = format!("{}T{}", &s[..10], &s[11..]);
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&with_t) {
            return Some(t.timestamp_millis());
        }
    }
    s.parse::<f64>().ok().and_then(epoch_to_ms)
}

/// An object's key, borrowed from the payload unless it has escapes.
/// (serde's own `Cow<str>` always copies: one allocation per key.)
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(std::borrow::Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(std::borrow::Cow::Owned(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Number(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Number(v as f64))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// A `tags` object: scalar values kept as text, sorted by key; anything
/// else (arrays, nested objects) skipped.
struct Tags(Vec<(String, String)>);

impl<'de> de::Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tags;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of tags")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tags, A::Error> {
                let mut tags = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    if let Some(v) = map.next_value::<Scalar>()?.text() {
                        tags.push((k, v.into_string()));
                    }
                }
                tags.sort();
                tags.dedup_by(|a, b| a.0 == b.0);
                Ok(Tags(tags))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tags, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Tags(Vec::new()))
            }
            fn visit_str<E>(self, _: &str) -> Result<Tags, E> {
                Ok(Tags(Vec::new()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Tags, E> {
                Ok(Tags(Vec::new()))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Tags, E> {
                Ok(Tags(Vec::new()))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Tags, E> {
                Ok(Tags(Vec::new()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Tags, E> {
                Ok(Tags(Vec::new()))
            }
            fn visit_unit<E>(self) -> Result<Tags, E> {
                Ok(Tags(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------- logfmt

/// Parses a logfmt line (`level=warn msg="retrying call" service=api`).
/// It is logfmt when every space-separated token is `key=value` (quoted
/// values may hold spaces) and at least one key is a known field (or, when
/// `forced`, any key at all).
fn decode_logfmt(
    subject: &str,
    line: &str,
    mapping: Option<&Mapping>,
    forced: bool,
) -> Option<Decoded> {
    if line.contains('\n') {
        return None;
    }
    let pairs = logfmt_pairs(line)?;
    let mut out = Decoded {
        kind: Kind::Log,
        format: Format::Logfmt,
        time_ms: None,
        level: None,
        service: None,
        message: None,
        correlation_id: None,
        metrics: Vec::new(),
    };
    let mut known = forced;
    for (k, v) in pairs {
        if let Some(role) = mapped_role(mapping, &k) {
            match role {
                Role::Time => out.time_ms = parse_time_text(&v),
                Role::Level => {
                    out.level = Level::parse(&v)
                        .or_else(|| v.parse::<f64>().ok().and_then(Level::from_number))
                }
                Role::Message => out.message = Some(v.into()),
                Role::Service => out.service = Some(Text::from(v)).filter(|s| !s.is_empty()),
                Role::Correlation => out.correlation_id = Some(v.into()),
            }
            known = true;
            continue;
        }
        known |= match k.as_str() {
            "ts" | "time" | "timestamp" | "@timestamp" if out.time_ms.is_none() => {
                out.time_ms = parse_time_text(&v);
                true
            }
            "level" | "severity" | "lvl" if out.level.is_none() => {
                out.level =
                    Level::parse(&v).or_else(|| v.parse::<f64>().ok().and_then(Level::from_number));
                true
            }
            "msg" | "message" if out.message.is_none() => {
                out.message = Some(v.into());
                true
            }
            "service" | "app" | "source" if out.service.is_none() => {
                out.service = Some(Text::from(v)).filter(|s| !s.is_empty());
                true
            }
            "correlation_id" | "trace_id" if out.correlation_id.is_none() => {
                out.correlation_id = Some(v.into());
                true
            }
            _ => false,
        };
    }
    if !known {
        return None;
    }
    if out.service.is_none() {
        out.service = service_from_subject(subject);
    }
    Some(out)
}

/// Splits a logfmt line into pairs; `None` if any token is not `key=value`.
fn logfmt_pairs(line: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = line.trim().chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ' ' || c == '\t' || c == '"' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() || chars.next() != Some('=') {
            return None;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(escaped) = chars.next() {
                            value.push(match escaped {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                        }
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    other => value.push(other),
                }
            }
            if !closed {
                return None;
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' || c == '\t' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        pairs.push((key, value));
    }
    (!pairs.is_empty()).then_some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_states_the_service_rule_the_decoder_follows() {
        // Issue 16: the README said "the subject's first token".
        let readme = include_str!("../../../README.md");
        let row = readme
            .lines()
            .find(|l| l.starts_with("| `--service-header"))
            .expect("the --service-header row");
        let listed: Vec<&str> = row
            .split("category word")
            .nth(1)
            .expect("the rule names category words")
            .split(" so ")
            .next()
            .unwrap_or("")
            .split('`')
            .skip(1)
            .step_by(2)
            .collect();
        assert_eq!(
            listed, CATEGORY_TOKENS,
            "the README's list is the decoder's"
        );
        for (subject, service) in [
            ("logs.orders.eu", Some("orders")),
            ("app.logs.orders", Some("orders")),
            ("orders.created", Some("orders")),
            ("_INBOX.abc", None),
        ] {
            assert!(
                service.is_none() || row.contains(&format!("`{subject}`")),
                "{subject} in the README"
            );
            assert_eq!(
                service_from_subject(subject).as_deref(),
                service,
                "{subject}"
            );
        }
    }

    #[test]
    fn service_headers_win_over_payload_and_subject_but_not_a_decode_entry() {
        let h = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        let body = br#"{"msg":"x","service":"from-payload"}"#;
        let d = Decoders::new(vec![Mapping {
            subject: "fixed.>".into(),
            service_name: Some("configured".into()),
            ..Mapping::default()
        }]);
        let svc = |d: &Decoders, subject: &str, headers: &[(String, String)]| {
            d.decode_message(subject, body, headers).service
        };
        assert_eq!(svc(&d, "a.b", &[]).as_deref(), Some("from-payload"));
        assert_eq!(
            svc(&d, "a.b", &h("x-service", " fraud ")).as_deref(),
            Some("fraud")
        );
        assert_eq!(
            svc(&d, "a.b", &h("Nats-Service", "")).as_deref(),
            Some("from-payload")
        );
        assert_eq!(
            svc(&d, "fixed.x", &h("X-Service", "fraud")).as_deref(),
            Some("configured")
        );
        let custom = Decoders::new(Vec::new()).with_service_headers(vec!["X-App".into()]);
        assert_eq!(
            svc(&custom, "a.b", &h("X-Service", "fraud")).as_deref(),
            Some("from-payload")
        );
        assert_eq!(
            svc(&custom, "a.b", &h("x-app", "billing")).as_deref(),
            Some("billing")
        );
        // A reply inbox names no service.
        assert_eq!(service_from_subject("_INBOX.abc.1"), None);
        assert_eq!(decode("_INBOX.abc.1", b"{}").service, None);
    }

    #[test]
    fn correlation_headers_win_over_payload_fields_in_order() {
        let d = Decoders::new(Vec::new());
        let body = br#"{"msg":"x","correlation_id":"from-payload"}"#;
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let corr =
            |headers: &[(String, String)]| d.decode_message("a.b", body, headers).correlation_id;
        assert_eq!(corr(&[]).as_deref(), Some("from-payload"));
        assert_eq!(
            corr(&h(&[
                ("nats-correlation-id", "o-1"),
                ("traceparent", "00-t-s-01")
            ]))
            .as_deref(),
            Some("o-1")
        );
        assert_eq!(
            corr(&h(&[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            )]))
            .as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let payload_only = Decoders::new(Vec::new()).with_correlation_headers(Vec::new());
        let d2 = payload_only.decode_message("a.b", body, &h(&[("Nats-Correlation-Id", "o-1")]));
        assert_eq!(d2.correlation_id.as_deref(), Some("from-payload"));
    }

    fn d(subject: &str, payload: &str) -> Decoded {
        decode(subject, payload.as_bytes())
    }

    #[test]
    fn json_log_with_aliases() {
        let e = d(
            "logs.api",
            r#"{"@timestamp":"2026-11-26T06:00:00.250Z","severity":"WARNING","message":"slow","app":"billing","x":[1,{"y":2}]}"#,
        );
        assert_eq!(e.kind, Kind::Log);
        assert_eq!(e.format, Format::Json);
        assert_eq!(e.time_ms, Some(1_795_672_800_250));
        assert_eq!(e.level, Some(Level::Warn));
        assert_eq!(e.message.as_deref(), Some("slow"));
        assert_eq!(e.service.as_deref(), Some("billing"));
    }

    #[test]
    fn escaped_keys_and_values_are_read_too() {
        // Keys are borrowed from the payload; one with an escape is copied.
        let e = d(
            "logs.api",
            r#"{"m\u0073g":"a \"quoted\" line","lev\u0065l":"error","service":"b\u00e9ta"}"#,
        );
        assert_eq!(e.message.as_deref(), Some(r#"a "quoted" line"#));
        assert_eq!(e.level, Some(Level::Error));
        assert_eq!(e.service.as_deref(), Some("béta"));
    }

    #[test]
    fn first_alias_wins_and_duplicates_do_not_fail() {
        let e = d(
            "a",
            r#"{"ts":1795413600,"time":"garbage","level":"error","lvl":"info"}"#,
        );
        assert_eq!(e.time_ms, Some(1_795_413_600_000));
        assert_eq!(e.level, Some(Level::Error));
    }

    #[test]
    fn service_falls_back_to_the_subject() {
        assert_eq!(
            d("logs.orders.eu", r#"{"msg":"x"}"#).service.as_deref(),
            Some("orders")
        );
        assert_eq!(
            d("orders", r#"{"msg":"x"}"#).service.as_deref(),
            Some("orders")
        );
        assert_eq!(service_from_subject("logs."), None);
    }

    #[test]
    fn numeric_levels_and_epochs() {
        assert_eq!(d("a", r#"{"level":50}"#).level, Some(Level::Error));
        assert_eq!(d("a", r#"{"level":30}"#).level, Some(Level::Info));
        assert_eq!(d("a", r#"{"level":4}"#).level, Some(Level::Warn));
        for (ts, ms) in [
            ("1795413600", 1_795_413_600_000),
            ("1795413600123", 1_795_413_600_123),
            ("1795413600123456", 1_795_413_600_123),
            ("1795413600123456789", 1_795_413_600_123),
            ("1795413600.5", 1_795_413_600_500),
        ] {
            assert_eq!(
                d("a", &format!(r#"{{"ts":{ts}}}"#)).time_ms,
                Some(ms),
                "{ts}"
            );
        }
        assert_eq!(
            d("a", r#"{"time":"2026-11-26T08:00:00+02:00"}"#).time_ms,
            Some(1_795_672_800_000)
        );
    }

    #[test]
    fn metric_single_and_array() {
        let e = d(
            "metrics.api",
            r#"{"name":"latency_ms","value":12.5,"ts":1795413600000,"tags":{"route":"/a","service":"api","code":200}}"#,
        );
        assert_eq!(e.kind, Kind::Metric);
        assert_eq!(e.metrics.len(), 1);
        let m = &e.metrics[0];
        assert_eq!((m.name.as_str(), m.value), ("latency_ms", 12.5));
        assert_eq!(
            m.tags,
            vec![
                ("code".to_string(), "200".to_string()),
                ("route".to_string(), "/a".to_string()),
                ("service".to_string(), "api".to_string())
            ]
        );
        assert_eq!(e.service.as_deref(), Some("api"));

        let e = d(
            "m",
            r#"[{"name":"a","value":1},{"name":"b","value":"2.5"}]"#,
        );
        assert_eq!(e.kind, Kind::Metric);
        assert_eq!(
            e.metrics.iter().map(|m| m.value).collect::<Vec<_>>(),
            vec![1.0, 2.5]
        );
    }

    #[test]
    fn json_that_is_neither_is_raw_other_json() {
        let e = d("a", r#"[1,2,3]"#);
        assert_eq!((e.kind, e.format), (Kind::Raw, Format::OtherJson));
        let e = d("a", r#"[{"name":"a","value":1},{"nope":1}]"#);
        assert_eq!(e.kind, Kind::Raw);
    }

    #[test]
    fn logfmt_lines() {
        let e = d(
            "logs.x",
            r#"ts=2026-11-26T06:00:00Z level=warn msg="retrying upstream call" attempt=3"#,
        );
        assert_eq!(e.format, Format::Logfmt);
        assert_eq!(e.level, Some(Level::Warn));
        assert_eq!(e.message.as_deref(), Some("retrying upstream call"));
        assert_eq!(e.time_ms, Some(1_795_672_800_000));
        assert_eq!(e.service.as_deref(), Some("x"));
    }

    #[test]
    fn plain_text_and_its_level_word() {
        let e = d("logs.x", "ERROR disk full on /var");
        assert_eq!((e.kind, e.format), (Kind::Log, Format::Text));
        assert_eq!(e.level, Some(Level::Error));
        assert_eq!(e.message.as_deref(), Some("ERROR disk full on /var"));
        assert_eq!(d("l", "[warn] low memory").level, Some(Level::Warn));
        assert_eq!(d("l", "error handling is fine here").level, None);
        // Broken JSON is still kept, as text.
        let e = d("l", r#"{"msg": "unterminated"#);
        assert_eq!(e.format, Format::Text);
        assert_eq!(e.message.as_deref(), Some(r#"{"msg": "unterminated"#));
    }

    #[test]
    fn binary_and_empty_are_raw() {
        assert_eq!(decode("a", &[0xff, 0xfe, 0x00]).kind, Kind::Raw);
        assert_eq!(decode("a", b"  ").format, Format::Binary);
    }

    #[test]
    fn mapping_names_fields_and_forces_formats() {
        let m = Mapping {
            subject: "legacy.>".into(),
            time: Some("when".into()),
            level: Some("sev".into()),
            message: Some("text".into()),
            service_name: Some("billing".into()),
            ..Mapping::default()
        };
        let decoders = Decoders::new(vec![
            m,
            Mapping {
                subject: "blob.*".into(),
                format: FormatHint::Raw,
                ..Mapping::default()
            },
            Mapping {
                subject: "kv.>".into(),
                format: FormatHint::Logfmt,
                ..Mapping::default()
            },
        ]);
        let e = decoders.decode(
            "legacy.app",
            br#"{"when":"2026-11-26T06:00:00Z","ts":1,"sev":"crit","level":"info","text":"down","msg":"x"}"#,
        );
        assert_eq!(e.time_ms, Some(1_795_672_800_000));
        assert_eq!(e.level, Some(Level::Fatal));
        assert_eq!(e.message.as_deref(), Some("down"));
        assert_eq!(e.service.as_deref(), Some("billing"));
        // Other subjects keep the usual aliases.
        let e = decoders.decode("other.app", br#"{"ts":1,"level":"info","msg":"x"}"#);
        assert_eq!(e.level, Some(Level::Info));
        assert_eq!(
            decoders.decode("blob.x", br#"{"level":"info"}"#).kind,
            Kind::Raw
        );
        // Forced logfmt takes any keys; auto needs a known one.
        assert_eq!(decoders.decode("kv.a", b"a=1 b=2").format, Format::Logfmt);
        assert_eq!(decoders.decode("other", b"a=1 b=2").format, Format::Text);
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(crate::fuzz_cases(2_000)))]

            #[test]
            fn fuzz_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let e = decode("fuzz.subject", &bytes);
                // Every input becomes an event; raw exactly when not text-like.
                if std::str::from_utf8(bytes.trim_ascii()).is_err() || bytes.trim_ascii().is_empty() {
                    prop_assert_eq!(e.kind, Kind::Raw);
                }
            }

            #[test]
            fn fuzz_arbitrary_json_shapes_never_panic(
                key in prop_oneof![
                    Just("ts".to_string()), Just("level".to_string()), Just("msg".to_string()),
                    Just("name".to_string()), Just("value".to_string()), Just("tags".to_string()),
                    "[a-z@]{1,8}",
                ],
                value in prop_oneof![
                    any::<i64>().prop_map(|n| n.to_string()),
                    any::<f64>().prop_map(|n| if n.is_finite() { n.to_string() } else { "0".into() }),
                    "\\PC{0,20}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
                    Just("null".to_string()), Just("[]".to_string()), Just("{\"a\":[{}]}".to_string()),
                ],
            ) {
                let payload = format!("{{\"{key}\":{value},\"name\":\"n\"}}");
                let e = decode("fuzz", payload.as_bytes());
                prop_assert_ne!(e.kind, Kind::Raw);
                let arr = format!("[{payload},{payload}]");
                let _ = decode("fuzz", arr.as_bytes());
            }
        }
    }
}
