//! Wire types of the live protocol: the messages the browser and the
//! server's live hub exchange over `/ws`. Defined once, here, and shared by
//! both ends, so a change to the protocol is a compile error on the side that
//! forgot it. The protocol is described for people in `docs/PROTOCOL.md`.
//!
//! Protocol v1, in short:
//! - one socket per browser tab, multiplexing *subscriptions*. The client
//!   sends [`ClientMsg::Subscribe`] with a [`View`] (the counts table, a
//!   projection and window, the live event tail with a filter, the timeline)
//!   and [`ClientMsg::Unsubscribe`] to stop;
//! - a subscription is named by its view's [`View::key`]: every client
//!   watching the same view receives the very same frames (encoded once);
//! - each subscription gets a `snapshot` (its complete state), then `delta`
//!   frames, at most one per tick (about 10 Hz) and only when something
//!   changed;
//! - every frame carries `seq`, the subscription's frame number: a delta's
//!   `seq` is one more than the previous frame's. A client that sees a gap
//!   subscribes again and gets a fresh snapshot ([`LiveViews`] does this);
//! - a client that falls behind the server's per-subscription buffer is sent
//!   a fresh snapshot (a resync) instead of the frames it missed.

use crate::api::{Chart, EventSummary, ProjectionState, Timeline, Window};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Version of the live protocol spoken on `/ws`. Bump on any breaking change.
pub const PROTOCOL_VERSION: u32 = 1;

/// Events a tail subscription's snapshot and each delta carry at most.
pub const MAX_TAIL_LIMIT: u32 = 1_000;

/// A message from the client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClientMsg {
    /// Start (or restart, for a fresh snapshot) a subscription to a view.
    Subscribe {
        /// What to watch.
        view: View,
    },
    /// Stop a subscription.
    Unsubscribe {
        /// The subscription's key, as frames carry it.
        sub: String,
    },
}

/// What a subscription watches.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum View {
    /// The per-subject counts table with totals and health counters.
    Counts,
    /// A projection (as `GET /api/v1/projections/{name}`) over a window.
    Projection {
        /// The projection's name.
        name: String,
        /// The window.
        window: Window,
    },
    /// The newest events matching a filter.
    Tail {
        /// A filter in the query-string form of `GET /api/v1/events`
        /// (`subject`, `level`, `service`, `kind`, `q`, `field`), e.g.
        /// `subject=logs.>&level=error,warn`; empty for every event.
        filter: String,
        /// Events in the snapshot and, at most, in each delta (1 to
        /// [`MAX_TAIL_LIMIT`]).
        limit: u32,
    },
    /// Event density over the whole log (as `GET /api/v1/timeline`),
    /// updated about once a second.
    Timeline {
        /// Number of buckets.
        buckets: u32,
    },
    /// A chart drawn by the server (as `GET /api/v1/charts/{name}`),
    /// redrawn about once a second.
    Chart {
        /// The chart's name (`levels`, `metrics`).
        name: String,
        /// The window it shows.
        window: Window,
        /// What the chart takes, as a query string: for `metrics` a
        /// [`crate::api::MetricFilter`]; empty for `levels`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        filter: String,
    },
}

impl View {
    /// The subscription's name: equal views have equal keys.
    pub fn key(&self) -> String {
        match self {
            View::Counts => "counts".to_string(),
            View::Projection { name, window } => format!("projection/{name}/{}", window.as_str()),
            View::Tail { filter, limit } => format!("tail/{limit}/{filter}"),
            View::Timeline { buckets } => format!("timeline/{buckets}"),
            View::Chart {
                name,
                window,
                filter,
            } if filter.is_empty() => format!("chart/{name}/{}", window.as_str()),
            View::Chart {
                name,
                window,
                filter,
            } => format!("chart/{name}/{}/{filter}", window.as_str()),
        }
    }
}

