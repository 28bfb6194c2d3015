//! The hub task: the single owner of projection state (after tokio-console's
//! `Aggregator`). It selects over shutdown, the publish tick, subscription
//! commands and ingested events, in that order of priority.

use crate::access::Lens;
use crate::api::v1::{MAX_TIMELINE_BUCKETS, parse_filter, seen_through, summary_masked, timeline};
use crate::event::NewEvent;
use crate::ingest::decode::Decoders;
use crate::projection::builtin::Projections;
use crate::projection::counts::SubjectCounts;
use crate::projection::timetravel::SharedCheckpoints;
use crate::stats::Stats;
use crate::store::query::Query;
use crate::store::{SharedStore, Store};
use app::api::{ProjectionState, Window};
use app::wire::{Body, Frame, MAX_TAIL_LIMIT, PROTOCOL_VERSION, View, ViewData, ViewDelta};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// An encoded frame, shared by every client that sends it.
pub type SharedFrame = Arc<str>;

/// Frames a subscription may be behind before it is resynced (about 6 s
/// at 10 Hz).
pub const CLIENT_BUFFER_FRAMES: usize = 64;
/// Distinct subjects the counts table holds before overflowing.
pub const MAX_SUBJECTS: usize = 10_000;
/// Distinct views watched at once, over all clients.
pub const MAX_TOPICS: usize = 1_024;
/// Batches (of at most `ingest::MAX_BATCH` events) folded per turn of the
/// loop before the tick gets a chance to run.
const FOLD_BATCHES: usize = 4;
/// Views that change at most once a second (the timeline, the per-second
/// history, charts) are recomputed every this many ticks.
const SLOW_EVERY_TICKS: u64 = 10;

/// A new subscriber's starting point: a snapshot, and a receiver that yields
/// every frame of the same view after it.
#[derive(Debug)]
pub struct Subscription {
    /// The view's key ([`View::key`]), which its frames carry.
    pub key: String,
    /// The snapshot frame, encoded.
    pub snapshot: SharedFrame,
    /// Deltas following the snapshot, shared with every client watching
    /// the same view.
    pub deltas: broadcast::Receiver<SharedFrame>,
}

/// A subscription as the hub's task makes it: a tail view's first page is
/// left for the subscriber to read off the hub's task.
struct Pending {
    key: String,
    seq: u64,
    snapshot: PendingSnapshot,
    deltas: broadcast::Receiver<SharedFrame>,
}

enum PendingSnapshot {
    Ready(SharedFrame),
    /// The newest `limit` events matching `query` up to `upto`.
    Tail {
        query: Box<Query>,
        limit: usize,
        upto: Option<u64>,
    },
}

enum Command {
    Subscribe {
        view: View,
        lens: Lens,
        reply: oneshot::Sender<Result<Pending, String>>,
    },
    Projection {
        name: String,
        window: Window,
        reply: oneshot::Sender<Option<ProjectionState>>,
    },
    Chart {
        name: String,
        window: Window,
        filter: String,
        reply: oneshot::Sender<Result<app::api::Chart, String>>,
    },
    Counts {
        reply: oneshot::Sender<app::wire::Counts>,
    },
    Query(LiveQuery),
    Schemas {
        reply: oneshot::Sender<app::api::SchemaList>,
    },
}

/// A question about the live projections, answered on the hub's task with
/// the projections, the log and the moment "now".
type LiveQuery = Box<dyn FnOnce(&Projections, &Store, i64) + Send>;

/// A cloneable handle to the hub, for WebSocket handlers.
#[derive(Clone, Debug)]
pub struct HubHandle {
    commands: mpsc::Sender<Command>,
    /// For tail views' first pages, read off the hub's task.
    store: SharedStore,
    decoders: Arc<Decoders>,
    /// Turns for those reads ([`crate::api::v1::MAX_QUERIES`] at once).
    snapshots: Arc<tokio::sync::Semaphore>,
}

/// Why a subscription could not be made.
#[derive(Debug, thiserror::Error)]
#[error("the live hub has stopped")]
pub struct HubStopped;

