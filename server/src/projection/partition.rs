//! Partitions of the projections (issue 15, docs/DESIGN.md "Partitions"):
//! which partition folds an event, so that what one fold must see together
//! lands in one partition.
//!
//! The log stays one (ids global, in order of receipt); the folds, most of
//! the hub's cost per event, run in `--partitions N` states side by side and
//! are merged for reading ([`Projections::absorb`]). The key of an event:
//! - its correlation id, when it has one: a flow's steps meet in one fold,
//!   and the topology's causal edges with them;
//! - else, if it arrives on the reply subject of a request seen recently,
//!   the partition that request went to: a request meets its answer even
//!   when only the request carries a correlation id;
//! - else, if it is a request (it has a reply subject), that reply subject
//!   (its answer, on that subject, hashes the same);
//! - else its subject.
//!
//! [`Projections::absorb`]: super::builtin::Projections::absorb

use super::builtin::Projections;
use crate::store::{EventRef, Store};
use foldhash::HashMap;
use std::collections::VecDeque;
use std::hash::BuildHasher;

/// Partitions `--partitions` allows.
pub const MAX_PARTITIONS: usize = 64;

/// Requests whose partition the router remembers for their answer (as many
/// as the topology waits for).
const PENDING: usize = super::topology::MAX_PENDING;

/// Picks each event's partition.
#[derive(Debug)]
pub struct Router {
    n: usize,
    hasher: foldhash::fast::FixedState,
    /// Reply subjects (hashed) of requests seen, with their partitions.
    pending: HashMap<u64, u16>,
    order: VecDeque<u64>,
}

impl Router {
    /// A router over `n` partitions (at least one).
    pub fn new(n: usize) -> Self {
        Router {
            n: n.clamp(1, MAX_PARTITIONS),
            hasher: foldhash::fast::FixedState::with_seed(0x6576_656e_7473),
            pending: HashMap::default(),
            order: VecDeque::new(),
        }
    }

    fn of(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) % self.n as u64) as usize
    }

    /// The partition of `e`; events must come in id order.
    pub fn route(&mut self, e: &EventRef<'_>) -> usize {
        if self.n == 1 {
            return 0;
        }
        let answered = if self.pending.is_empty() {
            None
        } else {
            self.pending.remove(&self.hasher.hash_one(e.subject()))
        };
        let reply = e.reply();
        let p = match (e.correlation(), answered, reply) {
            (Some(c), _, _) => self.of(c),
            (None, Some(p), _) => usize::from(p),
            (None, None, Some(r)) => self.of(r),
            (None, None, None) => self.of(e.subject()),
        };
        if let Some(r) = reply {
            if self.order.len() >= PENDING
                && let Some(old) = self.order.pop_front()
            {
                self.pending.remove(&old);
            }
            let h = self.hasher.hash_one(r);
            self.order.push_back(h);
            self.pending.insert(h, p as u16);
        }
        p
    }
}

#[cfg(test)]
mod tests;

/// The projections' state over `--partitions N`: one state folded inline
/// (N = 1, as before partitions), or N states folded side by side on a
/// pool of N threads, merged for reading when read.
pub struct Folds {
    parts: Vec<Projections>,
    router: Router,
    /// The threads folding partitions (none for one partition).
    pool: Option<rayon::ThreadPool>,
    /// Stored events waiting to be folded, by partition (ids, in order).
    routed: Vec<Vec<u64>>,
    /// Bytes of the events waiting: folded before they could be evicted.
    routed_bytes: usize,
    /// The partitions merged as of the last [`Folds::refresh`], and
    /// whether anything was folded since.
    view: Projections,
    stale: bool,
    merged_at: std::time::Instant,
}

impl std::fmt::Debug for Folds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Folds")
            .field("partitions", &self.parts.len())
            .finish_non_exhaustive()
    }
}

/// Partitions when `--partitions` is not given: 2 on a machine of 8 cores
/// or more, else 1. Measured on 16 cores (docs/PERFORMANCE.md, "Many
/// cores"): 2 raised the loss-free ceiling over 1, 4 matched 1 and 8 was
/// below it (the hub waits for every partition each batch, and merges and
/// checkpoints copy every partition), so more is not the default.
pub fn default_partitions() -> usize {
    std::thread::available_parallelism().map_or(1, |n| if n.get() >= 8 { 2 } else { 1 })
}