/// One frame sent by the server on `/ws`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// Protocol version, always [`PROTOCOL_VERSION`] for this build.
    pub v: u32,
    /// The subscription ([`View::key`]) the frame is for; absent on errors
    /// about the connection as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The subscription's frame number: a snapshot starts anywhere, each
    /// delta is one more than the frame before it.
    pub seq: u64,
    /// What the frame says.
    #[serde(flatten)]
    pub body: Body,
}

/// The kinds of frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    /// The subscription's complete state: replaces whatever the client had.
    Snapshot {
        /// The state.
        data: ViewData,
    },
    /// What changed since the subscription's previous frame.
    Delta {
        /// The change.
        data: ViewDelta,
    },
    /// The server cannot serve this subscription (or, without `sub`, this
    /// client); the message says why.
    Error {
        /// A sentence a person can act on.
        message: String,
    },
}

/// A subscription's complete state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ViewData {
    /// For [`View::Counts`].
    Counts(Counts),
    /// For [`View::Projection`].
    Projection(ProjectionState),
    /// For [`View::Tail`]: the newest matching events, oldest first.
    Tail {
        /// The events.
        events: Vec<EventSummary>,
    },
    /// For [`View::Timeline`].
    Timeline(Timeline),
    /// For [`View::Chart`].
    Chart(Chart),
}

/// A change to a subscription's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ViewDelta {
    /// For [`View::Counts`]: changed subjects only; see [`Counts`].
    Counts(Counts),
    /// For projections, the timeline and charts: a JSON Patch (RFC 6902) to apply
    /// to the JSON of the state (the snapshot's `data` without `kind`).
    Patch {
        /// The operations, in order.
        ops: json_patch::Patch,
    },
    /// For [`View::Tail`]: events that matched since the previous frame,
    /// oldest first.
    Events {
        /// The newest of them, at most the subscription's limit.
        events: Vec<EventSummary>,
        /// How many more matched but were left out to respect the limit.
        skipped: u64,
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
    /// Messages the NATS client dropped because the subscription's buffer
    /// was full (a slow consumer), one per message.
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
    /// Schema drifts raised (new field, missing field, type change).
    #[serde(default)]
    pub schema_drifts: u64,
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

impl Health {
    /// Events lost or not counted on their own: the ingest queue full,
    /// messages the NATS client dropped (slow consumer), subjects over the table's cap, events
    /// too large for the log, JetStream sequence gaps.
    pub fn lost(&self) -> u64 {
        self.dropped_ingest
            + self.nats_slow_consumer
            + self.overflow_subjects
            + self.too_large
            + self.seq_gaps
    }
}

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

    /// An error frame.
    pub fn error(sub: Option<String>, message: impl Into<String>) -> Frame {
        Frame {
            v: PROTOCOL_VERSION,
            sub,
            seq: 0,
            body: Body::Error {
                message: message.into(),
            },
        }
    }
}

/// A subscription's state as the client holds it.
#[derive(Clone, Debug, PartialEq)]
pub enum ViewState {
    /// Counts, merged from deltas.
    Counts(Counts),
    /// A projection, the timeline or a chart, as JSON (patches apply to
    /// it); read it with [`ViewState::projection`], [`ViewState::timeline`]
    /// or [`ViewState::chart`].
    Json(serde_json::Value),
    /// The tail: newest last, at most the client's cap.
    Tail {
        /// The events.
        events: VecDeque<EventSummary>,
        /// Matching events the server left out (too many in one tick)
        /// since the snapshot.
        skipped: u64,
        /// Events this client let go past its cap since the snapshot.
        trimmed: u64,
    },
}

impl ViewState {
    /// The state as JSON (a projection, the timeline or a chart), if it is
    /// kept so: read parts of a projection with [`crate::api::body_field`].
    pub fn json(&self) -> Option<&serde_json::Value> {
        match self {
            ViewState::Json(v) => Some(v),
            _ => None,
        }
    }

    /// The state as a projection, if it is one.
    pub fn projection(&self) -> Option<ProjectionState> {
        match self {
            ViewState::Json(v) => serde_json::from_value(v.clone()).ok(),
            _ => None,
        }
    }