impl HubHandle {
    /// Sends the command `make` builds around a reply channel, and waits
    /// for the hub's answer.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, HubStopped> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| HubStopped)?;
        rx.await.map_err(|_| HubStopped)
    }

    /// Subscribes to a view: a snapshot, then deltas. The inner error says
    /// why the view cannot be served (unknown projection, bad filter, ...).
    ///
    /// A tail view's first page is read here, on a blocking thread, in
    /// slices of the log within an API query's budgets
    /// ([`crate::api::v1::query_sliced`]): a storm of tail subscriptions
    /// with filters that match nothing costs the hub's task nothing. The
    /// page covers the events up to where the deltas start, so none is
    /// missed or shown twice.
    ///
    /// `lens`: what the subscriber may see (their scope and masks); views
    /// are shared by the subscribers who see the same.
    pub async fn subscribe(
        &self,
        view: View,
        lens: Lens,
    ) -> Result<Result<Subscription, String>, HubStopped> {
        let pending = match self
            .ask(|reply| Command::Subscribe { view, lens, reply })
            .await?
        {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let snapshot = match pending.snapshot {
            PendingSnapshot::Ready(frame) => frame,
            PendingSnapshot::Tail { query, limit, upto } => {
                let Ok(_turn) = self.snapshots.acquire().await else {
                    return Err(HubStopped);
                };
                let (store, decoders) = (Arc::clone(&self.store), Arc::clone(&self.decoders));
                let events = crate::api::reads::run(move || {
                    tail_snapshot(&store, &decoders, &query, limit, upto)
                })
                .await
                .ok_or(HubStopped)?;
                encode(
                    &pending.key,
                    pending.seq,
                    Body::Snapshot {
                        data: ViewData::Tail { events },
                    },
                )
            }
        };
        Ok(Ok(Subscription {
            key: pending.key,
            snapshot,
            deltas: pending.deltas,
        }))
    }

    /// The live state of built-in projection `name` over `window`; `None`
    /// for an unknown name.
    pub async fn projection(
        &self,
        name: &str,
        window: Window,
    ) -> Result<Option<ProjectionState>, HubStopped> {
        self.ask(|reply| Command::Projection {
            name: name.to_string(),
            window,
            reply,
        })
        .await
    }

    /// Runs `f` on the live projections (with the log and "now") on the
    /// hub's task and returns what it returns. Keep `f` short: ingest
    /// waits while it runs.
    pub async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Projections, &Store, i64) -> T + Send + 'static,
    ) -> Result<T, HubStopped> {
        self.ask(|reply| {
            let query: LiveQuery = Box::new(move |p, s, now| {
                let _ = reply.send(f(p, s, now));
            });
            Command::Query(query)
        })
        .await
    }

    /// Every payload schema watched, with the drift and skip counts.
    pub async fn schemas(&self) -> Result<app::api::SchemaList, HubStopped> {
        self.ask(|reply| Command::Schemas { reply }).await
    }

    /// The counts view's current state (a full snapshot).
    pub async fn counts(&self) -> Result<app::wire::Counts, HubStopped> {
        self.ask(|reply| Command::Counts { reply }).await
    }

    /// The live chart `name` over `window` (`filter` as for the chart
    /// view); the inner error says what is wrong with the name or filter.
    pub async fn chart(
        &self,
        name: &str,
        window: Window,
        filter: String,
    ) -> Result<Result<app::api::Chart, String>, HubStopped> {
        self.ask(|reply| Command::Chart {
            name: name.to_string(),
            window,
            filter,
            reply,
        })
        .await
    }
}

/// One watched view: its frame number, its subscribers, and what the last
/// frame left the clients holding (deltas are computed against it).
struct Topic {
    /// The view's key as its frames carry it ([`View::key`]).
    public: String,
    /// What its subscribers may see.
    lens: Lens,
    seq: u64,
    tx: broadcast::Sender<SharedFrame>,
    state: TopicState,
}

enum TopicState {
    /// The counts table; for a scoped lens, the rows of its subjects
    /// (deltas carry changed rows only; totals are sums of these).
    Counts {
        rows: Option<std::collections::BTreeMap<String, app::wire::SubjectCount>>,
    },
    /// A projection; `last` is the JSON of the state clients hold.
    Projection {
        name: String,
        window: Window,
        last: Value,
    },
    Timeline {
        buckets: usize,
        last: Value,
    },
    /// A chart; `last` is the JSON of the chart clients hold.
    Chart {
        name: String,
        window: Window,
        filter: String,
        last: Value,
    },
    /// The tail; `last_id` is the newest event id clients have been sent
    /// (or chosen not to be).
    Tail {
        query: Box<Query>,
        limit: usize,
        last_id: Option<u64>,
        /// The tick it was last refreshed at.
        served: u64,
    },
}

/// The hub's time for tail views in one tick, at most, as a share of the
/// tick: views left over are refreshed first at the next tick (with what
/// they missed), so many costly tail filters slow only themselves, not
/// ingest and the other views.
const TAIL_SHARE_OF_TICK: u32 = 4;

/// The hub's state, owned by its task.
pub struct Hub {
    counts: SubjectCounts,
    /// Received time of the oldest event folded since the last frame.
    oldest_unsent_ms: Option<i64>,
    /// The projections, in one partition or several (merged to be read).
    folds: crate::projection::partition::Folds,
    /// Payload schemas, watched on live ingest only (not a time-travel
    /// fold: its drifts are events in the log, and that is what travels).
    schemas: crate::projection::schema::Schemas,
    checkpoints: SharedCheckpoints,
    topics: HashMap<String, Topic>,
    ticks: u64,
    events: crate::ingest::queue::Receiver,
    commands: mpsc::Receiver<Command>,
    stats: Arc<Stats>,
    store: SharedStore,
    decoders: Arc<Decoders>,
    tick: Duration,
    /// When the live state was last weighed against its budget.
    weighed_at: std::time::Instant,
}

/// How often the live state is weighed against `--projection-bytes`
/// between checkpoints (a weighing walks the metric buckets and flows:
/// about a millisecond for a large state).
const WEIGH_EVERY: Duration = Duration::from_secs(1);

/// Takes a lock the hub shares with readers (queries, time travel, the
/// pages): at once when it is free; else waits in a way that first hands
/// this worker's other tasks to another thread. A reader may hold the lock
/// for milliseconds, and a worker blocked in plain `lock()` would hold up
/// the task it was about to run next (tokio's LIFO slot is not stolen).
fn wait_for<G>(now: impl FnOnce() -> Option<G>, wait: impl FnOnce() -> G) -> G {
    if let Some(guard) = now() {
        return guard;
    }
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
        _ => wait(),
    }
}

fn encode(key: &str, seq: u64, body: Body) -> SharedFrame {
    Frame {
        v: PROTOCOL_VERSION,
        sub: Some(key.to_string()),
        seq,
        body,
    }
    .to_json()
    .into()
}

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// Whether a patch changes nothing but when the state was taken: not worth
/// a frame.
fn only_clock(patch: &json_patch::Patch) -> bool {
    patch.0.iter().all(|op| op.path().as_str() == "/at_ms")
}

