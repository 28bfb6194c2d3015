//! Time-bucketed rings: the building block of sliding windows. A [`Ring`]
//! keeps the last `len` buckets of `width_ms` each; a [`MultiRes`] keeps
//! three rings (1 s × 60, 10 s × 90, 60 s × 60) and answers every
//! [`Window`] from the finest ring that spans it.
//!
//! Time is the store's received time, which never goes backwards, so a
//! bucket older than the ring is simply dropped (it cannot happen in
//! practice: it would be an event from more than an hour before the last).

use app::api::Window;

/// The last `len` buckets of `width_ms` each.
#[derive(Clone, Debug)]
pub struct Ring<T> {
    width_ms: i64,
    slots: Box<[T]>,
    /// Absolute index (time / width) of the newest bucket written.
    head: i64,
    /// Where the newest bucket starts (ms) and its slot: most events fall
    /// in it, and finding it then takes no division.
    head_start_ms: i64,
    head_slot: usize,
}

impl<T> Ring<T> {
    /// The buckets, by slot (the same slot holds the same moment in every
    /// copy of a ring).
    pub fn slots(&self) -> &[T] {
        &self.slots
    }

    /// Bytes of the buckets themselves (not of what they point to).
    pub fn slot_bytes(&self) -> usize {
        std::mem::size_of_val::<[T]>(&self.slots)
    }

    /// Where the newest bucket written starts (`i64::MIN`: none yet).
    pub fn newest_ms(&self) -> i64 {
        self.head_start_ms
    }
}

impl<T: Default + Clone> Ring<T> {
    /// An empty ring.
    pub fn new(width_ms: i64, len: usize) -> Self {
        Ring {
            width_ms,
            slots: vec![T::default(); len].into_boxed_slice(),
            head: i64::MIN,
            head_start_ms: i64::MIN,
            head_slot: 0,
        }
    }

    fn len(&self) -> i64 {
        self.slots.len() as i64
    }

    fn index(&self, bucket: i64) -> usize {
        bucket.rem_euclid(self.len()) as usize
    }

    /// The bucket holding time `t_ms`, advancing the ring (and clearing the
    /// buckets it passes) if `t_ms` is newer than anything seen; `None` if
    /// `t_ms` is older than the ring reaches.
    pub fn slot_mut(&mut self, t_ms: i64) -> Option<&mut T> {
        if self.head != i64::MIN
            && let Some(offset) = t_ms.checked_sub(self.head_start_ms)
            && (0..self.width_ms).contains(&offset)
        {
            return Some(&mut self.slots[self.head_slot]);
        }
        let bucket = t_ms.div_euclid(self.width_ms);
        if bucket > self.head {
            let from = if self.head == i64::MIN {
                bucket - self.len() + 1
            } else {
                (self.head + 1).max(bucket - self.len() + 1)
            };
            for b in from..=bucket {
                let i = self.index(b);
                self.slots[i] = T::default();
            }
            self.head = bucket;
            self.head_start_ms = bucket.saturating_mul(self.width_ms);
            self.head_slot = self.index(bucket);
        } else if bucket <= self.head - self.len() {
            return None;
        }
        let i = self.index(bucket);
        Some(&mut self.slots[i])
    }

    /// The buckets covering `(now - span, now]` that hold data, oldest first,
    /// with their start times. Buckets after the newest written are empty
    /// and skipped.
    pub fn window(&self, now_ms: i64, span_ms: i64) -> impl Iterator<Item = (i64, &T)> + '_ {
        let last = now_ms.div_euclid(self.width_ms);
        let first = last - (span_ms / self.width_ms).max(1) + 1;
        let lo = first.max(self.head.saturating_sub(self.len() - 1));
        let hi = last.min(self.head);
        (lo..=hi).map(move |b| (b * self.width_ms, &self.slots[self.index(b)]))
    }
}

impl<T: Default + Clone> Ring<T> {
    /// Adds `other`'s buckets into this ring's (`add` combines two
    /// buckets), as if this ring had been given `other`'s events too: the
    /// newer head wins and buckets out of its reach are dropped. Exact when
    /// times never go backwards by more than the ring spans, as received
    /// times do not (partitions, docs/DESIGN.md).
    pub fn absorb(&mut self, other: &Ring<T>, mut add: impl FnMut(&mut T, &T)) {
        debug_assert_eq!(
            (self.width_ms, self.slots.len()),
            (other.width_ms, other.slots.len())
        );
        if other.head == i64::MIN {
            return;
        }
        if self.head == i64::MIN {
            *self = other.clone();
            return;
        }
        if other.head > self.head {
            // Advances the head, clearing the buckets it passes.
            let _ = self.slot_mut(other.head.saturating_mul(self.width_ms));
        }
        let reach = self.head - self.len();
        for b in (other.head - other.len() + 1).max(reach + 1)..=other.head {
            let (i, j) = (self.index(b), other.index(b));
            add(&mut self.slots[i], &other.slots[j]);
        }
    }
}