    /// The state as a timeline, if it is one.
    pub fn timeline(&self) -> Option<Timeline> {
        match self {
            ViewState::Json(v) => serde_json::from_value(v.clone()).ok(),
            _ => None,
        }
    }

    /// The state as a chart, if it is one.
    pub fn chart(&self) -> Option<Chart> {
        match self {
            ViewState::Json(v) => serde_json::from_value(v.clone()).ok(),
            _ => None,
        }
    }
}

/// One subscription on the client side.
#[derive(Clone, Debug)]
pub struct Subscribed {
    /// What it watches.
    pub view: View,
    /// The last frame's `seq`.
    pub seq: u64,
    /// The state; `None` until the snapshot arrives.
    pub state: Option<ViewState>,
}

/// What applying a frame did.
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    /// Subscription `sub` has a new state.
    Updated(String),
    /// A frame was missed (or a patch did not apply): send this message to
    /// get a fresh snapshot.
    Resubscribe(ClientMsg),
    /// The server reported an error (for `sub`, if given).
    Error(Option<String>, String),
    /// The frame was for no current subscription (e.g. one just dropped).
    Ignored,
}

/// The client end of the protocol, shared by the browser and the tests:
/// subscriptions by key, snapshots and deltas applied, gaps detected.
#[derive(Clone, Debug, Default)]
pub struct LiveViews {
    subs: HashMap<String, Subscribed>,
    /// Tail events kept per subscription.
    tail_cap: usize,
}

impl LiveViews {
    /// Holds at most `tail_cap` events per tail subscription.
    pub fn new(tail_cap: usize) -> Self {
        LiveViews {
            subs: HashMap::new(),
            tail_cap,
        }
    }

    /// Records a subscription and returns the message to send for it.
    pub fn subscribe(&mut self, view: View) -> ClientMsg {
        self.subs.insert(
            view.key(),
            Subscribed {
                view: view.clone(),
                seq: 0,
                state: None,
            },
        );
        ClientMsg::Subscribe { view }
    }

    /// Forgets a subscription and returns the message to send.
    pub fn unsubscribe(&mut self, key: &str) -> ClientMsg {
        self.subs.remove(key);
        ClientMsg::Unsubscribe {
            sub: key.to_string(),
        }
    }

    /// Messages that restore every subscription on a new connection.
    pub fn resubscribe_all(&mut self) -> Vec<ClientMsg> {
        self.subs
            .values_mut()
            .map(|s| {
                s.state = None;
                ClientMsg::Subscribe {
                    view: s.view.clone(),
                }
            })
            .collect()
    }

    /// A subscription, by key.
    pub fn get(&self, key: &str) -> Option<&Subscribed> {
        self.subs.get(key)
    }

    /// Applies one frame from the server.
    pub fn apply(&mut self, frame: Frame) -> Applied {
        let incoming = match frame.body {
            Body::Error { message } => Incoming::Error(message),
            Body::Snapshot { data } => Incoming::Snapshot(match data {
                ViewData::Counts(c) => SnapshotIn::Counts(c),
                ViewData::Projection(p) => SnapshotIn::Json(to_value(&p)),
                ViewData::Timeline(t) => SnapshotIn::Json(to_value(&t)),
                ViewData::Chart(c) => SnapshotIn::Json(to_value(&c)),
                ViewData::Tail { events } => SnapshotIn::Tail(events),
            }),
            Body::Delta { data } => Incoming::Delta(data),
        };
        self.apply_parts(frame.sub, frame.seq, incoming)
    }