impl Hub {
    /// A hub fed by `events`, publishing every `tick`.
    pub fn new(
        events: crate::ingest::queue::Receiver,
        stats: Arc<Stats>,
        store: SharedStore,
        checkpoints: SharedCheckpoints,
        folds: crate::projection::partition::Folds,
        decoders: Arc<Decoders>,
        tick: Duration,
    ) -> (Hub, HubHandle) {
        let (cmd_tx, cmd_rx) = mpsc::channel(256);
        let hub = Hub {
            counts: SubjectCounts::new(MAX_SUBJECTS),
            oldest_unsent_ms: None,
            // Weighed at the first batch or tick: the gauges are set from
            // the start.
            weighed_at: std::time::Instant::now()
                .checked_sub(WEIGH_EVERY)
                .unwrap_or_else(std::time::Instant::now),
            folds,
            schemas: Default::default(),
            checkpoints,
            topics: HashMap::new(),
            ticks: 0,
            events,
            commands: cmd_rx,
            stats,
            store: Arc::clone(&store),
            decoders: Arc::clone(&decoders),
            tick,
        };
        let handle = HubHandle {
            commands: cmd_tx,
            store,
            decoders,
            snapshots: Arc::new(tokio::sync::Semaphore::new(crate::api::v1::MAX_QUERIES)),
        };
        (hub, handle)
    }

    /// A hub with an empty 4 GiB log, the default projections and
    /// checkpoints as `start` makes them, and no channels worth using: for
    /// benchmarks of [`Hub::ingest`].
    pub fn for_bench() -> Hub {
        Hub::for_bench_with(1)
    }

    /// The same with `partitions` partitions.
    pub fn for_bench_with(partitions: usize) -> Hub {
        let store: SharedStore = Arc::new(parking_lot::RwLock::new(Store::new(4 << 30)));
        let checkpoints = Arc::new(parking_lot::Mutex::new(
            crate::projection::timetravel::Checkpoints::new(
                crate::CHECKPOINT_EVENTS,
                crate::CHECKPOINT_MS,
                crate::MAX_CHECKPOINTS,
            ),
        ));
        let (_tx, rx) = crate::ingest::queue::queue();
        Hub::new(
            rx,
            Arc::new(Stats::default()),
            store,
            checkpoints,
            crate::projection::partition::Folds::new(Projections::default(), partitions),
            Arc::new(Decoders::new(Default::default())),
            Duration::from_millis(100),
        )
        .0
    }

    fn refresh_status(&mut self) {
        let store = self.store.read().stats();
        self.counts.set_status(
            self.stats.health(&store),
            self.stats.nats_connected.load(Ordering::Relaxed),
        );
    }

    /// Appends a batch to the log, folding each event into the projections
    /// as it was stored (read back from the store: live folding and replay
    /// see exactly the same input). Folding event by event, not after the
    /// whole batch, matters when a batch is larger than the store can hold:
    /// its head would be evicted before it was counted.
    pub fn ingest(&mut self, batch: &mut Vec<NewEvent>) {
        // (Their own handles: `self` is borrowed mutably under the locks.)
        let (shared_store, shared_checkpoints) =
            (Arc::clone(&self.store), Arc::clone(&self.checkpoints));
        let mut store = wait_for(|| shared_store.try_write(), || shared_store.write());
        let mut checkpoints = wait_for(
            || shared_checkpoints.try_lock(),
            || shared_checkpoints.lock(),
        );
        let one = self.folds.partitions() == 1;
        let mut last_ms = None;
        for ev in batch.drain(..) {
            // (Weighed only for partitions: one folds as it appends.)
            let bytes = if one {
                0
            } else {
                crate::ingest::queue::weight(&ev)
            };
            self.folds.make_room(bytes, &store);
            let Some(e) = store.append(&ev).and_then(|id| store.get(id)) else {
                continue;
            };
            last_ms = Some(e.received_ms());
            self.oldest_unsent_ms.get_or_insert(e.received_ms());
            if !e.is_duplicate() {
                self.counts.apply(e.subject());
                self.schemas.apply(&e);
                self.folds.take(&e, bytes);
                if one && checkpoints.due_for(self.folds.view(), store.held()) {
                    let folds = &self.folds;
                    keep_unlocked(&mut store, &mut checkpoints, || vec![folds.view().clone()]);
                }
            }
        }
        // Drifts become events in the log, folded like any other.
        for drift in self.schemas.take_drifts() {
            if let Some(i) = crate::stats::DRIFT_KINDS
                .iter()
                .position(|k| *k == drift.kind)
            {
                self.stats.schema_drifts[i].fetch_add(1, Ordering::Relaxed);
            }
            tracing::info!(schema = %drift.schema, field = %drift.field, kind = drift.kind, "schema drift");
            // Received with the batch that showed it: the log's received
            // times stay in order, and the same input gives the same log.
            let ev = NewEvent::core(
                crate::projection::schema::DRIFT_SUBJECT,
                drift.payload(),
                last_ms.unwrap_or_else(crate::event::now_ms),
            );
            // (Weighed only for partitions: one folds as it appends.)
            let bytes = if one {
                0
            } else {
                crate::ingest::queue::weight(&ev)
            };
            self.folds.make_room(bytes, &store);
            if let Some(e) = store.append(&ev).and_then(|id| store.get(id)) {
                self.counts.apply(e.subject());
                self.folds.take(&e, bytes);
                if one && checkpoints.due_for(self.folds.view(), store.held()) {
                    let folds = &self.folds;
                    keep_unlocked(&mut store, &mut checkpoints, || vec![folds.view().clone()]);
                }
            }
        }
        if !one {
            // The partitions fold side by side; a checkpoint, when due,
            // keeps a copy of each (merged only if time travel needs it).
            self.folds.fold_routed(&store);
            if checkpoints.due(self.folds.progress(), store.held()) {
                let folds = &self.folds;
                keep_unlocked(&mut store, &mut checkpoints, || folds.parts().to_vec());
            }
        }
        checkpoints.prune(store.first_id());
        if self.weighed_at.elapsed() >= WEIGH_EVERY {
            self.weigh(&mut checkpoints);
        }
    }

