//! Time travel (the server side of PRODUCT.md F7): the state of every
//! built-in projection as of any moment still in the log, rebuilt by
//! folding stored events forward from the nearest earlier checkpoint.
//!
//! The live hub takes a checkpoint (a clone of its [`Projections`]) every
//! `every_events` events or `every_ms` of received time, whichever comes
//! first, so a rebuild folds at most that many events. A checkpoint is only
//! useful while the events after it are still in the log: older ones are
//! pruned as the log evicts. Checkpoints are shared (`Arc`), so the API can
//! take one and fold forward on its own thread while the hub goes on.

use super::builtin::Projections;
use super::weight::Weight;
use crate::store::Store;
use std::collections::VecDeque;
use std::sync::Arc;

/// A projection state, as one state or as its partitions (merged when a
/// past moment is rebuilt from it: a merge costs milliseconds, a copy of
/// the partitions no more than the copy of one state), and the last event
/// folded into it.
#[derive(Debug)]
pub struct Checkpoint {
    /// The state's partitions (one without partitions).
    parts: Vec<Projections>,
    /// Last event id folded (0: none).
    pub last_id: u64,
    folded: u64,
    last_ms: i64,
}

impl Checkpoint {
    fn new(parts: Vec<Projections>) -> Option<Checkpoint> {
        let (folded, last_id, last_ms) = progress(&parts);
        (!parts.is_empty()).then(|| Checkpoint {
            parts,
            last_id: last_id.unwrap_or(0),
            folded,
            last_ms,
        })
    }

    /// The state (the partitions merged).
    pub fn state(&self) -> Projections {
        Projections::merged(&self.parts)
    }

    /// What it weighs beside `prev`, the checkpoint before it.
    pub fn weight(&self, prev: Option<&Checkpoint>) -> Weight {
        self.parts
            .iter()
            .enumerate()
            .map(|(i, p)| p.weight(prev.and_then(|b| b.parts.get(i))))
            .sum()
    }
}

/// Events folded, the last id and the last received time of a state split
/// in `parts`.
pub fn progress(parts: &[Projections]) -> (u64, Option<u64>, i64) {
    parts.iter().fold((0, None, i64::MIN), |(n, id, ms), p| {
        (n + p.folded(), id.max(p.last_id()), ms.max(p.last_ms()))
    })
}

/// The live state takes no new keys once it and the one checkpoint left
/// are within an eighth of the budget: it grows between weighings (a
/// second apart) and in the keys it has. A 10-minute hostile soak, with
/// the line at the budget itself, ended 9% over it.
const HEADROOM: usize = 8;

/// Fewest events between two checkpoints.
const MIN_SPACING: u64 = 16;

/// The hub's checkpoints, oldest first, held with the live state to a
/// byte budget: past it, checkpoints give way (those whose loss widens the
/// gaps least first), down to one; past it with one left, the hub makes
/// the live state take no new keys ([`Checkpoints::weigh_live`]).
#[derive(Debug)]
pub struct Checkpoints {
    list: VecDeque<Arc<Checkpoint>>,
    /// What each checkpoint holds that the one before it does not
    /// ([`Weight::own`]; the oldest's: all of it).
    own: VecDeque<usize>,
    /// Bytes for the live state and the checkpoints together.
    budget: usize,
    /// The live state's weight when it was last copied or weighed.
    live: usize,
    /// The budget leaves room for one checkpoint only: the next is taken
    /// when a quarter of the log has gone by, not sooner.
    tight: bool,
    /// Checkpoints let go for the budget.
    dropped: u64,
    every_events: u64,
    every_ms: i64,
    max: usize,
    /// How long the last checkpoint took to copy and keep, when it was
    /// taken, and the time all of them took.
    cost: std::time::Duration,
    taken: Option<std::time::Instant>,
    spent: std::time::Duration,
}

/// A checkpoint that took at least [`COSTLY`] to copy waits this many
/// times as long before the next: copying the state stays under a
/// twentieth of the hub's time, however large the state and fast the
/// traffic (checkpoints come further apart instead, and time travel folds
/// a little further from one), except that one always comes within a
/// quarter of the log.
const COST_SHARE: u32 = 20;
/// Copies quicker than this are not spaced out (small states: every
/// checkpoint is kept where the spacing says, the same on any machine).
const COSTLY: std::time::Duration = std::time::Duration::from_millis(1);

