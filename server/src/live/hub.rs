//! The hub task: the single owner of projection state (after tokio-console's
//! `Aggregator`). It selects over shutdown, the publish tick, subscription
//! commands and ingested events, in that order of priority.

use crate::event::NewEvent;
use crate::projection::builtin::Projections;
use crate::projection::counts::SubjectCounts;
use crate::projection::timetravel::SharedCheckpoints;
use crate::stats::Stats;
use crate::store::SharedStore;
use app::api::{ProjectionState, Window};
use app::wire::{Body, Frame, PROTOCOL_VERSION};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// An encoded frame, shared by every client that sends it.
pub type SharedFrame = Arc<str>;

/// Frames a client may be behind before it is resynced (about 6 s at 10 Hz).
pub const CLIENT_BUFFER_FRAMES: usize = 64;
/// Distinct subjects the counts table holds before overflowing.
pub const MAX_SUBJECTS: usize = 10_000;
/// Events folded per turn of the loop before the tick gets a chance to run.
const FOLD_BATCH: usize = 1_024;

/// A new subscriber's starting point: a snapshot, and a receiver that yields
/// every frame after it.
#[derive(Debug)]
pub struct Subscription {
    /// The snapshot frame, encoded.
    pub snapshot: SharedFrame,
    /// Deltas following the snapshot.
    pub deltas: broadcast::Receiver<SharedFrame>,
}

enum Command {
    Subscribe(oneshot::Sender<Subscription>),
    Projection {
        name: String,
        window: Window,
        reply: oneshot::Sender<Option<ProjectionState>>,
    },
}

/// A cloneable handle to the hub, for WebSocket handlers.
#[derive(Clone, Debug)]
pub struct HubHandle {
    commands: mpsc::Sender<Command>,
}

/// Why a subscription could not be made.
#[derive(Debug, thiserror::Error)]
#[error("the live hub has stopped")]
pub struct HubStopped;

impl HubHandle {
    /// Subscribes to the live view: a snapshot, then deltas.
    pub async fn subscribe(&self) -> Result<Subscription, HubStopped> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Subscribe(tx))
            .await
            .map_err(|_| HubStopped)?;
        rx.await.map_err(|_| HubStopped)
    }

    /// The live state of built-in projection `name` over `window`; `None`
    /// for an unknown name.
    pub async fn projection(
        &self,
        name: &str,
        window: Window,
    ) -> Result<Option<ProjectionState>, HubStopped> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Projection {
                name: name.to_string(),
                window,
                reply,
            })
            .await
            .map_err(|_| HubStopped)?;
        rx.await.map_err(|_| HubStopped)
    }
}

/// The hub's state, owned by its task.
pub struct Hub {
    counts: SubjectCounts,
    /// Received time of the oldest event folded since the last frame.
    oldest_unsent_ms: Option<i64>,
    projections: Projections,
    checkpoints: SharedCheckpoints,
    seq: u64,
    frames: broadcast::Sender<SharedFrame>,
    events: mpsc::Receiver<NewEvent>,
    commands: mpsc::Receiver<Command>,
    stats: Arc<Stats>,
    store: SharedStore,
    tick: Duration,
}

impl Hub {
    /// A hub fed by `events`, publishing every `tick`.
    pub fn new(
        events: mpsc::Receiver<NewEvent>,
        stats: Arc<Stats>,
        store: SharedStore,
        checkpoints: SharedCheckpoints,
        projections: Projections,
        tick: Duration,
    ) -> (Hub, HubHandle) {
        let (cmd_tx, cmd_rx) = mpsc::channel(256);
        let (frames, _) = broadcast::channel(CLIENT_BUFFER_FRAMES);
        let hub = Hub {
            counts: SubjectCounts::new(MAX_SUBJECTS),
            oldest_unsent_ms: None,
            projections,
            checkpoints,
            seq: 0,
            frames,
            events,
            commands: cmd_rx,
            stats,
            store,
            tick,
        };
        (hub, HubHandle { commands: cmd_tx })
    }