    /// Weighs the live state against the projection budget (setting or
    /// clearing `full`), and stores the projection gauges: once a second,
    /// after a batch or, with no traffic, at a tick.
    fn weigh(&mut self, checkpoints: &mut crate::projection::timetravel::Checkpoints) {
        self.weighed_at = std::time::Instant::now();
        let full = checkpoints.weigh_live(self.folds.weight());
        self.folds.set_full(full);
        let (series_cap, budget, keys_cap) = self.folds.left_out();
        let s = &self.stats;
        s.events_over_keys_cap.store(keys_cap, Ordering::Relaxed);
        s.samples_over_series_cap
            .store(series_cap, Ordering::Relaxed);
        s.samples_over_budget.store(budget, Ordering::Relaxed);
        s.checkpoint_micros
            .store(checkpoints.spent().as_micros() as u64, Ordering::Relaxed);
        s.checkpoints_held
            .store(checkpoints.len() as u64, Ordering::Relaxed);
        let (live, held) = checkpoints.bytes();
        s.projection_bytes.store(live as u64, Ordering::Relaxed);
        s.checkpoint_bytes.store(held as u64, Ordering::Relaxed);
        s.projection_budget.store(
            checkpoints.budget().min(u64::MAX as usize) as u64,
            Ordering::Relaxed,
        );
        s.checkpoints_dropped
            .store(checkpoints.dropped(), Ordering::Relaxed);
    }

    /// The live state of a projection, as the HTTP API and subscriptions
    /// see it.
    fn projection(&self, store: &Store, name: &str, window: Window) -> Option<ProjectionState> {
        let now = crate::event::now_ms().max(self.folds.view().last_ms());
        let body = self.folds.view().snapshot(store, name, window, now)?;
        Some(ProjectionState {
            window: (name != "rate_history").then_some(window),
            name: name.to_string(),
            at_ms: now,
            last_event_id: self.folds.view().last_id(),
            live: true,
            scoped: false,
            body,
        })
    }

    /// The live chart `name` over `window`.
    fn chart(
        &self,
        store: &Store,
        name: &str,
        window: Window,
        filter: &str,
    ) -> Result<app::api::Chart, String> {
        let now = crate::event::now_ms().max(self.folds.view().last_ms());
        crate::charts::draw(self.folds.view(), store, name, filter, window, now, true)
    }

    fn timeline(&self, store: &Store, buckets: usize) -> app::api::Timeline {
        let earliest_id = self.checkpoints.lock().earliest_id(store.first_id());
        timeline(store, earliest_id, buckets)
    }

    /// The newest `limit` events matching `query` with ids after `after`
    /// (if given) up to `upto`, oldest first; and, when `after` is given,
    /// how many more matched.
    /// A subscription to `view`: its topic's current state as a snapshot,
    /// and a receiver of the topic's frames after it.
    fn subscribe(&mut self, view: View, lens: Lens) -> Result<Pending, String> {
        let public = view.key();
        // Subscribers who see differently watch different topics.
        let key = if lens.is_clear() {
            public.clone()
        } else {
            format!("{}\u{1}{public}", lens.key())
        };
        if !self.topics.contains_key(&key) {
            if self.topics.len() >= MAX_TOPICS {
                return Err(format!(
                    "the server watches {MAX_TOPICS} distinct views already; \
                     unsubscribe from some, or share views between clients"
                ));
            }
            let state = self.new_topic(&view, &lens)?;
            let (tx, _) = broadcast::channel(CLIENT_BUFFER_FRAMES);
            self.topics.insert(
                key.clone(),
                Topic {
                    public: public.clone(),
                    lens,
                    seq: 0,
                    tx,
                    state,
                },
            );
        }
        if matches!(view, View::Counts) {
            self.refresh_status();
        }
        let topic = &self.topics[&key];
        let data = match &topic.state {
            TopicState::Counts { .. } => {
                let mut counts = self.counts.snapshot();
                topic.lens.counts(&mut counts);
                ViewData::Counts(counts)
            }
            TopicState::Projection { last, .. } => ViewData::Projection(
                serde_json::from_value(last.clone()).map_err(|e| e.to_string())?,
            ),
            TopicState::Timeline { last, .. } => {
                ViewData::Timeline(serde_json::from_value(last.clone()).map_err(|e| e.to_string())?)
            }
            TopicState::Chart { last, .. } => {
                ViewData::Chart(serde_json::from_value(last.clone()).map_err(|e| e.to_string())?)
            }
            TopicState::Tail {
                query,
                limit,
                last_id,
                ..
            } => {
                return Ok(Pending {
                    seq: topic.seq,
                    snapshot: PendingSnapshot::Tail {
                        query: query.clone(),
                        limit: *limit,
                        upto: *last_id,
                    },
                    deltas: topic.tx.subscribe(),
                    key: public,
                });
            }
        };
        Ok(Pending {
            seq: topic.seq,
            snapshot: PendingSnapshot::Ready(encode(&public, topic.seq, Body::Snapshot { data })),
            deltas: topic.tx.subscribe(),
            key: public,
        })
    }