/// The checkpoints as shared by the hub (writer) and the API (readers); the
/// lock is held only to push, prune or pick one.
pub type SharedCheckpoints = Arc<parking_lot::Mutex<Checkpoints>>;

/// Why a past state cannot be rebuilt.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum TravelError {
    /// The moment is older than what the log (and checkpoints) still hold.
    #[error(
        "that moment is no longer in the event log (the earliest that can be rebuilt is {earliest})"
    )]
    TooOld {
        /// The earliest moment that can be rebuilt, as text.
        earliest: String,
    },
}

impl Checkpoints {
    /// Starts with the empty state (valid while nothing has been evicted).
    pub fn new(every_events: u64, every_ms: i64, max: usize) -> Self {
        Self::starting_from(Projections::default(), every_events, every_ms, max)
    }

    /// Like [`Checkpoints::new`], from an empty `initial` state (one that
    /// carries user-defined projections).
    pub fn starting_from(
        initial: Projections,
        every_events: u64,
        every_ms: i64,
        max: usize,
    ) -> Self {
        let first = Checkpoint {
            folded: initial.folded(),
            last_ms: initial.last_ms(),
            parts: vec![initial],
            last_id: 0,
        };
        let live = first.weight(None).full();
        Checkpoints {
            own: VecDeque::from([live]),
            list: VecDeque::from([Arc::new(first)]),
            budget: usize::MAX,
            live,
            tight: false,
            dropped: 0,
            every_events: every_events.max(1),
            every_ms: every_ms.max(1),
            max: max.max(2),
            cost: std::time::Duration::ZERO,
            taken: None,
            spent: std::time::Duration::ZERO,
        }
    }

    /// Holds the live state and the checkpoints to `bytes` together.
    pub fn with_budget(mut self, bytes: usize) -> Self {
        self.budget = bytes;
        self
    }

    /// The budget.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// The live state's weight when last copied, and what the checkpoints
    /// hold beyond it (each allocation counted once).
    pub fn bytes(&self) -> (usize, usize) {
        (self.live, self.own.iter().sum())
    }

    /// Takes the live state's weight as weighed now (it grows between
    /// checkpoints), letting checkpoints go if need be; whether the live
    /// state and the one checkpoint left are within [`HEADROOM`] of the
    /// budget (the live state should then take nothing new, so that it
    /// and one copy of it stay within the budget as it goes on growing in
    /// the keys and buckets it has, and until the next weighing).
    pub fn weigh_live(&mut self, bytes: usize) -> bool {
        self.live = bytes;
        self.fit();
        let (live, held) = self.bytes();
        self.list.len() == 1 && live.saturating_add(held) >= self.budget - self.budget / HEADROOM
    }

    /// Checkpoints let go to stay within the budget.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// What the checkpoints hold beyond the live state, weighed again
    /// from scratch (tests: the running sums must agree).
    #[cfg(test)]
    fn reweighed(&self) -> usize {
        (0..self.list.len())
            .map(|i| {
                self.list[i]
                    .weight(i.checked_sub(1).map(|p| &*self.list[p]))
                    .own
            })
            .sum()
    }

    /// Called by the hub after folding each event: takes a checkpoint when
    /// due. `held_events` is the log's size: checkpoints come at least every
    /// quarter of it, so one always stays inside the log as it evicts.
    pub fn after_fold(&mut self, live: &Projections, held_events: u64) {
        if self.due_for(live, held_events) {
            self.keep(|| vec![live.clone()]);
        }
    }

    /// Whether a checkpoint of `live` is due ([`Checkpoints::due`]).
    pub fn due_for(&self, live: &Projections, held_events: u64) -> bool {
        self.due((live.folded(), live.last_id(), live.last_ms()), held_events)
    }