    fn frame(&self, body: Body) -> SharedFrame {
        Frame {
            v: PROTOCOL_VERSION,
            seq: self.seq,
            body,
        }
        .to_json()
        .into()
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
    fn ingest(&mut self, batch: &mut Vec<NewEvent>) {
        let mut store = self.store.write();
        let mut checkpoints = self.checkpoints.lock();
        for ev in batch.drain(..) {
            let Some(e) = store.append(&ev).and_then(|id| store.get(id)) else {
                continue;
            };
            self.oldest_unsent_ms.get_or_insert(e.received_ms());
            if !e.is_duplicate() {
                self.counts.apply(e.subject());
                self.projections.apply(&e);
                checkpoints.after_fold(&self.projections, store.held());
            }
        }
        checkpoints.prune(store.first_id());
    }

    /// Runs until `shutdown` fires or every handle and the ingest side are gone.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let start = Instant::now();
        let mut tick = tokio::time::interval(self.tick);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(FOLD_BATCH);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    self.counts.tick(start.elapsed().as_millis() as u64);
                    self.refresh_status();
                    if let Some(delta) = self.counts.take_delta() {
                        self.seq += 1;
                        let frame = self.frame(Body::Delta(delta));
                        // Err only means nobody is listening right now.
                        let _ = self.frames.send(frame);
                        if let Some(oldest) = self.oldest_unsent_ms.take() {
                            let age_ms = (crate::event::now_ms() - oldest).max(0);
                            self.stats.ingest_to_frame.observe(age_ms as f64 / 1_000.0);
                        }
                    }
                }
                Some(cmd) = self.commands.recv() => match cmd {
                    Command::Subscribe(reply) => {
                        self.refresh_status();
                        let sub = Subscription {
                            snapshot: self.frame(Body::Snapshot(self.counts.snapshot())),
                            deltas: self.frames.subscribe(),
                        };
                        let _ = reply.send(sub);
                    }
                    Command::Projection { name, window, reply } => {
                        let store = self.store.read();
                        let now = crate::event::now_ms().max(self.projections.last_ms());
                        let state = self.projections.snapshot(&store, &name, window, now).map(|body| {
                            ProjectionState {
                                window: (name != "rate_history").then_some(window),
                                name,
                                at_ms: now,
                                last_event_id: self.projections.last_id(),
                                live: true,
                                body,
                            }
                        });
                        let _ = reply.send(state);
                    }
                },
                n = self.events.recv_many(&mut batch, FOLD_BATCH) => {
                    if n == 0 {
                        break;
                    }
                    self.ingest(&mut batch);
                }
            }
        }
        tracing::info!("live hub stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::timetravel::Checkpoints;
    use crate::store::Store;

    /// A batch larger than the whole store: every event is still counted
    /// and folded, though most are evicted before the batch ends.
    #[test]
    fn a_batch_larger_than_the_store_is_folded_whole() {
        let store: SharedStore = Arc::new(parking_lot::RwLock::new(Store::new(256 * 1024)));
        let checkpoints = Arc::new(parking_lot::Mutex::new(Checkpoints::new(1_000, 1_000, 8)));
        let (_tx, rx) = mpsc::channel(1);
        let (mut hub, _handle) = Hub::new(
            rx,
            Arc::new(Stats::default()),
            Arc::clone(&store),
            checkpoints,
            Projections::default(),
            Duration::from_millis(100),
        );
        let pad = "x".repeat(900);
        let mut batch: Vec<NewEvent> = (0..2_000)
            .map(|i| {
                let p = format!(r#"{{"level":"info","msg":"{pad}","n":{i}}}"#);
                NewEvent::core("ev.logs.bulk", p, 1_000 + i)
            })
            .collect();
        hub.ingest(&mut batch);
        let stats = store.read().stats();
        assert!(stats.evicted > 1_000, "{stats:?}");
        assert_eq!(hub.counts.snapshot().total, 2_000);
        assert_eq!(hub.projections.folded(), 2_000);
    }
}