    /// Checks a view and computes its first state.
    fn new_topic(&self, view: &View, lens: &Lens) -> Result<TopicState, String> {
        let store = self.store.read();
        if lens.is_scoped() && matches!(view, View::Timeline { .. } | View::Chart { .. }) {
            return Err(
                "not available with a subject scope: it would show the events of every subject"
                    .to_string(),
            );
        }
        Ok(match view {
            View::Counts => TopicState::Counts {
                rows: lens.is_scoped().then(|| {
                    let mut counts = self.counts.snapshot();
                    lens.counts(&mut counts);
                    counts.subjects
                }),
            },
            View::Projection { name, window } => {
                let mut state = self.projection(&store, name, *window).ok_or_else(|| {
                    format!("no projection named {name:?}; GET /api/v1/projections lists them")
                })?;
                lens.projection(&mut state);
                TopicState::Projection {
                    name: name.clone(),
                    window: *window,
                    last: to_value(&state),
                }
            }
            View::Timeline { buckets } => {
                let buckets = *buckets as usize;
                if !(1..=MAX_TIMELINE_BUCKETS).contains(&buckets) {
                    return Err(format!(
                        "buckets={buckets} must be from 1 to {MAX_TIMELINE_BUCKETS}"
                    ));
                }
                TopicState::Timeline {
                    buckets,
                    last: to_value(&self.timeline(&store, buckets)),
                }
            }
            View::Chart {
                name,
                window,
                filter,
            } => {
                let chart = self.chart(&store, name, *window, filter)?;
                TopicState::Chart {
                    name: name.clone(),
                    window: *window,
                    filter: filter.clone(),
                    last: to_value(&chart),
                }
            }
            View::Tail { filter, limit } => {
                if !(1..=MAX_TAIL_LIMIT).contains(limit) {
                    return Err(format!(
                        "a tail's limit must be from 1 to {MAX_TAIL_LIMIT}, not {limit}"
                    ));
                }
                TopicState::Tail {
                    query: Box::new(seen_through(parse_filter(filter)?, lens)),
                    limit: *limit as usize,
                    last_id: store.last_id(),
                    served: self.ticks,
                }
            }
        })
    }

    /// One tick: every watched view's change since its last frame, encoded
    /// once and sent to all its subscribers; views nobody watches are let go.
    fn publish(&mut self) {
        self.ticks += 1;
        if self.weighed_at.elapsed() >= WEIGH_EVERY {
            let checkpoints = Arc::clone(&self.checkpoints);
            self.weigh(&mut checkpoints.lock());
        }
        if !self.topics.is_empty() {
            self.folds.refresh();
        }
        self.refresh_status();
        let counts = self.counts.take_delta();
        if counts.is_some()
            && let Some(oldest) = self.oldest_unsent_ms.take()
        {
            let age_ms = (crate::event::now_ms() - oldest).max(0);
            self.stats.ingest_to_frame.observe(age_ms as f64 / 1_000.0);
        }
        self.topics.retain(|_, t| t.tx.receiver_count() > 0);
        let mut topics = std::mem::take(&mut self.topics);
        let slow_turn = self.ticks.is_multiple_of(SLOW_EVERY_TICKS);
        // Every other view first, then tail views, least recently
        // refreshed first, within their share of the tick.
        let mut order: Vec<(u64, String)> = topics
            .iter()
            .map(|(key, t)| match t.state {
                TopicState::Tail { served, .. } => (served.saturating_add(1), key.clone()),
                _ => (0, key.clone()),
            })
            .collect();
        order.sort_unstable();
        let tail_budget = self.tick / TAIL_SHARE_OF_TICK;
        let mut tail_spent = Duration::ZERO;
        let ticks = self.ticks;
        {
            let store = self.store.read();
            for (_, key) in &order {
                let Some(topic) = topics.get_mut(key) else {
                    continue;
                };
                let lens = &topic.lens;
                let delta = match &mut topic.state {
                    TopicState::Counts { rows: None } => counts.clone().map(ViewDelta::Counts),
                    TopicState::Counts { rows: Some(rows) } => counts.clone().map(|mut delta| {
                        delta.subjects.retain(|s, _| lens.allows_row(s));
                        rows.extend(delta.subjects.clone());
                        delta.total = rows.values().map(|c| c.count).sum();
                        delta.rate = rows.values().map(|c| c.rate).sum();
                        ViewDelta::Counts(delta)
                    }),
                    // The per-second history moves once a second: its 3,600
                    // buckets are not rebuilt and diffed at every tick.
                    TopicState::Projection { name, .. } if name == "rate_history" && !slow_turn => {
                        None
                    }
                    TopicState::Projection { name, window, last } => self
                        .projection(&store, name, *window)
                        .and_then(|mut state| {
                            lens.projection(&mut state);
                            patch(last, to_value(&state))
                        }),
                    TopicState::Timeline { buckets, last } => slow_turn
                        .then(|| patch(last, to_value(&self.timeline(&store, *buckets))))
                        .flatten(),
                    TopicState::Chart {
                        name,
                        window,
                        filter,
                        last,
                    } => slow_turn
                        .then(|| self.chart(&store, name, *window, filter).ok())
                        .flatten()
                        .and_then(|chart| patch(last, to_value(&chart))),
                    TopicState::Tail { .. } if tail_spent >= tail_budget => {
                        self.stats.tail_deferred.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                    TopicState::Tail {
                        query,
                        limit,
                        last_id,
                        served,
                    } => match store.last_id() {
                        Some(newest) if last_id.is_none_or(|l| newest > l) => {
                            let began = std::time::Instant::now();
                            // What is left of the tick's share: a view cut
                            // short by it counts what it did not examine.
                            let mut bounded = (**query).clone();
                            bounded.deadline = Some(began + (tail_budget - tail_spent));
                            let (events, skipped) = tail(
                                &self.decoders,
                                &store,
                                &bounded,
                                *limit,
                                *last_id,
                                Some(newest),
                            );
                            tail_spent += began.elapsed();
                            *last_id = Some(newest);
                            *served = ticks;
                            (!events.is_empty()).then_some(ViewDelta::Events { events, skipped })
                        }
                        _ => {
                            *served = ticks;
                            None
                        }
                    },
                };
                if let Some(data) = delta {
                    topic.seq += 1;
                    // Err only means every subscriber left since the check.
                    let _ = topic
                        .tx
                        .send(encode(&topic.public, topic.seq, Body::Delta { data }));
                }
            }
        }
        self.topics = topics;
    }

    /// Runs until `shutdown` fires or every handle and the ingest side are gone.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let start = Instant::now();
        let mut tick = tokio::time::interval(self.tick);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut batches: Vec<crate::ingest::queue::Batch> = Vec::with_capacity(FOLD_BATCHES);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    // What the sources handed on is kept before the hub
                    // stops: a durable JetStream consumer has acknowledged
                    // it, and would not send it again. (Closed first: a
                    // batch sent after is refused, so not acknowledged.)
                    self.events.close();
                    while self.events.recv_many(&mut batches, FOLD_BATCHES).await > 0 {
                        for mut batch in batches.drain(..) {
                            self.ingest(&mut batch.events);
                        }
                    }
                    break;
                }
                _ = tick.tick() => {
                    self.stats
                        .hub_beat_ms
                        .store(crate::event::now_ms(), std::sync::atomic::Ordering::Relaxed);
                    self.counts.tick(start.elapsed().as_millis() as u64);
                    self.publish();
                }
                Some(cmd) = self.commands.recv() => {
                    // With partitions, answers read their merge as of the
                    // last tick (which every watched view was sent from),
                    // merged again at most once a tick.
                    self.folds.refresh_older_than(self.tick);
                    match cmd {
                    Command::Subscribe { view, lens, reply } => {
                        let _ = reply.send(self.subscribe(view, lens));
                    }
                    Command::Projection { name, window, reply } => {
                        let store = self.store.read();
                        let _ = reply.send(self.projection(&store, &name, window));
                    }
                    Command::Counts { reply } => {
                        self.refresh_status();
                        let _ = reply.send(self.counts.snapshot());
                    }
                    Command::Chart { name, window, filter, reply } => {
                        let store = self.store.read();
                        let _ = reply.send(self.chart(&store, &name, window, &filter));
                    }
                    Command::Schemas { reply } => {
                        let _ = reply.send(app::api::SchemaList {
                            schemas: self.schemas.list(),
                            drifts: self.schemas.drifts(),
                            skipped: self.schemas.skipped(),
                        });
                    }
                    Command::Query(query) => {
                        let store = self.store.read();
                        let now = crate::event::now_ms().max(self.folds.view().last_ms());
                        query(self.folds.view(), &store, now);
                    }
                    }
                    // Questions never starve ingest (they win the biased
                    // select): what waits is folded before the next one.
                    if self.events.try_recv_many(&mut batches, FOLD_BATCHES) > 0 {
                        for mut batch in batches.drain(..) {
                            self.ingest(&mut batch.events);
                        }
                    }
                }
                n = self.events.recv_many(&mut batches, FOLD_BATCHES) => {
                    if n == 0 {
                        break;
                    }
                    // Each batch gives its room in the queue back once
                    // folded (dropped).
                    for mut batch in batches.drain(..) {
                        self.ingest(&mut batch.events);
                    }
                }
            }
        }
        tracing::info!("live hub stopped");
    }
}