    /// Applies one frame from the server as received, text. The same as
    /// [`LiveViews::apply`] on the parsed [`Frame`], but the states kept as
    /// JSON (projections, the timeline, charts) are never decoded into their
    /// types: the browser reads a frame through `serde_json::Value` only,
    /// which keeps the typed decoders of every view state out of the wasm
    /// bundle. The error says why the text is not a frame.
    pub fn apply_text(&mut self, text: &str) -> Result<Applied, String> {
        use serde_json::{Value, from_value};
        let mut frame: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let obj = frame.as_object_mut().ok_or("a frame is a JSON object")?;
        let v = obj.get("v").and_then(Value::as_u64).unwrap_or(0);
        if v != u64::from(PROTOCOL_VERSION) {
            return Err(format!(
                "the server speaks protocol v{v}, this page v{PROTOCOL_VERSION}; reload the page"
            ));
        }
        let sub = obj.get("sub").and_then(Value::as_str).map(str::to_string);
        let seq = obj.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let ty = obj
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let err = |e: serde_json::Error| e.to_string();
        let incoming = if ty == "error" {
            let message = obj.get("message").and_then(Value::as_str);
            Incoming::Error(message.unwrap_or_default().to_string())
        } else {
            let mut data = obj.remove("data").ok_or("a frame without data")?;
            let kind = data
                .as_object_mut()
                .and_then(|d| d.remove("kind"))
                .and_then(|k| k.as_str().map(str::to_string))
                .ok_or("data without a kind")?;
            let mut take = |k: &str| data.get_mut(k).map(Value::take).unwrap_or(Value::Null);
            match (ty.as_str(), kind.as_str()) {
                ("snapshot", "counts") => {
                    Incoming::Snapshot(SnapshotIn::Counts(from_value(data).map_err(err)?))
                }
                ("snapshot", "projection" | "timeline" | "chart") => {
                    Incoming::Snapshot(SnapshotIn::Json(data))
                }
                ("snapshot", "tail") => {
                    Incoming::Snapshot(SnapshotIn::Tail(from_value(take("events")).map_err(err)?))
                }
                ("delta", "counts") => {
                    Incoming::Delta(ViewDelta::Counts(from_value(data).map_err(err)?))
                }
                ("delta", "patch") => Incoming::Delta(ViewDelta::Patch {
                    ops: patch_ops(take("ops"))?,
                }),
                ("delta", "events") => Incoming::Delta(ViewDelta::Events {
                    events: from_value(take("events")).map_err(err)?,
                    skipped: take("skipped").as_u64().unwrap_or(0),
                }),
                (ty, kind) => return Err(format!("unknown frame: type {ty:?}, kind {kind:?}")),
            }
        };
        Ok(self.apply_parts(sub, seq, incoming))
    }

    fn apply_parts(&mut self, sub: Option<String>, seq: u64, incoming: Incoming) -> Applied {
        let Some(key) = sub else {
            return match incoming {
                Incoming::Error(message) => Applied::Error(None, message),
                _ => Applied::Ignored,
            };
        };
        let cap = self.tail_cap;
        let Some(sub) = self.subs.get_mut(&key) else {
            return Applied::Ignored;
        };
        match incoming {
            Incoming::Error(message) => return Applied::Error(Some(key), message),
            Incoming::Snapshot(data) => {
                sub.seq = seq;
                sub.state = Some(match data {
                    SnapshotIn::Counts(c) => ViewState::Counts(c),
                    SnapshotIn::Json(v) => ViewState::Json(v),
                    SnapshotIn::Tail(events) => {
                        let mut events: VecDeque<_> = events.into();
                        let trimmed = trim(&mut events, cap);
                        ViewState::Tail {
                            events,
                            skipped: 0,
                            trimmed,
                        }
                    }
                });
            }
            Incoming::Delta(data) => {
                let in_order = seq == sub.seq + 1;
                let applied = in_order
                    && match (&mut sub.state, data) {
                        (Some(ViewState::Counts(c)), ViewDelta::Counts(d)) => {
                            c.apply_delta(d);
                            true
                        }
                        (Some(ViewState::Json(v)), ViewDelta::Patch { ops }) => {
                            // A patch applies in full or not at all.
                            json_patch::patch(v, &ops).is_ok()
                        }
                        (
                            Some(ViewState::Tail {
                                events,
                                skipped,
                                trimmed,
                            }),
                            ViewDelta::Events {
                                events: new,
                                skipped: more,
                            },
                        ) => {
                            events.extend(new);
                            *skipped += more;
                            *trimmed += trim(events, cap);
                            true
                        }
                        _ => false,
                    };
                if !applied {
                    sub.state = None;
                    return Applied::Resubscribe(ClientMsg::Subscribe {
                        view: sub.view.clone(),
                    });
                }
                sub.seq = seq;
            }
        }
        Applied::Updated(key)
    }
}