/// Three rings (1 s × 60, 10 s × 90, 60 s × 60): every window from 1 s to
/// 1 h, sliding by 1 s up to a minute, by 10 s up to 15 minutes, by a
/// minute up to an hour.
#[derive(Clone, Debug)]
pub struct MultiRes<T> {
    rings: [Ring<T>; 3],
}

impl<T: Default + Clone> Default for MultiRes<T> {
    fn default() -> Self {
        MultiRes {
            rings: [
                Ring::new(1_000, 60),
                Ring::new(10_000, 90),
                Ring::new(60_000, 60),
            ],
        }
    }
}

impl<T> MultiRes<T> {
    /// The three rings, finest first.
    pub fn rings(&self) -> &[Ring<T>; 3] {
        &self.rings
    }

    /// Bytes of the buckets themselves (not of what they point to).
    pub fn slot_bytes(&self) -> usize {
        self.rings.iter().map(Ring::slot_bytes).sum()
    }

    /// Where the newest bucket written starts (`i64::MIN`: none yet).
    pub fn newest_ms(&self) -> i64 {
        self.rings[0].newest_ms()
    }

    /// The same for any `MultiRes<T>`, without one at hand.
    pub fn bucket_bytes() -> usize {
        std::mem::size_of::<T>() * (60 + 90 + 60)
    }
}

impl<T: Default + Clone> MultiRes<T> {
    /// Applies `f` to the bucket of `t_ms` in every ring.
    pub fn update(&mut self, t_ms: i64, mut f: impl FnMut(&mut T)) {
        for ring in &mut self.rings {
            if let Some(slot) = ring.slot_mut(t_ms) {
                f(slot);
            }
        }
    }

    fn ring(&self, window: Window) -> &Ring<T> {
        match window {
            Window::S1 | Window::S10 | Window::M1 => &self.rings[0],
            Window::M15 => &self.rings[1],
            Window::H1 => &self.rings[2],
        }
    }

    /// The buckets covering `window` as of `now_ms`.
    pub fn window(&self, now_ms: i64, window: Window) -> impl Iterator<Item = &T> + '_ {
        self.ring(window)
            .window(now_ms, window.ms())
            .map(|(_, v)| v)
    }

    /// The same buckets with their start times, and their width (ms).
    pub fn buckets(&self, now_ms: i64, window: Window) -> (i64, Vec<(i64, &T)>) {
        let ring = self.ring(window);
        (ring.width_ms, ring.window(now_ms, window.ms()).collect())
    }
}

impl<T: Default + Clone> MultiRes<T> {
    /// [`Ring::absorb`] for each ring.
    pub fn absorb(&mut self, other: &MultiRes<T>, mut add: impl FnMut(&mut T, &T)) {
        for (mine, theirs) in self.rings.iter_mut().zip(&other.rings) {
            mine.absorb(theirs, &mut add);
        }
    }
}

/// Adds two counts (saturating, as the folds do).
pub fn add_u32(a: &mut u32, b: &u32) {
    *a = a.saturating_add(*b);
}

/// Adds two (events, errors) pairs.
pub fn add_pair(a: &mut (u32, u32), b: &(u32, u32)) {
    add_u32(&mut a.0, &b.0);
    add_u32(&mut a.1, &b.1);
}

/// Folds each of `other`'s keyed counters into this map's.
pub fn absorb_map<
    K: Clone + Eq + std::hash::Hash,
    T: Default + Clone,
    S: std::hash::BuildHasher,
>(
    map: &mut std::collections::HashMap<K, MultiRes<T>, S>,
    other: &std::collections::HashMap<K, MultiRes<T>, S>,
    mut add: impl FnMut(&mut T, &T),
) {
    for (k, m) in other {
        match map.get_mut(k) {
            Some(mine) => mine.absorb(m, &mut add),
            None => {
                map.insert(k.clone(), m.clone());
            }
        }
    }
}