/// A tail view's events: those matching `query` with ids in
/// `(after, upto]`, the newest `limit` of them, oldest first, and how many
/// more were left out (only when `after` is given: a refresh), examining
/// at most [`TAIL_SCAN`] events.
pub fn tail(
    decoders: &Decoders,
    store: &Store,
    query: &Query,
    limit: usize,
    after: Option<u64>,
    upto: Option<u64>,
) -> (Vec<app::api::EventSummary>, u64) {
    let page = tail_page(decoders, store, query, limit, after, upto, TAIL_SCAN);
    (page.events, page.skipped)
}

/// Events a tail view examines per tick, at most, and payload bytes its
/// text and field filters read ([`crate::api::v1::MAX_SCAN_BYTES`]): a
/// burst bigger than this in one tick (2M events a second at the default
/// tick) is shown in part, the rest counted as skipped, so that many tail
/// views cannot stall the hub's tick.
pub const TAIL_SCAN: usize = crate::api::v1::MAX_SCAN;

/// A tail view's first page: the newest `limit` events matching `query`
/// up to `upto`, oldest first, found within an API query's budgets
/// ([`crate::api::v1::query_sliced`]: 200,000 events, 64 MiB of payload,
/// 250 ms, the log let go every 20,000): a filter that matches nothing
/// neither walks the whole log nor holds it, again at every subscribe. It
/// may hold fewer than `limit` when a budget cut the search short; the
/// live deltas go on from `upto`. Blocking: call it off the async workers.
pub fn tail_snapshot(
    store: &SharedStore,
    decoders: &Decoders,
    query: &Query,
    limit: usize,
    upto: Option<u64>,
) -> Vec<app::api::EventSummary> {
    let Some(upto) = upto else {
        return Vec::new();
    };
    let mut q = query.clone();
    q.after_id = None;
    q.before_id = Some(upto.saturating_add(1));
    q.limit = limit;
    q.max_scan = crate::api::v1::MAX_SCAN;
    let mut events = crate::api::v1::query_sliced(store, decoders, q).events;
    events.reverse();
    events
}

/// What [`tail_page`] found.
#[derive(Debug, Default)]
pub struct TailPage {
    /// The newest matching events, oldest first.
    pub events: Vec<app::api::EventSummary>,
    /// Events left out (only when `after` is given, a refresh): those that
    /// matched beyond the page's `limit`, and those the scan bound left
    /// unexamined.
    pub skipped: u64,
}