    /// Whether a checkpoint is due for a state at `progress` (events
    /// folded, last id, last received time; [`Projections::folded`] and
    /// the rest). Partitions ask this before they merge a state to keep.
    pub fn due(&self, progress: (u64, Option<u64>, i64), held_events: u64) -> bool {
        let spacing = (held_events / 4).clamp(MIN_SPACING, self.every_events.max(MIN_SPACING));
        let Some(last) = self.list.back() else {
            return false;
        };
        let (folded, live_id, last_ms) = progress;
        let folded_since = folded.saturating_sub(last.folded);
        // A quarter of the log since the last: due whatever it costs (one
        // must stay inside the log as it evicts).
        if live_id.is_some() && folded_since >= (held_events / 4).max(MIN_SPACING) {
            return true;
        }
        if self.tight {
            return false;
        }
        live_id.is_some()
            && (folded_since >= spacing
                || (folded_since > 0
                    && (last.last_id == 0
                        || last_ms.saturating_sub(last.last_ms) >= self.every_ms)))
            // (asked last: it reads the clock)
            && !(self.cost >= COSTLY
                && self
                    .taken
                    .is_some_and(|t| t.elapsed() < self.cost * COST_SHARE))
    }

    /// Keeps the state `copy` makes (split in parts; a state
    /// [`Checkpoints::due`] said was due), timing the copy: a costly one
    /// spaces the next out.
    pub fn keep(&mut self, copy: impl FnOnce() -> Vec<Projections>) {
        let t = std::time::Instant::now();
        let parts = copy();
        self.kept(parts, t);
    }

    /// Keeps a copy begun at `started` (the hub copies with no lock held,
    /// then hands it over): [`Checkpoints::keep`] in two steps.
    pub fn kept(&mut self, parts: Vec<Projections>, started: std::time::Instant) {
        self.push(parts);
        self.cost = started.elapsed();
        self.spent += self.cost;
        self.taken = Some(started);
    }

    /// The time all checkpoints took to copy and keep (`/metrics`).
    pub fn spent(&self) -> std::time::Duration {
        self.spent
    }

    /// Keeps the state split in `parts` (a state [`Checkpoints::due`]
    /// said was due).
    pub fn push(&mut self, parts: Vec<Projections>) {
        let Some(checkpoint) = Checkpoint::new(parts).filter(|c| c.last_id > 0) else {
            return;
        };
        let w = checkpoint.weight(self.list.back().map(|c| &**c));
        // The live state weighs at least what its copy does (the hub's
        // weighing, once a second, counts the merged view of partitions
        // as well: this only ever raises it).
        self.live = self.live.max(w.full());
        self.list.push_back(Arc::new(checkpoint));
        self.own.push_back(w.own);
        if self.list.len() > self.max {
            // Thin out every other one (keeping the oldest and newest):
            // coverage of the whole log stays, spacing doubles.
            let last = self.list.len() - 1;
            let mut i = 0;
            self.list.retain(|_| {
                let keep = i % 2 == 0 || i == last;
                i += 1;
                keep
            });
            self.own.clear();
            self.own.resize(self.list.len(), 0);
            for i in 0..self.list.len() {
                self.reweigh(i);
            }
        }
        self.fit();
    }

    /// Lets checkpoints go until the live state and they fit the budget:
    /// of those between the oldest and the newest, the one whose loss
    /// leaves the smallest gap (in events) first; with two left, the
    /// oldest (time travel then reaches back to the newest only).
    fn fit(&mut self) {
        let over = |c: &Self| c.live.saturating_add(c.own.iter().sum()) > c.budget;
        while over(self) && self.list.len() > 1 {
            let n = self.list.len();
            let i = if n == 2 {
                0
            } else {
                (1..n - 1)
                    .min_by_key(|&i| self.list[i + 1].folded - self.list[i - 1].folded)
                    .unwrap_or(1)
            };
            self.list.remove(i);
            self.own.remove(i);
            self.reweigh(i);
            self.dropped += 1;
        }
        self.tight = self.list.len() == 1 && over(self);
    }

    /// Weighs checkpoint `i` again against its (new) predecessor.
    fn reweigh(&mut self, i: usize) {
        if let Some(c) = self.list.get(i) {
            let prev = i.checked_sub(1).map(|p| &*self.list[p]);
            self.own[i] = c.weight(prev).own;
        }
    }

    /// Drops checkpoints that can no longer be folded forward because the
    /// events after them were evicted (the newest such one is kept if it
    /// is the only one left, so there is always a base).
    pub fn prune(&mut self, first_held_id: Option<u64>) {
        let Some(first) = first_held_id else { return };
        let mut popped = false;
        while self.list.len() > 1 && self.list[1].last_id < first {
            self.list.pop_front();
            self.own.pop_front();
            popped = true;
        }
        if popped {
            self.reweigh(0);
        }
    }

