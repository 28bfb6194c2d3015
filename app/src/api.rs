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
}
