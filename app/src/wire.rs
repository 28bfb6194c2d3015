//! Wire types of the live protocol: the frames the server's live hub sends
//! over `/ws` and the browser decodes. Defined once, here, and shared by both
//! ends, so a change to the protocol is a compile error on the side that
//! forgot it.
//!
//! Protocol v1 (walking skeleton):
//! - the server speaks first; every frame is one JSON text message carrying
//!   `v` (the protocol version, [`PROTOCOL_VERSION`]) and `seq` (the hub's
//!   tick number, strictly increasing within one connection);
//! - the first frame is a `snapshot`: the complete state;
//! - then `delta` frames, at most one per tick (about 10 Hz) and only when
//!   something changed. In a delta, a subject that is absent is unchanged;
//!   a subject that is present carries its new absolute values (never an
//!   increment), so applying a delta twice is harmless;
//! - if the client falls behind the hub, it gets a new `snapshot` instead of
//!   the deltas it missed.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the live protocol spoken on `/ws`. Bump on any breaking change.
pub const PROTOCOL_VERSION: u32 = 1;

/// One frame sent by the server on `/ws`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// Protocol version, always [`PROTOCOL_VERSION`] for this build.
    pub v: u32,
    /// Tick number of the hub when the frame was made.
    pub seq: u64,
    /// What the frame says.
    #[serde(flatten)]
    pub body: Body,
}

/// The kinds of frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    /// The complete state: replaces whatever the client had.
    Snapshot(Counts),
    /// What changed since the previous frame: merge into the client's state.
    Delta(Counts),
    /// The server cannot serve this client; the message says why.
    Error {
        /// A sentence a person can act on.
        message: String,
    },
}

/// Event counts. In a snapshot every field is complete; in a delta `subjects`
/// holds only the subjects that changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Events ingested since start.
    pub total: u64,
    /// Events per second over the last second.
    pub rate: f64,
    /// Per-subject counts (all of them in a snapshot, changed ones in a delta).
    pub subjects: BTreeMap<String, SubjectCount>,
    /// Whether the server's NATS connection is up.
    pub nats_connected: bool,
    /// Health counters: losses and their causes.
    pub health: Health,
}

/// Counters of everything the server had to drop or could not keep up with.
/// All are totals since start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Events dropped because the ingest queue was full.
    pub dropped_ingest: u64,
    /// Distinct subjects past the per-subject table's cap, counted under
    /// [`OVERFLOW_SUBJECT`] instead of their own row.
    pub overflow_subjects: u64,
    /// Slow-consumer notices from the NATS client (messages lost in NATS).
    pub nats_slow_consumer: u64,
    /// Times a WebSocket client (any of them) fell behind and was sent a
    /// fresh snapshot instead of the deltas it missed.
    pub resyncs: u64,
    /// Events held in the event log now.
    pub store_events: u64,
    /// Bytes the event log holds now (payloads, index, dictionaries).
    pub store_bytes: u64,
    /// The event log's byte cap.
    pub store_cap_bytes: u64,
    /// Events evicted from the log (oldest first) to stay under the cap.
    pub evicted: u64,
    /// Events refused by the log because alone they exceed its cap.
    pub too_large: u64,
    /// Events whose `Nats-Msg-Id` was seen before (kept, flagged, not counted).
    pub duplicates: u64,
    /// Events whose payload decoded as nothing (kept as raw bytes).
    pub undecoded: u64,
    /// JetStream sequences skipped: messages the stream removed (limits,
    /// deletes) before Eventscope read them.
    pub seq_gaps: u64,
}

/// One subject's row.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubjectCount {
    /// Events seen on the subject since start.
    pub count: u64,
    /// Events per second over the last second.
    pub rate: f64,
}

/// Row name under which subjects beyond the table's cap are counted.
pub const OVERFLOW_SUBJECT: &str = "(other subjects)";

impl Counts {
    /// Merges a delta into this (complete) state.
    pub fn apply_delta(&mut self, delta: Counts) {
        self.total = delta.total;
        self.rate = delta.rate;
        self.nats_connected = delta.nats_connected;
        self.health = delta.health;
        self.subjects.extend(delta.subjects);
    }
}

impl Frame {
    /// Encodes the frame as the JSON text sent on the socket.
    pub fn to_json(&self) -> String {
        // A Frame holds only strings, numbers and maps with string keys, so
        // serialisation cannot fail; fall back to an error frame regardless.
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"v":{PROTOCOL_VERSION},"seq":0,"type":"error","message":"encode: {e}"}}"#)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden fixture: the documented shape of a delta frame. If this test
    /// breaks, the protocol changed: bump [`PROTOCOL_VERSION`].
    const GOLDEN_DELTA: &str = r#"{"v":1,"seq":7,"type":"delta","total":12,"rate":3.5,"subjects":{"logs.api":{"count":12,"rate":3.5}},"nats_connected":true,"health":{"dropped_ingest":0,"overflow_subjects":0,"nats_slow_consumer":1,"resyncs":0,"store_events":12,"store_bytes":4096,"store_cap_bytes":1048576,"evicted":0,"too_large":0,"duplicates":0,"undecoded":2,"seq_gaps":0}}"#;

    #[test]
    fn golden_delta_round_trips() {
        let frame: Frame = serde_json::from_str(GOLDEN_DELTA).expect("golden parses");
        assert_eq!(frame.v, PROTOCOL_VERSION);
        let Body::Delta(c) = &frame.body else {
            panic!("expected a delta, got {frame:?}")
        };
        assert_eq!(c.subjects["logs.api"].count, 12);
        assert_eq!(frame.to_json(), GOLDEN_DELTA);
    }

    #[test]
    fn golden_error_round_trips() {
        let json = r#"{"v":1,"seq":0,"type":"error","message":"nope"}"#;
        let frame: Frame = serde_json::from_str(json).expect("parses");
        assert_eq!(
            frame.body,
            Body::Error {
                message: "nope".into()
            }
        );
        assert_eq!(frame.to_json(), json);
    }

    #[test]
    fn delta_overwrites_changed_subjects_only() {
        let mut state = Counts::default();
        state.subjects.insert(
            "a".into(),
            SubjectCount {
                count: 1,
                rate: 1.0,
            },
        );
        state.subjects.insert(
            "b".into(),
            SubjectCount {
                count: 5,
                rate: 0.0,
            },
        );
        let mut delta = Counts {
            total: 9,
            ..Counts::default()
        };
        delta.subjects.insert(
            "a".into(),
            SubjectCount {
                count: 4,
                rate: 3.0,
            },
        );
        state.apply_delta(delta.clone());
        state.apply_delta(delta); // idempotent
        assert_eq!(state.total, 9);
        assert_eq!(state.subjects["a"].count, 4);
        assert_eq!(state.subjects["b"].count, 5);
    }
}
