//! The event as it travels from ingest to the store: what NATS gave us
//! (subject, payload, headers, where it came from) plus what decoding made
//! of it. The store assigns it an id; projections read it back as a
//! [`crate::store::EventRef`].

use crate::ingest::decode::Decoded;
use bytes::Bytes;

/// Where an event came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A core NATS subscription.
    Core,
    /// A JetStream stream, with the message's stream sequence.
    JetStream {
        /// Stream name (shared by every event read from the stream).
        stream: std::sync::Arc<str>,
        /// Stream sequence of the message.
        seq: u64,
    },
}

/// An event on its way into the store.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// When we received it, Unix milliseconds.
    pub received_ms: i64,
    /// Subject it was published on (as NATS gave it: a shared buffer, no
    /// copy per event).
    pub subject: async_nats::Subject,
    /// The payload, untouched. Copied into the store's own chunks on
    /// append, so this (possibly a slice of a large read buffer) is freed.
    pub payload: Bytes,
    /// NATS headers, in order, repeated names kept.
    pub headers: Vec<(String, String)>,
    /// The reply subject of a request (core NATS only).
    pub reply: Option<String>,
    /// Where it came from.
    pub source: Source,
    /// What decoding made of the payload.
    pub decoded: Decoded,
}

impl NewEvent {
    /// A core-NATS event with no headers, decoded with the default decoder:
    /// what tests and benchmarks feed the log with.
    pub fn core(subject: &str, payload: impl Into<Bytes>, received_ms: i64) -> Self {
        let payload = payload.into();
        NewEvent {
            received_ms,
            subject: async_nats::Subject::from(subject),
            decoded: crate::ingest::decode::decode(subject, &payload),
            payload,
            headers: Vec::new(),
            reply: None,
            source: Source::Core,
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The group of every reply inbox (`_INBOX.…`): one subject per request.
pub const INBOX_GROUP: &str = "_INBOX.>";
/// The group of every JetStream acknowledgement (`$JS.ACK.…`): one subject
/// per message acknowledged.
pub const ACK_GROUP: &str = "$JS.ACK.>";

/// The group of a one-off subject (a reply inbox or a JetStream ack), which
/// names no stream of events: its own row, schema or dictionary entry would
/// be one per message. `None` for every other subject.
pub fn one_off_group(subject: &str) -> Option<&'static str> {
    if subject.starts_with("_INBOX.") {
        Some(INBOX_GROUP)
    } else if subject.starts_with("$JS.ACK.") {
        Some(ACK_GROUP)
    } else {
        None
    }
}

/// Whether NATS subject `subject` matches `pattern` (`*` one token, `>` one
/// or more trailing tokens).
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Milliseconds since the Unix epoch, now, by a monotonic clock anchored
/// to the wall clock once, at first use: a step of the wall clock (an
/// operator's `date -s`, a VM resumed) neither freezes the time buckets
/// (a step back) nor pins every event to one far bucket (a step forward).
/// Received times stay in order of receipt; they drift from the wall clock
/// only as fast as the system's own clock is slewed.
pub fn now_ms() -> i64 {
    static ANCHOR: std::sync::OnceLock<(std::time::Instant, i64)> = std::sync::OnceLock::new();
    let (at, wall_ms) = ANCHOR.get_or_init(|| {
        (
            std::time::Instant::now(),
            chrono::Utc::now().timestamp_millis(),
        )
    });
    wall_ms + i64::try_from(at.elapsed().as_millis()).unwrap_or(i64::MAX / 2)
}