/// A frame's content, however it was read.
enum Incoming {
    Snapshot(SnapshotIn),
    Delta(ViewDelta),
    Error(String),
}

/// A snapshot's state as the client keeps it.
enum SnapshotIn {
    Counts(Counts),
    Json(serde_json::Value),
    Tail(Vec<EventSummary>),
}

/// The operations of a patch, read from its JSON by hand: `add`, `remove`
/// and `replace`, all the server's diff makes (`server::live::patch`).
/// serde's decoder for json-patch's six internally tagged operations was
/// most of the patch code in the browser's wasm; applying stays json-patch's.
pub fn patch_ops(json: serde_json::Value) -> Result<json_patch::Patch, String> {
    use json_patch::{AddOperation, PatchOperation, RemoveOperation, ReplaceOperation};
    let serde_json::Value::Array(items) = json else {
        return Err("a patch is a list of operations".into());
    };
    let op = |item: serde_json::Value| -> Result<PatchOperation, String> {
        let serde_json::Value::Object(mut m) = item else {
            return Err("a patch operation is an object".into());
        };
        let path = m
            .get("path")
            .and_then(serde_json::Value::as_str)
            .ok_or("a patch operation without a path")?;
        let path = json_patch::jsonptr::PointerBuf::parse(path).map_err(|e| e.to_string())?;
        let kind = m.remove("op");
        let mut value = || m.remove("value").ok_or("a patch operation without a value");
        Ok(match kind.as_ref().and_then(serde_json::Value::as_str) {
            Some("add") => PatchOperation::Add(AddOperation {
                path,
                value: value()?,
            }),
            Some("replace") => PatchOperation::Replace(ReplaceOperation {
                path,
                value: value()?,
            }),
            Some("remove") => PatchOperation::Remove(RemoveOperation { path }),
            other => {
                return Err(format!(
                    "a patch operation this page does not apply: {other:?}"
                ));
            }
        })
    };
    Ok(json_patch::Patch(
        items.into_iter().map(op).collect::<Result<_, _>>()?,
    ))
}

/// Decodes JSON text into `T` through `serde_json::Value`. The browser
/// decodes everything this way (fetched answers, first views, frames): every
/// type then has one decoder, from `Value`, instead of one per input kind,
/// which keeps the wasm bundle smaller; the cost is one tree per answer.
pub fn from_json_text<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    serde_json::from_value(serde_json::from_str::<serde_json::Value>(text)?)
}

fn to_value<T: Serialize>(t: &T) -> serde_json::Value {
    serde_json::to_value(t).unwrap_or(serde_json::Value::Null)
}