    /// Number of checkpoints held.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none (never: the empty state is the first).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The latest checkpoint at or before `target_id`.
    pub fn base_for(&self, target_id: u64) -> Option<Arc<Checkpoint>> {
        let i = self.list.partition_point(|c| c.last_id <= target_id);
        self.list.get(i.checked_sub(1)?).cloned()
    }

    /// The oldest event id whose state can still be rebuilt (0: the state
    /// before any event), given the log's oldest held id; `None` for an
    /// empty log.
    pub fn earliest_id(&self, first_held_id: Option<u64>) -> Option<u64> {
        let first = first_held_id?;
        self.list
            .iter()
            .find(|c| c.last_id + 1 >= first)
            .map(|c| c.last_id)
    }
}

/// Folds the held events with ids in `(after, upto]` into `state`, which
/// must hold everything up to `after`: `TooOld` when the log no longer
/// holds the event after it (evicted meanwhile).
pub fn fold_range(
    state: &mut Projections,
    store: &Store,
    after: u64,
    upto: u64,
) -> Result<(), TravelError> {
    if upto <= after {
        return Ok(());
    }
    if let Some(first) = store.first_id()
        && after + 1 < first
    {
        return Err(TravelError::TooOld {
            earliest: format!("event {first}"),
        });
    }
    for e in store.range(after + 1, upto) {
        if !e.is_duplicate() {
            state.apply(&e);
        }
    }
    Ok(())
}

