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

use crate::store::EventRef;
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

    /// Partitions routed to.
    pub fn partitions(&self) -> usize {
        self.n
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
