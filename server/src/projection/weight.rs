//! What the projections weigh in memory, so that they and the time-travel
//! checkpoints can be held to a byte budget (`--projection-bytes`,
//! [`super::timetravel::Checkpoints`]).
//!
//! An estimate, counted from the containers' capacities and element sizes
//! (not from the allocator): close to what the allocator hands out, a
//! little under what it keeps (its own rounding and fragmentation are the
//! "+200 MiB" of the documented RSS bound, docs/DESIGN.md). Checkpoints
//! share structure with the state they were copied from (metric sketches
//! and flow steps are `Arc`s, copied only when they next change), so each
//! state is weighed against the one before it: [`Weight::own`] is what it
//! holds alone, [`Weight::shared`] what it shares with that one. Summed
//! along the chain of checkpoints, the own parts count every allocation
//! once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::mem::size_of;
use std::sync::Arc;

/// Bytes a state holds: alone, and in common with the state before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Weight {
    /// Held by this state alone.
    pub own: usize,
    /// Held in common with the state it was weighed against.
    pub shared: usize,
}

impl Weight {
    /// Only bytes of its own.
    pub fn own(own: usize) -> Self {
        Weight { own, shared: 0 }
    }

    /// Everything the state refers to.
    pub fn full(&self) -> usize {
        self.own.saturating_add(self.shared)
    }
}

impl std::ops::AddAssign for Weight {
    fn add_assign(&mut self, o: Weight) {
        self.own = self.own.saturating_add(o.own);
        self.shared = self.shared.saturating_add(o.shared);
    }
}

impl std::ops::Add for Weight {
    type Output = Weight;
    fn add(mut self, o: Weight) -> Weight {
        self += o;
        self
    }
}

impl std::iter::Sum for Weight {
    fn sum<I: Iterator<Item = Weight>>(iter: I) -> Weight {
        iter.fold(Weight::default(), |a, b| a + b)
    }
}

/// A hash map's table (hashbrown: a control byte per bucket, buckets a
/// power of two at most 8/7 of the capacity), not what its values own.
pub fn map<K, V, S>(m: &HashMap<K, V, S>) -> usize {
    table::<(K, V)>(m.capacity())
}

/// A hash set's table.
pub fn set<K, S>(s: &HashSet<K, S>) -> usize {
    table::<K>(s.capacity())
}

fn table<T>(capacity: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = (capacity.saturating_mul(8) / 7).next_power_of_two();
    buckets.saturating_mul(size_of::<T>() + 1)
}

/// A deque's buffer.
pub fn deque<T>(d: &VecDeque<T>) -> usize {
    d.capacity().saturating_mul(size_of::<T>())
}

/// A vector's buffer.
pub fn vec<T>(v: &Vec<T>) -> usize {
    v.capacity().saturating_mul(size_of::<T>())
}

/// An `Arc`'s allocation (`bytes`: what it holds, counted only when asked)
/// as this state's own, or as shared when the state before held the same
/// one (`prev`).
pub fn arc<T: ?Sized>(a: &Arc<T>, prev: Option<&Arc<T>>, bytes: impl FnOnce() -> usize) -> Weight {
    // Two counters beside the value.
    let n = bytes().saturating_add(2 * size_of::<usize>());
    if prev.is_some_and(|p| Arc::ptr_eq(a, p)) {
        Weight { own: 0, shared: n }
    } else {
        Weight::own(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_grow_with_capacity_and_arcs_count_once_along_a_chain() {
        let mut m: HashMap<u32, u64> = HashMap::new();
        assert_eq!(map(&m), 0);
        m.extend((0..1_000).map(|i| (i, 0)));
        let w = map(&m);
        assert!((1_000 * 17..=4 * 1_000 * 17).contains(&w), "{w}");

        let a = Arc::new([0u8; 100]);
        let b = Arc::clone(&a);
        let c = Arc::new([0u8; 100]);
        let first = arc(&a, None, || 100);
        let second = arc(&b, Some(&a), || 100);
        let third = arc(&c, Some(&b), || 100);
        assert_eq!(first.own, 116);
        assert_eq!((second.own, second.shared), (0, 116));
        assert_eq!(third.own, 116);
        // Along the chain, each allocation once.
        assert_eq!((first + second + third).own, 232);
    }
}