/// The newest `limit` events matching `query` with ids in `(after, upto]`,
/// examining at most `max_scan` events (0: no bound) and, with a bound,
/// [`crate::api::v1::MAX_SCAN_BYTES`] payload bytes.
pub fn tail_page(
    decoders: &Decoders,
    store: &Store,
    query: &Query,
    limit: usize,
    after: Option<u64>,
    upto: Option<u64>,
    max_scan: usize,
) -> TailPage {
    let Some(upto) = upto else {
        return TailPage::default();
    };
    let mut q = query.clone();
    q.after_id = after;
    q.before_id = Some(upto.saturating_add(1));
    q.limit = limit;
    q.max_scan = max_scan;
    q.max_scan_bytes = if max_scan > 0 {
        crate::api::v1::MAX_SCAN_BYTES
    } else {
        0
    };
    let page = store.query(&q);
    let full = page.events.len() == limit || page.next_before.is_none();
    let mut skipped = 0;
    if let (Some(next), Some(after)) = (page.next_before, after) {
        if full {
            // The page is full: count the other matches, within the same
            // bounds; what those leave unexamined is counted too.
            q.before_id = Some(next);
            q.limit = usize::MAX;
            let rest = store.query(&q);
            skipped = rest.events.len() as u64
                + rest
                    .next_before
                    .map_or(0, |n| n.saturating_sub(after.saturating_add(1)));
        } else {
            skipped = next.saturating_sub(after.saturating_add(1));
        }
    }
    TailPage {
        events: page
            .events
            .iter()
            .rev()
            .map(|e| summary_masked(decoders, e, q.masks.as_deref()))
            .collect(),
        skipped,
    }
}

/// The patch from `last` to `new`, if it changes more than the clock;
/// `last` becomes `new` when it does.
fn patch(last: &mut Value, new: Value) -> Option<ViewDelta> {
    let ops = super::patch::diff(last, &new);
    if only_clock(&ops) {
        return None;
    }
    *last = new;
    Some(ViewDelta::Patch { ops })
}