impl Folds {
    /// `n` partitions, each starting from `base`.
    pub fn new(base: Projections, n: usize) -> Folds {
        let n = n.clamp(1, MAX_PARTITIONS);
        let pool = (n > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("eventscope-fold-{i}"))
                    .build()
                    .map_err(|e| tracing::warn!(error = %e, "no fold threads: folding inline"))
                    .ok()
            })
            .flatten();
        let n = if pool.is_some() { n } else { 1 };
        Folds {
            view: base.clone(),
            stale: false,
            merged_at: std::time::Instant::now(),
            parts: vec![base; n],
            router: Router::new(n),
            pool,
            routed: vec![Vec::new(); n],
            routed_bytes: 0,
        }
    }

    /// Partitions folding.
    pub fn partitions(&self) -> usize {
        self.parts.len()
    }

    /// Called before the log appends an event of `bytes` (as the ingest
    /// queue weighs it): with partitions, folds what waits first if the
    /// events waiting and this one could reach an eighth of the log's cap,
    /// so the log never evicts an event before it is folded (eviction
    /// takes the oldest chunks; the waiting events are in the newest).
    pub fn make_room(&mut self, bytes: usize, store: &Store) {
        if self.pool.is_some() && self.routed_bytes.saturating_add(bytes) >= store.cap_bytes() / 8 {
            self.fold_routed(store);
        }
    }

    /// Takes a stored event (in id order) of `bytes`: folded at once with
    /// one partition, routed to its partition's queue with more (then
    /// [`Folds::fold_routed`] folds them; [`Folds::make_room`] first).
    pub fn take(&mut self, e: &EventRef<'_>, bytes: usize) {
        if self.pool.is_none() {
            self.parts[0].apply(e);
            return;
        }
        let p = self.router.route(e);
        self.routed[p].push(e.id);
        self.routed_bytes = self.routed_bytes.saturating_add(bytes.max(1));
    }

    /// Folds every routed event, each partition on its own thread.
    pub fn fold_routed(&mut self, store: &Store) {
        let Some(pool) = &self.pool else { return };
        if self.routed_bytes == 0 {
            return;
        }
        use rayon::prelude::*;
        pool.install(|| {
            self.parts
                .par_iter_mut()
                .zip(self.routed.par_iter_mut())
                .for_each(|(part, ids)| {
                    for id in ids.drain(..) {
                        if let Some(e) = store.get(id) {
                            part.apply(&e);
                        }
                    }
                });
        });
        self.routed_bytes = 0;
        self.stale = true;
    }

    /// Events folded, the last id and the last received time, over all
    /// partitions (cheap: no merge).
    pub fn progress(&self) -> (u64, Option<u64>, i64) {
        super::timetravel::progress(&self.parts)
    }

    /// The partitions' states (one without partitions), everything routed
    /// to them folded.
    pub fn parts(&self) -> &[Projections] {
        &self.parts
    }

    /// What the live state weighs: the partitions, and their merged view
    /// when there are several.
    pub fn weight(&self) -> usize {
        let parts: usize = self.parts.iter().map(|p| p.weight(None).full()).sum();
        parts
            + self
                .pool
                .as_ref()
                .map_or(0, |_| self.view.weight(None).full())
    }

    /// [`Projections::set_full`] on every partition.
    pub fn set_full(&mut self, full: bool) {
        for p in &mut self.parts {
            p.set_full(full);
        }
    }

    /// [`Projections::left_out`], over the partitions.
    pub fn left_out(&self) -> (u64, u64, u64) {
        self.parts.iter().fold((0, 0, 0), |(a, b, c), p| {
            let (x, y, z) = p.left_out();
            (a + x, b + y, c + z)
        })
    }

    /// Merges the partitions for reading, if anything was folded since the
    /// last merge.
    pub fn refresh(&mut self) {
        if self.pool.is_some() && self.stale {
            self.view = Projections::merged(&self.parts);
            self.stale = false;
            self.merged_at = std::time::Instant::now();
        }
    }

    /// [`Folds::refresh`], unless the last merge is younger than `age`:
    /// answers at most `age` old, and at most one merge per `age` however
    /// many questions come (a merge costs milliseconds).
    pub fn refresh_older_than(&mut self, age: std::time::Duration) {
        if self.merged_at.elapsed() >= age {
            self.refresh();
        }
    }

    /// The state to read: the one partition, or the partitions merged as of
    /// the last [`Folds::refresh`].
    pub fn view(&self) -> &Projections {
        if self.pool.is_some() {
            &self.view
        } else {
            &self.parts[0]
        }
    }
}