/// Drops the oldest events past `cap`; returns how many.
fn trim(events: &mut VecDeque<EventSummary>, cap: usize) -> u64 {
    let extra = events.len().saturating_sub(cap);
    events.drain(..extra);
    extra as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_ops_read_what_the_diff_makes_and_refuse_the_rest() {
        let ops = patch_ops(serde_json::json!([
            {"op": "remove", "path": "/a/0"},
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "replace", "path": "/b~1c", "value": {"x": 1}},
        ]))
        .expect("reads");
        let mut v = serde_json::json!({"a": [1, 2], "b/c": null});
        json_patch::patch(&mut v, &ops).expect("applies");
        assert_eq!(v, serde_json::json!({"a": [2, 3], "b/c": {"x": 1}}));
        for bad in [
            serde_json::json!({"op": "add"}),
            serde_json::json!([{"op": "move", "from": "/a", "path": "/b"}]),
            serde_json::json!([{"op": "add", "path": "/a"}]),
            serde_json::json!([{"op": "remove", "path": "a"}]),
            serde_json::json!([{"path": "/a"}]),
        ] {
            assert!(patch_ops(bad.clone()).is_err(), "{bad}");
        }
    }

    /// The golden fixtures in `app/fixtures/protocol`, one message each:
    /// `client_*` ones are client messages, the rest frames.
    fn fixtures() -> Vec<(String, String)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/protocol");
        let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
            .expect("fixtures dir")
            .map(|e| {
                let path = e.expect("entry").path();
                let name = path
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .to_string();
                let text = std::fs::read_to_string(&path).expect("read fixture");
                (name, text.trim_end().to_string())
            })
            .collect();
        out.sort();
        out
    }

    /// Every fixture parses and encodes back to exactly the same text. If
    /// this fails, the protocol changed: bump [`PROTOCOL_VERSION`] (and the
    /// fixtures, and `docs/PROTOCOL.md`).
    #[test]
    fn golden_fixtures_round_trip() {
        let all = fixtures();
        assert!(all.len() >= 14, "fixtures missing: {all:?}");
        for (name, text) in all {
            let again = if name.starts_with("client_") {
                let msg: ClientMsg =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
                serde_json::to_string(&msg).expect("encode")
            } else {
                let frame: Frame =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(frame.v, PROTOCOL_VERSION, "{name}");
                frame.to_json()
            };
            assert_eq!(again, text, "{name} does not round-trip");
        }
    }

    /// Every kind of message has a fixture.
    #[test]
    fn every_message_kind_has_a_fixture() {
        let mut kinds = std::collections::BTreeSet::new();
        for (name, text) in fixtures() {
            if name.starts_with("client_") {
                let msg: ClientMsg = serde_json::from_str(&text).expect("parses");
                kinds.insert(match msg {
                    ClientMsg::Subscribe { view } => format!("subscribe {}", view_kind(&view)),
                    ClientMsg::Unsubscribe { .. } => "unsubscribe".into(),
                });
            } else {
                let frame: Frame = serde_json::from_str(&text).expect("parses");
                kinds.insert(match frame.body {
                    Body::Snapshot { data } => format!("snapshot {}", data_kind(&data)),
                    Body::Delta { data } => format!("delta {}", delta_kind(&data)),
                    Body::Error { .. } => format!("error {}", frame.sub.is_some()),
                });
            }
        }
        let want = [
            "subscribe counts",
            "subscribe projection",
            "subscribe tail",
            "subscribe timeline",
            "subscribe chart",
            "unsubscribe",
            "snapshot counts",
            "snapshot projection",
            "snapshot tail",
            "snapshot timeline",
            "snapshot chart",
            "delta counts",
            "delta patch",
            "delta events",
            "error true",
            "error false",
        ];
        for k in want {
            assert!(kinds.contains(k), "no fixture for {k}; have {kinds:?}");
        }
    }

    fn view_kind(v: &View) -> &'static str {
        match v {
            View::Counts => "counts",
            View::Projection { .. } => "projection",
            View::Tail { .. } => "tail",
            View::Timeline { .. } => "timeline",
            View::Chart { .. } => "chart",
        }
    }

    fn data_kind(d: &ViewData) -> &'static str {
        match d {
            ViewData::Counts(_) => "counts",
            ViewData::Projection(_) => "projection",
            ViewData::Tail { .. } => "tail",
            ViewData::Timeline(_) => "timeline",
            ViewData::Chart(_) => "chart",
        }
    }

    fn delta_kind(d: &ViewDelta) -> &'static str {
        match d {
            ViewDelta::Counts(_) => "counts",
            ViewDelta::Patch { .. } => "patch",
            ViewDelta::Events { .. } => "events",
        }
    }

    fn fixture(name: &str) -> Frame {
        let text = fixtures()
            .into_iter()
            .find(|(n, _)| n == name)
            .expect("fixture")
            .1;
        serde_json::from_str(&text).expect("parses")
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn cases() -> u32 {
            std::env::var("EVENTSCOPE_FUZZ_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1_000)
        }

        /// Views subscribed to what the fixtures carry.
        fn views() -> (LiveViews, LiveViews) {
            let (mut typed, mut text) = (LiveViews::new(10), LiveViews::new(10));
            for v in [
                View::Counts,
                View::Projection {
                    name: "log_levels".into(),
                    window: Window::M1,
                },
                View::Tail {
                    filter: "level=error".into(),
                    limit: 200,
                },
                View::Timeline { buckets: 120 },
            ] {
                typed.subscribe(v.clone());
                text.subscribe(v);
            }
            (typed, text)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(cases()))]

            /// Whatever text arrives (a fixture cut short or with a part
            /// replaced, or anything): the browser's reader never panics,
            /// and where the text is a frame it does what the typed reader
            /// does.
            #[test]
            fn fuzz_frames_read_as_text_never_panic_and_agree_with_typed(
                pick in any::<prop::sample::Index>(),
                cut in any::<prop::sample::Index>(),
                at in any::<prop::sample::Index>(),
                patch in prop_oneof![
                    Just(String::new()),
                    "[0-9]{1,6}",
                    "-?[0-9]{1,3}\\.[0-9]",
                    "[\\[\\]{}\",:a-z0-9]{0,12}",
                    "null|true|\"x\"|\\{\\}|\\[\\]",
                ],
                raw in ".{0,120}",
                mode in 0u8..3,
            ) {
                let all: Vec<(String, String)> = fixtures()
                    .into_iter()
                    .filter(|(n, _)| !n.starts_with("client_"))
                    .collect();
                let fixture = &all[pick.index(all.len())].1;
                let text = match mode {
                    0 => {
                        let mut end = cut.index(fixture.len() + 1);
                        while !fixture.is_char_boundary(end) {
                            end -= 1;
                        }
                        fixture[..end].to_string()
                    }
                    1 => {
                        let mut start = at.index(fixture.len() + 1);
                        while !fixture.is_char_boundary(start) {
                            start -= 1;
                        }
                        let mut end = (start + cut.index(8)).min(fixture.len());
                        while !fixture.is_char_boundary(end) {
                            end -= 1;
                        }
                        format!("{}{patch}{}", &fixture[..start], &fixture[end..])
                    }
                    _ => raw,
                };
                let (mut typed, mut reader) = views();
                let read = reader.apply_text(&text);
                if let Ok(frame) = serde_json::from_str::<Frame>(&text) {
                    let by_type = typed.apply(frame);
                    if let Ok(applied) = read {
                        prop_assert_eq!(applied, by_type);
                    }
                }
            }
        }
    }

    /// Reading a frame as text (the browser's way) leaves every view in
    /// exactly the state the typed frame does, for every fixture, in order.
    #[test]
    fn frames_read_as_text_apply_like_typed_frames() {
        let views = [
            View::Counts,
            View::Projection {
                name: "log_levels".into(),
                window: Window::M1,
            },
            View::Tail {
                filter: "level=error".into(),
                limit: 200,
            },
            View::Timeline { buckets: 120 },
            View::Chart {
                name: "levels".into(),
                window: Window::M15,
                filter: String::new(),
            },
        ];
        let (mut typed, mut text) = (LiveViews::new(10), LiveViews::new(10));
        for v in &views {
            typed.subscribe(v.clone());
            text.subscribe(v.clone());
        }
        let mut applied = 0;
        for (name, raw) in fixtures() {
            if name.starts_with("client_") {
                continue;
            }
            let frame: Frame = serde_json::from_str(&raw).expect("parses");
            let a = typed.apply(frame);
            let b = text
                .apply_text(&raw)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(a, b, "{name}");
            applied += usize::from(matches!(a, Applied::Updated(_)));
            for v in &views {
                let state = |l: &LiveViews| l.get(&v.key()).and_then(|s| s.state.clone());
                assert_eq!(state(&typed), state(&text), "{name}: {}", v.key());
            }
        }
        assert!(applied >= 5, "most fixtures changed a view ({applied})");
        assert!(text.apply_text("[1]").is_err());
        assert!(
            text.apply_text(r#"{"v":2,"seq":1,"type":"error","message":"x"}"#)
                .unwrap_err()
                .contains("v2")
        );
        assert!(
            text.apply_text(r#"{"v":1,"seq":1,"type":"snapshot","data":{"kind":"pie"}}"#)
                .unwrap_err()
                .contains("pie")
        );
    }

    #[test]
    fn keys_name_views() {
        let view = View::Projection {
            name: "log_levels".into(),
            window: Window::M1,
        };
        assert_eq!(fixture("snapshot_projection.json").sub, Some(view.key()));
        let tail = View::Tail {
            filter: "level=error".into(),
            limit: 200,
        };
        assert_eq!(fixture("snapshot_tail.json").sub, Some(tail.key()));
    }

    #[test]
    fn snapshot_then_patch_then_gap_asks_for_a_resubscribe() {
        let view = View::Projection {
            name: "log_levels".into(),
            window: Window::M1,
        };
        let mut live = LiveViews::new(10);
        live.subscribe(view.clone());
        let key = view.key();
        assert_eq!(
            live.apply(fixture("snapshot_projection.json")),
            Applied::Updated(key.clone())
        );
        assert_eq!(
            live.apply(fixture("delta_patch.json")),
            Applied::Updated(key.clone())
        );
        let p = live
            .get(&key)
            .and_then(|s| s.state.as_ref())
            .and_then(ViewState::projection);
        let p = p.expect("a projection");
        assert_eq!(p.last_event_id, Some(13));
        let crate::api::ProjectionBody::LogLevels { totals, .. } = p.body else {
            panic!("log levels expected")
        };
        assert_eq!(totals["info"], 12);
        // The same delta again is seq 8 after seq 8: a gap (or a repeat).
        assert_eq!(
            live.apply(fixture("delta_patch.json")),
            Applied::Resubscribe(ClientMsg::Subscribe { view })
        );
        assert!(live.get(&key).expect("still subscribed").state.is_none());
    }

    #[test]
    fn a_patch_that_does_not_apply_asks_for_a_resubscribe() {
        let view = View::Timeline { buckets: 120 };
        let mut live = LiveViews::new(10);
        live.subscribe(view.clone());
        live.apply(fixture("snapshot_timeline.json"));
        let bad = Frame {
            v: PROTOCOL_VERSION,
            sub: Some(view.key()),
            seq: 3,
            body: Body::Delta {
                data: ViewDelta::Patch {
                    ops: serde_json::from_str(
                        r#"[{"op":"replace","path":"/no/such/path","value":1}]"#,
                    )
                    .expect("ops"),
                },
            },
        };
        assert!(matches!(live.apply(bad), Applied::Resubscribe(_)));
    }

    #[test]
    fn the_tail_keeps_the_newest_up_to_its_cap() {
        let view = View::Tail {
            filter: "level=error".into(),
            limit: 200,
        };
        let mut live = LiveViews::new(1);
        live.subscribe(view.clone());
        live.apply(fixture("snapshot_tail.json"));
        let mut delta = fixture("delta_events.json");
        delta.sub = Some(view.key());
        assert_eq!(live.apply(delta), Applied::Updated(view.key()));
        let Some(ViewState::Tail {
            events,
            skipped,
            trimmed,
        }) = &live.get(&view.key()).expect("sub").state
        else {
            panic!("tail expected")
        };
        assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), vec![20]);
        assert_eq!((*skipped, *trimmed), (0, 1));
    }

    #[test]
    fn frames_for_unknown_subscriptions_are_ignored() {
        let mut live = LiveViews::new(1);
        assert_eq!(live.apply(fixture("delta_counts.json")), Applied::Ignored);
        assert!(matches!(
            live.apply(fixture("error_connection.json")),
            Applied::Error(None, _)
        ));
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