/// Rebuilds the state after folding every held event up to `target_id`
/// (0: before any event), from `base`.
pub fn fold_from(
    store: &Store,
    base: &Checkpoint,
    target_id: u64,
) -> Result<Projections, TravelError> {
    let mut state = base.state();
    fold_range(&mut state, store, base.last_id, target_id)?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;
    use app::api::Window;
    use proptest::prelude::*;

    fn new_event(i: usize, t: i64) -> NewEvent {
        let subject = ["logs.a", "logs.b", "metrics.c"][i % 3];
        let payload = if i % 3 == 2 {
            format!(r#"{{"name":"m","value":{}}}"#, (i % 97) as f64 + 0.5)
        } else {
            format!(
                r#"{{"level":"{}","msg":"m{}"}}"#,
                ["info", "error", "warn"][i % 3],
                i % 5
            )
        };
        NewEvent::core(subject, payload, t)
    }

    const NAMES: [&str; 7] = [
        "rates",
        "log_levels",
        "metrics",
        "top_errors",
        "top_subjects",
        "top_services",
        "rate_history",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// State as of an event equals what the live fold showed then, for
        /// every projection and window; and evicting old events never makes
        /// a reachable moment wrong, only unreachable.
        #[test]
        fn state_as_of_t_equals_live_at_t(
            gaps in proptest::collection::vec(0i64..2_500, 50..600),
            every in 1u64..80,
            cap_kb in prop_oneof![Just(64usize), Just(4096usize)],
            probes in proptest::collection::vec(any::<prop::sample::Index>(), 1..6),
            budget in prop_oneof![Just(usize::MAX), 100_000usize..2_000_000],
        ) {
            let mut store = Store::new(cap_kb << 10);
            let mut live = Projections::default();
            let mut cps = Checkpoints::new(every, 30_000, 64).with_budget(budget);
            let mut recorded = Vec::new();
            let probe_at: std::collections::HashSet<usize> =
                probes.iter().map(|p| p.index(gaps.len())).collect();
            let mut t = 1_795_672_800_000i64;
            for (i, gap) in gaps.iter().enumerate() {
                t += gap;
                let Some(id) = store.append(&new_event(i, t)) else { continue };
                if let Some(e) = store.get(id) {
                    live.apply(&e);
                }
                cps.after_fold(&live, store.stats().events);
                cps.prune(store.first_id());
                let (held_live, held) = cps.bytes();
                prop_assert!(held_live + held <= budget || cps.len() == 1, "{} + {} over {}", held_live, held, budget);
                prop_assert_eq!(held, cps.reweighed(), "the weights kept agree with weighing again");
                if probe_at.contains(&i) {
                    let now = live.last_ms();
                    let snaps: Vec<_> = NAMES
                        .iter()
                        .flat_map(|n| Window::ALL.map(|w| live.snapshot(&store, n, w, now)))
                        .collect();
                    recorded.push((id, now, snaps));
                }
            }
            for (id, now, snaps) in recorded {
                // Moments may be out of reach once eviction started, or
                // checkpoints were let go for the budget; never wrong.
                let may_miss = store.first_id() > Some(1) || cps.dropped() > 0;
                let Some(base) = cps.base_for(id) else {
                    prop_assert!(may_miss);
                    continue;
                };
                match fold_from(&store, &base, id) {
                    Ok(state) => {
                        prop_assert_eq!(state.last_id(), Some(id));
                        let again: Vec<_> = NAMES
                            .iter()
                            .flat_map(|n| Window::ALL.map(|w| state.snapshot(&store, n, w, now)))
                            .collect();
                        prop_assert_eq!(again, snaps, "as of event {}", id);
                    }
                    Err(TravelError::TooOld { .. }) => {
                        prop_assert!(may_miss);
                    }
                }
            }
        }
    }

    #[test]
    fn checkpoints_give_way_to_the_byte_budget_evenly_and_down_to_one() {
        // `held_events`: None pushes a checkpoint every 10 events (whatever
        // copies cost), Some asks `after_fold` as the hub does.
        let fill = |cps: &mut Checkpoints, held_events: Option<u64>| {
            let mut store = Store::new(64 << 20);
            let mut live = Projections::default();
            for i in 0..2_000 {
                let id = store.append(&new_event(i, i as i64 * 10)).expect("kept");
                live.apply(&store.get(id).expect("held"));
                match held_events {
                    Some(held) => cps.after_fold(&live, held),
                    None if i % 10 == 9 => cps.push(vec![live.clone()]),
                    None => {}
                }
                let (l, held) = cps.bytes();
                assert!(
                    l + held <= cps.budget() || cps.len() == 1,
                    "within the budget"
                );
            }
            live
        };
        // A state here is mostly its hour of per-second history.
        let unit = Projections::default().weight(None).full();
        assert!(unit > 100_000, "{unit}");

        // Room for the live state and about five checkpoints: every 10
        // events would make 200; the ones kept stay spread over the whole
        // log, the first (the state before any event) among them.
        let mut cps = Checkpoints::new(10, i64::MAX, 64).with_budget(unit * 6 + unit / 2);
        fill(&mut cps, None);
        assert!((3..=6).contains(&cps.len()), "{} kept", cps.len());
        assert_eq!(
            cps.dropped() as usize + cps.len(),
            201,
            "each let go is counted"
        );
        assert_eq!(cps.earliest_id(Some(1)), Some(0), "still reaches the start");
        let ids: Vec<u64> = cps.list.iter().map(|c| c.last_id).collect();
        let gaps: Vec<u64> = ids.windows(2).map(|w| w[1] - w[0]).collect();
        let (lo, hi) = (gaps.iter().min(), gaps.iter().max());
        assert!(
            hi.zip(lo).is_some_and(|(h, l)| *h <= 4 * l.max(&1) + 20),
            "spread out: {ids:?}"
        );

        // Less than the live state alone: one checkpoint, taken only when a
        // quarter of the log (100 events here) has gone by, not every 10.
        let mut tight = Checkpoints::new(10, i64::MAX, 64).with_budget(unit / 2);
        fill(&mut tight, Some(400));
        assert_eq!(tight.len(), 1);
        assert!(tight.dropped() <= 21, "{} let go", tight.dropped());
        assert!(
            tight.list[0].last_id >= 1_900,
            "the one kept is recent: {}",
            tight.list[0].last_id
        );
        // Weighed between checkpoints: the live state alone over the budget
        // says so (the hub then makes the live state take nothing new);
        // one grown past room for all checkpoints lets some go.
        assert!(tight.weigh_live(unit));
        // Room for the live state, not for it and a copy: full too.
        let mut one_and_a_half = Checkpoints::new(10, i64::MAX, 64).with_budget(unit * 3 / 2);
        fill(&mut one_and_a_half, Some(400));
        assert!(
            one_and_a_half.weigh_live(unit),
            "the live state fits, not beside a copy"
        );
        // Within an eighth of the budget with one checkpoint left: full
        // (room for what the live state still grows by), not below it.
        let mut one = Checkpoints::new(10, i64::MAX, 64).with_budget(unit * 4);
        assert!(!one.weigh_live(unit * 2), "3 of 4 units");
        assert!(one.weigh_live(unit * 5 / 2), "3.5 of 4 units");
        assert_eq!(one.len(), 1);
        assert!(!cps.weigh_live(unit));
        let held = cps.len();
        assert!(!cps.weigh_live(unit * 7 / 2));
        assert!(cps.len() < held, "{} of {held} kept", cps.len());
        let (l, h) = cps.bytes();
        assert!(l + h <= cps.budget());
    }

    #[test]
    fn a_costly_checkpoint_spaces_out_the_next_but_not_past_a_quarter_of_the_log() {
        let mut store = Store::new(64 << 20);
        let mut live = Projections::default();
        let mut cps = Checkpoints::new(100, i64::MAX, 1_000);
        for i in 0..150 {
            let id = store.append(&new_event(i, i as i64)).expect("kept");
            live.apply(&store.get(id).expect("held"));
        }
        let progress = |p: &Projections| (p.folded(), p.last_id(), p.last_ms());
        // 150 folded, every 100: due, and kept by a copy taking 5 ms.
        assert!(cps.due(progress(&live), 10_000));
        cps.keep(|| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            vec![live.clone()]
        });
        assert!(cps.spent() >= std::time::Duration::from_millis(5));
        for i in 150..300 {
            let id = store.append(&new_event(i, i as i64)).expect("kept");
            live.apply(&store.get(id).expect("held"));
        }
        // 150 more, past the spacing: not due for 20 x 5 ms ...
        assert!(!cps.due(progress(&live), 10_000), "spaced out by its cost");
        // ... unless the log is small enough that 150 events are a quarter
        // of it,
        assert!(cps.due(progress(&live), 600), "a quarter of the log");
        // and due once the time has passed (20 times the copy's).
        std::thread::sleep(cps.spent() * 21);
        assert!(cps.due(progress(&live), 10_000));
    }

    #[test]
    fn checkpoints_are_taken_by_count_and_pruned_with_the_log() {
        let mut store = Store::new(64 << 10);
        let mut live = Projections::default();
        let mut cps = Checkpoints::new(100, i64::MAX, 1_000);
        for i in 0..5_000 {
            if let Some(id) = store.append(&new_event(i, i as i64)) {
                live.apply(&store.get(id).expect("held"));
            }
            cps.after_fold(&live, store.stats().events);
            cps.prune(store.first_id());
        }
        let first = store.first_id().expect("held");
        assert!(first > 1, "the small cap evicted");
        // Every 100 events as asked, or every quarter of the log where
        // that is less (this log holds about 190); those the log no longer
        // reaches pruned, but for the one base left before it.
        let ids: Vec<u64> = cps.list.iter().map(|c| c.last_id).collect();
        assert!(ids.len() >= 2, "{ids:?}");
        assert!(
            ids.windows(2)
                .all(|w| (MIN_SPACING..=100).contains(&(w[1] - w[0]))),
            "{ids:?}"
        );
        let last = store.last_id().expect("held");
        assert!(
            ids[ids.len() - 1] + 100 > last,
            "the newest is recent: {ids:?}, {last}"
        );
        assert!(
            ids[0] < first && ids[1] >= first,
            "one base before the log: {ids:?} from {first}"
        );
        // From the earliest reachable event on, every state can be rebuilt;
        // before it, none (the events after the base were evicted).
        let earliest = cps
            .earliest_id(Some(first))
            .expect("one checkpoint is in the log");
        assert!(
            earliest + 1 >= first && earliest < first + 200,
            "{earliest} vs {first}"
        );
        for target in [
            earliest.max(first),
            earliest + 10,
            store.last_id().expect("held"),
        ] {
            let base = cps.base_for(target).expect("base");
            let state = fold_from(&store, &base, target).expect("reachable");
            assert_eq!(state.last_id(), Some(target));
        }
        if earliest > first {
            let base = cps.base_for(first).expect("base");
            assert!(fold_from(&store, &base, first).is_err());
        }
    }
}