/// Keeps the checkpoint `copy` makes, copied with neither the log's write
/// lock nor the checkpoints' held: readers of the log (`/metrics`, pages,
/// queries) and time travel go on while the state is copied (milliseconds
/// for a large one). Only the hub writes either, so nothing changes under
/// it meanwhile.
fn keep_unlocked(
    store: &mut parking_lot::RwLockWriteGuard<'_, Store>,
    checkpoints: &mut parking_lot::MutexGuard<'_, crate::projection::timetravel::Checkpoints>,
    copy: impl FnOnce() -> Vec<Projections>,
) {
    let started = std::time::Instant::now();
    let parts = parking_lot::MutexGuard::unlocked(checkpoints, || {
        parking_lot::RwLockWriteGuard::unlocked(store, copy)
    });
    checkpoints.kept(parts, started);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::timetravel::Checkpoints;
    use crate::store::Store;

    #[test]
    fn a_checkpoint_is_copied_with_neither_lock_held() {
        let store: SharedStore = Arc::new(parking_lot::RwLock::new(Store::new(1 << 20)));
        let id = store
            .write()
            .append(&NewEvent::core("a.b", "{}", 1))
            .expect("kept");
        let mut live = Projections::default();
        live.apply(&store.read().get(id).expect("held"));
        let checkpoints = Arc::new(parking_lot::Mutex::new(Checkpoints::new(1, 1, 8)));
        let (mut w, mut c) = (store.write(), checkpoints.lock());
        assert_eq!(c.len(), 1);
        keep_unlocked(&mut w, &mut c, || {
            // Another reader gets in while the copy is made.
            assert!(store.try_read().is_some(), "the log's write lock is held");
            assert!(
                checkpoints.try_lock().is_some(),
                "the checkpoints' lock is held"
            );
            vec![live.clone()]
        });
        assert_eq!(c.len(), 2, "kept");
        // Both locks are the hub's again.
        assert!(store.try_read().is_none() && checkpoints.try_lock().is_none());
    }

    #[test]
    fn a_tail_snapshot_examines_a_bounded_part_of_the_log() {
        let mut store = Store::new(1 << 30);
        store
            .append(&NewEvent::core("rare.one", "{}", 1))
            .expect("kept");
        let n = crate::api::v1::MAX_SCAN + 10;
        for i in 0..n {
            store
                .append(&NewEvent::core("busy", "{}", 2 + i as i64))
                .expect("kept");
        }
        let decoders = Decoders::new(Default::default());
        let rare = crate::api::v1::parse_filter("subject=rare.>").expect("filter");
        let busy = crate::api::v1::parse_filter("subject=busy").expect("filter");
        let shared: SharedStore = Arc::new(parking_lot::RwLock::new(store));
        let last = shared.read().last_id();
        // The one match is past the bound: not found (unbounded, it was).
        assert!(tail_snapshot(&shared, &decoders, &rare, 10, last).is_empty());
        let store = shared.read();
        // A live refresh over more new events than a tick examines shows
        // what it found and counts what it did not examine as skipped.
        let first = store.first_id().expect("events");
        let (events, skipped) = tail(&decoders, &store, &rare, 10, Some(first), store.last_id());
        assert!(events.is_empty());
        assert_eq!(skipped, (n - TAIL_SCAN) as u64);
        // Matches inside the bound are found, newest last.
        let page = tail_snapshot(&shared, &decoders, &busy, 10, store.last_id());
        assert_eq!(page.len(), 10);
        assert_eq!(page.last().map(|e| e.id), store.last_id());
    }

    /// A batch larger than the whole store: every event is still counted
    /// and folded, though most are evicted before the batch ends.
    /// A stop keeps what the sources handed on: batches queued when the
    /// stop comes are folded into the log before the hub ends (a durable
    /// JetStream consumer acknowledged them), and a batch sent after is
    /// refused, so its source does not acknowledge it.
    #[test]
    fn a_stop_keeps_what_was_handed_on_and_refuses_what_comes_after() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let store: SharedStore = Arc::new(parking_lot::RwLock::new(Store::new(1 << 20)));
            let checkpoints = Arc::new(parking_lot::Mutex::new(Checkpoints::new(1_000, 1_000, 8)));
            let (tx, rx) = crate::ingest::queue::queue();
            let (hub, _handle) = Hub::new(
                rx,
                Arc::new(Stats::default()),
                Arc::clone(&store),
                checkpoints,
                crate::projection::partition::Folds::new(Projections::default(), 1),
                Arc::new(Decoders::new(Default::default())),
                Duration::from_millis(100),
            );
            for b in 0..3 {
                let batch = (0..10)
                    .map(|i| NewEvent::core("stop.s", "{}", b * 10 + i))
                    .collect();
                tx.send(batch).await.expect("queued");
            }
            // The stop comes before the hub ever turned.
            let shutdown = CancellationToken::new();
            shutdown.cancel();
            hub.run(shutdown).await;
            assert_eq!(store.read().held(), 30, "every queued event kept");
            assert!(
                tx.send(vec![NewEvent::core("stop.late", "{}", 99)])
                    .await
                    .is_err(),
                "a batch after the stop is refused"
            );
        });
    }

    #[test]
    fn a_batch_larger_than_the_store_is_folded_whole() {
        for partitions in [1, 4] {
            let store: SharedStore = Arc::new(parking_lot::RwLock::new(Store::new(256 * 1024)));
            let checkpoints = Arc::new(parking_lot::Mutex::new(Checkpoints::new(1_000, 1_000, 8)));
            let (_tx, rx) = crate::ingest::queue::queue();
            let (mut hub, _handle) = Hub::new(
                rx,
                Arc::new(Stats::default()),
                Arc::clone(&store),
                checkpoints,
                crate::projection::partition::Folds::new(Projections::default(), partitions),
                Arc::new(Decoders::new(Default::default())),
                Duration::from_millis(100),
            );
            assert_eq!(hub.folds.partitions(), partitions);
            let pad = "x".repeat(900);
            let mut batch: Vec<NewEvent> = (0..2_000)
                .map(|i| {
                    let p = format!(r#"{{"level":"info","msg":"{pad}","n":{i}}}"#);
                    NewEvent::core("ev.logs.bulk", p, 1_000 + i)
                })
                .collect();
            // One event of 150 KiB among them: it evicts most of the log
            // at once (events waiting to be folded must be folded first).
            let big = format!(r#"{{"msg":"{}"}}"#, "y".repeat(150 * 1024));
            batch.insert(1_500, NewEvent::core("ev.logs.big", big, 2_500));
            hub.ingest(&mut batch);
            let stats = store.read().stats();
            assert!(stats.evicted > 1_000, "{stats:?}");
            assert_eq!(stats.events + stats.evicted, 2_001, "{stats:?}");
            assert_eq!(hub.counts.snapshot().total, 2_001);
            assert_eq!(hub.folds.progress().0, 2_001, "{partitions} partitions");
        }
    }

    /// Hubs of 1 and of 3 partitions given the same realistic batches
    /// answer alike: every built-in projection, every window, several
    /// moments; and time travel to several events.
    #[test]
    fn partitioned_hubs_answer_as_one() {
        use crate::traffic::{Profile, Traffic};
        let traffic = Traffic::new(Profile::Realistic, 5_000, 9);
        let decoders = Decoders::new(Vec::new());
        let start = 1_795_672_800_000i64;
        let events: Vec<NewEvent> = (0..30_000u64)
            .map(|i| {
                traffic
                    .message(i)
                    .into_event(start + (i / 20) as i64, &decoders)
            })
            .collect();
        let mut hubs = [Hub::for_bench_with(1), Hub::for_bench_with(3)];
        assert_eq!(hubs.each_ref().map(|h| h.folds.partitions()), [1, 3]);
        for hub in &mut hubs {
            for chunk in events.chunks(4_096) {
                hub.ingest(&mut chunk.to_vec());
            }
            hub.folds.refresh();
        }
        let answers = |hub: &Hub| {
            let store = hub.store.read();
            let p = hub.folds.view();
            let now = p.last_ms();
            let mut out = vec![format!("{:?} {:?}", p.folded(), p.last_id())];
            for info in crate::projection::builtin::builtin_catalogue() {
                for w in [Window::S1, Window::M1, Window::M15, Window::H1] {
                    for at in [now, now + 30_000] {
                        let body = p.snapshot(&store, &info.name, w, at);
                        assert!(body.is_some(), "{}", info.name);
                        out.push(format!("{} {w:?} {at} {}", info.name, to_value(&body)));
                    }
                }
            }
            let cps = hub.checkpoints.lock();
            for target in [1, 777, 12_345, 29_999, 30_000] {
                let base = cps.base_for(target).expect("a base");
                let past = crate::projection::timetravel::fold_from(&store, &base, target)
                    .expect("in the log");
                let body = past.snapshot(&store, "flows", Window::H1, past.last_ms());
                out.push(format!(
                    "at {target}: {} {}",
                    past.folded(),
                    to_value(&body)
                ));
            }
            out
        };
        let (one, three) = (answers(&hubs[0]), answers(&hubs[1]));
        assert!(one.len() > 40);
        for (a, b) in one.iter().zip(&three) {
            assert_eq!(a, b);
        }
    }
}