impl MultiRes<u32> {
    /// Adds one at `t_ms`.
    pub fn incr(&mut self, t_ms: i64) {
        self.update(t_ms, |c| *c = c.saturating_add(1));
    }

    /// Total over `window` as of `now_ms`.
    pub fn sum(&self, now_ms: i64, window: Window) -> u64 {
        self.window(now_ms, window).map(|c| u64::from(*c)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_windows_slide_and_forget() {
        let mut r: Ring<u32> = Ring::new(1_000, 5);
        for t in [0, 500, 1_000, 4_999] {
            *r.slot_mut(t).expect("in range") += 1;
        }
        fn sum(r: &Ring<u32>, now: i64, span: i64) -> u32 {
            r.window(now, span).map(|(_, v)| *v).sum()
        }
        assert_eq!(sum(&r, 4_999, 5_000), 4);
        assert_eq!(sum(&r, 4_999, 1_000), 1);
        assert_eq!(sum(&r, 4_999, 4_000), 2, "buckets 1..=4");
        // Later moments see nothing the ring has not been told of.
        assert_eq!(sum(&r, 9_000, 3_000), 0);
        *r.slot_mut(7_000).expect("advances") += 1;
        assert_eq!(sum(&r, 7_000, 5_000), 2, "buckets 3..=7: 4 999 and 7 000");
        assert!(r.slot_mut(1_000).is_none(), "older than the ring");
        *r.slot_mut(100_000).expect("jumps") += 1;
        assert_eq!(sum(&r, 100_000, 5_000), 1);
    }

    #[test]
    fn newest_bucket_shortcut_agrees_with_the_division() {
        // Times in order, some repeated, some on bucket edges, some older
        // (within reach) and negative: every bucket must hold what a
        // count by `t / width` says it does.
        let mut r: Ring<u32> = Ring::new(1_000, 4);
        let times = [
            -2_001, -1_000, -1, 0, 0, 999, 1_000, 1_500, 999, 2_999, 3_000, 3_000, 2_000, 3_999,
            4_000,
        ];
        let mut by_bucket = std::collections::BTreeMap::new();
        for t in times {
            *r.slot_mut(t).expect("within reach") += 1;
            *by_bucket.entry(t.div_euclid(1_000)).or_insert(0) += 1;
        }
        let held: Vec<(i64, u32)> = r.window(4_000, 4_000).map(|(s, v)| (s, *v)).collect();
        let expected: Vec<(i64, u32)> = (1..=4).map(|b| (b * 1_000, by_bucket[&b])).collect();
        assert_eq!(held, expected);
    }

    #[test]
    fn absorbing_a_split_stream_equals_counting_it_whole() {
        // Times in order, split between two rings by a rule unrelated to
        // time: the absorbed ring must answer every window as one ring
        // given every time would.
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..200 {
            let (mut whole, mut a, mut b) = (
                MultiRes::<u32>::default(),
                MultiRes::<u32>::default(),
                MultiRes::<u32>::default(),
            );
            let mut t = rng.i64(-5_000_000..5_000_000);
            for _ in 0..rng.usize(0..400) {
                let step = [10, 2_000, 200_000][rng.usize(0..3)];
                t += rng.i64(0..step);
                whole.incr(t);
                if rng.bool() { a.incr(t) } else { b.incr(t) }
            }
            let (mut ab, mut ba) = (a.clone(), b.clone());
            ab.absorb(&b, add_u32);
            ba.absorb(&a, add_u32);
            for now in [t, t + 500, t + 30_000, t + 1_000_000] {
                for w in [Window::S1, Window::S10, Window::M1, Window::M15, Window::H1] {
                    assert_eq!(ab.sum(now, w), whole.sum(now, w), "{w:?} at {now}");
                    assert_eq!(ba.sum(now, w), whole.sum(now, w), "{w:?} at {now}");
                }
            }
        }
    }

    #[test]
    fn multires_answers_each_window() {
        let mut m: MultiRes<u32> = MultiRes::default();
        // One event a second for two hours.
        for s in 0..7_200i64 {
            m.incr(s * 1_000);
        }
        let now = 7_199_000;
        assert_eq!(m.sum(now, Window::S1), 1);
        assert_eq!(m.sum(now, Window::S10), 10);
        assert_eq!(m.sum(now, Window::M1), 60);
        assert_eq!(m.sum(now, Window::M15), 900);
        assert_eq!(m.sum(now, Window::H1), 3_600);
    }
}
