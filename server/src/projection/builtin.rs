//! The built-in projections (PRODUCT.md F4), folded together in one pass:
//! rates per subject / service / level, log counts per service and level,
//! metric statistics per series (count, sum, min, max, mean, p50/p90/p99
//! from a DDSketch with 1% relative accuracy), top-k error messages,
//! subjects and services, and a one-hour history of events per second.
//!
//! A pure fold over stored events: `apply` each [`EventRef`] in id order,
//! then ask for any projection over any [`Window`] as of a moment. Keys are
//! the store's interned ids; names are looked up in the store when a
//! snapshot is made. `Clone` is what checkpoints for time travel are made
//! of.

use super::cqrs::CqrsPair;
use super::custom::{Custom, ProjectionDef};
use super::flows::{FlowRules, Flows};
use super::topology::Topology;
use super::weight::{self, Weight};
use super::window::{MultiRes, Ring, absorb_map, add_u32};
use crate::ingest::consumers::SharedConsumers;
use crate::ingest::decode::Level;
use crate::store::intern::{NONE, OVERFLOW};
use crate::store::{EventRef, Store};
use app::api::{
    KeyedRate, MetricStats, ProjectionBody, ProjectionInfo, Rate, ServiceLevels, TopItem, Window,
};
use foldhash::HashMap;
use sketches_ddsketch::{Config as SketchConfig, DDSketch};
use std::collections::BTreeMap;

/// Items in a top-k list.
pub const TOP_K: usize = 10;
/// Seconds of per-second history kept.
const HISTORY_SECS: usize = 3_600;
/// Metric series tracked (the store's series dictionary bounds it too).
const MAX_SERIES: usize = 1_000;
/// Keys each counter table (per subject, service, service and level, error
/// message) holds at most, as many as a log dictionary: past it a new key
/// counts under the dictionary's overflow id, read "(overflow)".
pub const MAX_KEYS: usize = 10_000;
/// Keys (and metric series) with nothing newer than this are let go, once
/// a minute of received time: nothing of theirs is in any window.
const KEEP_MS: i64 = 3_600_000 + 60_000;

/// Counts one event at `t` under `key`, or under `overflow` when the
/// table holds [`MAX_KEYS`] others or the state is at its byte budget
/// (`full`); whether `key` was taken.
fn count<K: Eq + std::hash::Hash>(
    map: &mut HashMap<K, MultiRes<u32>>,
    key: K,
    overflow: K,
    t: i64,
    full: bool,
) -> bool {
    if let Some(m) = map.get_mut(&key) {
        m.incr(t);
        return true;
    }
    let fits = map.len() < MAX_KEYS && !full;
    map.entry(if fits { key } else { overflow })
        .or_default()
        .incr(t);
    fits
}

/// The sketch settings: 1% relative accuracy.
fn sketch_config() -> SketchConfig {
    SketchConfig::new(0.01, 2_048, 1.0e-9)
}

/// Every built-in projection, with a description.
pub fn builtin_catalogue() -> Vec<ProjectionInfo> {
    [
        ("rates", "events and events/s per subject, service and level, over a window"),
        ("log_levels", "log events per service and level, over a window"),
        ("metrics", "per metric series: count, sum, min, max, mean, p50, p90, p99 (1% relative error), over a window"),
        ("top_errors", "the most frequent error (and fatal) log messages, over a window"),
        ("top_subjects", "the busiest subjects, over a window"),
        ("top_services", "the busiest services, over a window"),
        ("rate_history", "events per second, one bucket a second for the last hour, in all and per level"),
        ("cqrs", "per configured CQRS pair: commands, events and read-model updates per second, and the lag from a command to its read-model update (p50, p99, max), over a window"),
        ("topology", "services and subjects as a graph inferred from traffic (publishes, and consumes from flows' causation), with events per edge, over a window"),
        ("topology_all", "the topology with logs and metrics included"),
        ("flows", "events grouped by correlation id: started, completed, compensated, stalled and running flows, and the most recent, over a window"),
    ]
    .into_iter()
    .map(|(name, description)| ProjectionInfo {
        name: name.to_string(),
        description: description.to_string(),
        window: None,
    })
    .collect()
}

/// The built-ins and the user-defined projections of `defs`.
pub fn catalogue(defs: &[ProjectionDef]) -> Vec<ProjectionInfo> {
    let mut all = builtin_catalogue();
    all.extend(defs.iter().map(|d| ProjectionInfo {
        name: d.name.clone(),
        description: format!(
            "user-defined: {} of {} on {}{}{}, default window {}",
            match d.aggregate {
                super::custom::Aggregate::Count => "count",
                super::custom::Aggregate::Rate => "rate",
                super::custom::Aggregate::Sum => "sum",
                super::custom::Aggregate::Min => "min",
                super::custom::Aggregate::Max => "max",
                super::custom::Aggregate::Mean => "mean",
                super::custom::Aggregate::Quantiles => "quantiles",
                super::custom::Aggregate::Distinct => "distinct count",
                super::custom::Aggregate::Total => "running total",
            },
            d.field.as_deref().unwrap_or("events"),
            d.subject,
            if d.predicates.is_empty() {
                String::new()
            } else {
                format!(" where {}", d.predicates.join(" and "))
            },
            d.group_by
                .as_ref()
                .map(|g| format!(" by {g}"))
                .unwrap_or_default(),
            d.window,
        ),
        window: Some(d.default_window()),
    }));
    all
}

/// Samples of one metric series in one time bucket.
#[derive(Clone)]
pub(crate) struct Agg {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    sketch: DDSketch,
}

impl std::fmt::Debug for Agg {
    // DDSketch has no Debug; its count and range say enough.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agg")
            .field("count", &self.count)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Agg {
    /// Samples in the bucket(s).
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Sum, min, max and mean.
    pub(crate) fn stats(&self) -> (f64, f64, f64, f64) {
        (
            self.sum,
            self.min,
            self.max,
            self.sum / self.count.max(1) as f64,
        )
    }

    /// Quantile `q` (1% relative accuracy).
    pub(crate) fn quantile(&self, q: f64) -> f64 {
        self.sketch.quantile(q).ok().flatten().unwrap_or(0.0)
    }

    fn new() -> Self {
        Agg {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sketch: DDSketch::new(sketch_config()),
        }
    }

    /// Bytes it holds: itself and its sketch's bins.
    fn bytes(&self) -> usize {
        std::mem::size_of::<Agg>() + self.sketch.length() * std::mem::size_of::<u64>()
    }

    /// Adds a sample; with `full` (the projections at their byte budget),
    /// one outside the bucket's range goes into the sketch at the nearest
    /// end of it instead, as a wider range would take more bins (up to
    /// 2,048 per store): count, sum, min and max stay exact, the quantiles
    /// lose its place. `false` then.
    fn add(&mut self, v: f64, full: bool) -> bool {
        // (The sketch's own range: past samples may have been put at its ends.)
        let range = self.sketch.min().zip(self.sketch.max());
        let inside = range.is_none_or(|(lo, hi)| lo <= v && v <= hi);
        let at = match range {
            Some((lo, hi)) if full && !inside => v.clamp(lo, hi),
            _ => v,
        };
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sketch.add(at);
        !full || inside
    }

    fn merge(&mut self, o: &Agg) {
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        // Same config on both sides: merge cannot fail.
        let _ = self.sketch.merge(&o.sketch);
    }
}

/// One metric series: 1 s buckets for the last minute, 60 s buckets for the
/// last hour. Buckets are allocated only when a sample lands in them, and
/// shared (`Arc`) with the time-travel checkpoints taken since they last
/// changed: a checkpoint copies no sketch, and a sample copies at most the
/// one sketch it lands in, once. (Copied whole, 1,000 series' sketches made
/// each checkpoint tens of MiB.)
#[derive(Clone, Debug)]
pub(crate) struct Series {
    fine: Ring<Option<std::sync::Arc<Agg>>>,
    coarse: Ring<Option<std::sync::Arc<Agg>>>,
}

impl Default for Series {
    fn default() -> Self {
        Series {
            fine: Ring::new(1_000, 60),
            coarse: Ring::new(60_000, 60),
        }
    }
}

impl Series {
    /// Adds a sample; with `full` (the projections at their byte budget),
    /// only to buckets that already exist, and within their sketches'
    /// range ([`Agg::add`]): `false` if a ring had no bucket for it (the
    /// sample is then missing from that ring's windows) or its sketch
    /// took it at the end of its range.
    pub(crate) fn add(&mut self, t_ms: i64, v: f64, full: bool) -> bool {
        let mut taken = true;
        for ring in [&mut self.fine, &mut self.coarse] {
            if let Some(slot) = ring.slot_mut(t_ms) {
                if full && slot.is_none() {
                    taken = false;
                    continue;
                }
                taken &= std::sync::Arc::make_mut(
                    slot.get_or_insert_with(|| std::sync::Arc::new(Agg::new())),
                )
                .add(v, full);
            }
        }
        taken
    }

    /// Adds `other`'s buckets into this series' ([`Ring::absorb`]).
    pub(crate) fn absorb(&mut self, other: &Series) {
        fn add(a: &mut Option<std::sync::Arc<Agg>>, b: &Option<std::sync::Arc<Agg>>) {
            match (a.as_mut(), b) {
                (_, None) => {}
                (None, Some(b)) => *a = Some(std::sync::Arc::clone(b)),
                (Some(a), Some(b)) => std::sync::Arc::make_mut(a).merge(b),
            }
        }
        self.fine.absorb(&other.fine, add);
        self.coarse.absorb(&other.coarse, add);
    }

    /// The ring that covers `window`: by the second up to a minute, by the
    /// minute past it.
    fn ring(&self, window: Window) -> &Ring<Option<std::sync::Arc<Agg>>> {
        match window {
            Window::S1 | Window::S10 | Window::M1 => &self.fine,
            Window::M15 | Window::H1 => &self.coarse,
        }
    }

    /// Its weight beside `prev`, the same series in the state before
    /// (sketches still shared with it are counted as shared).
    pub(crate) fn weight(&self, prev: Option<&Series>) -> Weight {
        let mut w = Weight::own(self.fine.slot_bytes() + self.coarse.slot_bytes());
        let rings = [
            (&self.fine, prev.map(|p| &p.fine)),
            (&self.coarse, prev.map(|p| &p.coarse)),
        ];
        for (ring, before) in rings {
            for (i, slot) in ring.slots().iter().enumerate() {
                if let Some(agg) = slot {
                    let was = before
                        .and_then(|b| b.slots().get(i))
                        .and_then(Option::as_ref);
                    w += weight::arc(agg, was, || agg.bytes());
                }
            }
        }
        w
    }

    /// Where its newest bucket starts.
    pub(crate) fn newest_ms(&self) -> i64 {
        self.coarse.newest_ms()
    }

    pub(crate) fn window(&self, now_ms: i64, window: Window) -> Option<Agg> {
        let ring = self.ring(window);
        let mut out: Option<Agg> = None;
        for (_, slot) in ring.window(now_ms, window.ms()) {
            if let Some(agg) = slot {
                match &mut out {
                    Some(o) => o.merge(agg),
                    None => out = Some((**agg).clone()),
                }
            }
        }
        out.filter(|a| a.count > 0)
    }
}

/// All built-in projections' state.
#[derive(Clone, Debug)]
pub struct Projections {
    folded: u64,
    last_id: Option<u64>,
    last_ms: i64,
    total: MultiRes<u32>,
    history: Ring<u32>,
    levels: [MultiRes<u32>; 6],
    level_history: [Ring<u32>; 6],
    subjects: HashMap<u32, MultiRes<u32>>,
    services: HashMap<u32, MultiRes<u32>>,
    service_levels: HashMap<(u32, u8), MultiRes<u32>>,
    errors: HashMap<u32, MultiRes<u32>>,
    metrics: HashMap<u32, Series>,
    series_overflow: u64,
    /// At the byte budget (`--projection-bytes`): no new keys (subjects,
    /// services, error texts), metric series, sketch buckets or
    /// user-defined groups until the state shrinks.
    full: bool,
    /// Samples and values left out for the budget.
    refused: u64,
    /// Events counted under "(overflow)" in a full counter table.
    keys_overflow: u64,
    /// When keys with nothing in any window were last let go.
    aged_ms: i64,
    custom: Vec<Custom>,
    flows: Flows,
    topology: Topology,
    /// JetStream consumers as last polled (live state, for the topology).
    consumers: Option<SharedConsumers>,
    cqrs: std::sync::Arc<[CqrsPair]>,
}

impl Default for Projections {
    fn default() -> Self {
        Projections {
            folded: 0,
            last_id: None,
            last_ms: i64::MIN,
            total: MultiRes::default(),
            history: Ring::new(1_000, HISTORY_SECS),
            levels: Default::default(),
            level_history: std::array::from_fn(|_| Ring::new(1_000, HISTORY_SECS)),
            subjects: HashMap::default(),
            services: HashMap::default(),
            service_levels: HashMap::default(),
            errors: HashMap::default(),
            metrics: HashMap::default(),
            series_overflow: 0,
            full: false,
            refused: 0,
            keys_overflow: 0,
            aged_ms: i64::MIN,
            custom: Vec::new(),
            flows: Flows::default(),
            topology: Topology::default(),
            consumers: None,
            cqrs: std::sync::Arc::new([]),
        }
    }
}

fn bump(ring: &mut Ring<u32>, t_ms: i64) {
    if let Some(c) = ring.slot_mut(t_ms) {
        *c = c.saturating_add(1);
    }
}

fn per_sec(count: u64, window: Window) -> f64 {
    count as f64 * 1_000.0 / window.ms() as f64
}

fn keyed_rates(
    map: &HashMap<u32, MultiRes<u32>>,
    name: impl Fn(u32) -> Option<String>,
    now_ms: i64,
    window: Window,
) -> Vec<KeyedRate> {
    let mut out: Vec<KeyedRate> = map
        .iter()
        .filter_map(|(id, m)| {
            let count = m.sum(now_ms, window);
            (count > 0).then(|| KeyedRate {
                key: name(*id).unwrap_or_default(),
                rate: Rate {
                    count,
                    per_sec: per_sec(count, window),
                },
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.rate
            .count
            .cmp(&a.rate.count)
            .then_with(|| a.key.cmp(&b.key))
    });
    out
}

fn top_k(items: Vec<KeyedRate>) -> ProjectionBody {
    ProjectionBody::TopK {
        items: items
            .into_iter()
            .take(TOP_K)
            .map(|k| TopItem {
                key: k.key,
                count: k.rate.count,
            })
            .collect(),
    }
}

impl Projections {
    /// The built-ins and the user-defined projections `defs` (validated).
    pub fn with_custom(defs: &[ProjectionDef]) -> Self {
        Projections {
            custom: defs.iter().cloned().map(Custom::new).collect(),
            ..Projections::default()
        }
    }

    /// The same, with flows read by `rules`.
    pub fn with_flow_rules(mut self, rules: FlowRules) -> Self {
        self.flows = Flows::new(rules);
        self
    }

    /// The same, showing the JetStream consumers `table` holds in the
    /// topology.
    pub fn with_consumers(mut self, table: SharedConsumers) -> Self {
        self.consumers = Some(table);
        self
    }

    /// The same, watching these CQRS pairs.
    pub fn with_cqrs(mut self, pairs: Vec<CqrsPair>) -> Self {
        self.cqrs = pairs.into();
        self
    }

    /// Events over `window` as of `now_ms` on the subjects `takes` takes.
    pub fn subject_count(&self, takes: impl Fn(u32) -> bool, window: Window, now_ms: i64) -> u64 {
        self.subjects
            .iter()
            .filter(|(id, _)| takes(**id))
            .map(|(_, m)| m.sum(now_ms, window))
            .sum()
    }

    /// The flows (events grouped by correlation id).
    pub fn flows(&self) -> &Flows {
        &self.flows
    }

    /// Folds one stored event in. Events must come in id order.
    pub fn apply(&mut self, e: &EventRef<'_>) {
        for c in &mut self.custom {
            if !c.apply(e, self.full) {
                self.refused += 1;
            }
        }
        let link = self.flows.apply(e);
        self.topology.apply(e, link.caused_by, link.starts);
        let t = e.received_ms();
        self.folded += 1;
        self.last_id = Some(e.id);
        self.last_ms = t;
        self.total.incr(t);
        bump(&mut self.history, t);
        if t.saturating_sub(self.aged_ms) >= 60_000 {
            self.age_out(t);
        }
        let full = self.full;
        let mut taken = count(&mut self.subjects, e.subject_id(), OVERFLOW, t, full);
        let service = e.service_id();
        if service != NONE {
            taken &= count(&mut self.services, service, OVERFLOW, t, full);
        }
        if let Some(level) = e.level() {
            let l = level as usize;
            self.levels[l].incr(t);
            bump(&mut self.level_history[l], t);
            if service != NONE {
                let key = (service, level as u8);
                taken &= count(
                    &mut self.service_levels,
                    key,
                    (OVERFLOW, level as u8),
                    t,
                    full,
                );
            }
            if level >= Level::Error && e.message_id() != NONE {
                taken &= count(&mut self.errors, e.message_id(), OVERFLOW, t, full);
            }
        }
        self.keys_overflow += u64::from(!taken);
        for sample in e.samples() {
            if !self.metrics.contains_key(&sample.series_id) {
                if self.full {
                    self.refused += 1;
                    continue;
                }
                if self.metrics.len() >= MAX_SERIES {
                    self.series_overflow += 1;
                    continue;
                }
            }
            let full = self.full;
            if !self
                .metrics
                .entry(sample.series_id)
                .or_default()
                .add(t, sample.value, full)
            {
                self.refused += 1;
            }
        }
    }

    /// Adds what `other` folded into this state, as if this one had folded
    /// `other`'s events too: the merge of partitions (docs/DESIGN.md,
    /// "Partitions"). Counts and rates are summed bucket by bucket, sketches
    /// merged (exactly: same buckets), flows and requests joined (their
    /// keys are disjoint across partitions). Exact while no cap is reached
    /// and `other` folded events this state did not; past a cap each
    /// partition keeps its own share and counts its own overflow.
    pub fn absorb(&mut self, other: &Projections) {
        self.folded += other.folded;
        self.last_id = self.last_id.max(other.last_id);
        self.last_ms = self.last_ms.max(other.last_ms);
        self.total.absorb(&other.total, add_u32);
        self.history.absorb(&other.history, add_u32);
        for (mine, theirs) in self.levels.iter_mut().zip(&other.levels) {
            mine.absorb(theirs, add_u32);
        }
        for (mine, theirs) in self.level_history.iter_mut().zip(&other.level_history) {
            mine.absorb(theirs, add_u32);
        }
        absorb_map(&mut self.subjects, &other.subjects, add_u32);
        absorb_map(&mut self.services, &other.services, add_u32);
        absorb_map(&mut self.service_levels, &other.service_levels, add_u32);
        absorb_map(&mut self.errors, &other.errors, add_u32);
        for (id, series) in &other.metrics {
            match self.metrics.get_mut(id) {
                Some(mine) => mine.absorb(series),
                None => {
                    self.metrics.insert(*id, series.clone());
                }
            }
        }
        self.series_overflow += other.series_overflow;
        self.refused += other.refused;
        self.keys_overflow += other.keys_overflow;
        for (mine, theirs) in self.custom.iter_mut().zip(&other.custom) {
            mine.absorb(theirs);
        }
        self.flows.absorb(&other.flows);
        self.topology.absorb(&other.topology);
    }

    /// One state from the states of partitions (`parts` not empty).
    pub fn merged(parts: &[Projections]) -> Projections {
        let mut out = parts[0].clone();
        for p in &parts[1..] {
            out.absorb(p);
        }
        out
    }

    /// What this state weighs in memory, beside `prev`, the state it was
    /// copied after (a checkpoint's predecessor; `None`: all its own).
    pub fn weight(&self, prev: Option<&Projections>) -> Weight {
        let counters = |m: &HashMap<_, MultiRes<u32>>| {
            weight::map(m) + m.len() * MultiRes::<u32>::bucket_bytes()
        };
        let mut w = Weight::own(
            self.total.slot_bytes()
                + self.history.slot_bytes()
                + self.levels.iter().map(MultiRes::slot_bytes).sum::<usize>()
                + self
                    .level_history
                    .iter()
                    .map(Ring::slot_bytes)
                    .sum::<usize>()
                + counters(&self.subjects)
                + counters(&self.services)
                + weight::map(&self.service_levels)
                + self.service_levels.len() * MultiRes::<u32>::bucket_bytes()
                + counters(&self.errors)
                + weight::map(&self.metrics),
        );
        for (id, series) in &self.metrics {
            w += series.weight(prev.and_then(|p| p.metrics.get(id)));
        }
        for (i, c) in self.custom.iter().enumerate() {
            w += c.weight(prev.and_then(|p| p.custom.get(i)));
        }
        w += self.flows.weight(prev.map(|p| &p.flows));
        w += self.topology.weight();
        w
    }

    /// Lets go of the keys and metric series with nothing newer than
    /// [`KEEP_MS`] before `t` (in no window any more), so that new ones
    /// find room after a burst of one-off keys.
    fn age_out(&mut self, t: i64) {
        self.aged_ms = t;
        let since = t.saturating_sub(KEEP_MS);
        self.subjects.retain(|_, m| m.newest_ms() >= since);
        self.services.retain(|_, m| m.newest_ms() >= since);
        self.service_levels.retain(|_, m| m.newest_ms() >= since);
        self.errors.retain(|_, m| m.newest_ms() >= since);
        self.metrics.retain(|_, s| s.newest_ms() >= since);
        self.topology.age_out(since);
    }

    /// Marks the state as at its byte budget, or no longer
    /// ([`Projections::apply`] then takes no new keys, series, sketch
    /// buckets or groups).
    pub fn set_full(&mut self, full: bool) {
        self.full = full;
    }

    /// What was left out: metric samples of series past the 1,000
    /// tracked; samples and user-defined projections' values for the
    /// budget (or a distinct-count bucket's cap); events counted under
    /// "(overflow)" in a counter table at [`MAX_KEYS`].
    pub fn left_out(&self) -> (u64, u64, u64) {
        (self.series_overflow, self.refused, self.keys_overflow)
    }

    /// Events folded so far.
    pub fn folded(&self) -> u64 {
        self.folded
    }

    /// The samples of every metric series `filter` takes, merged per
    /// bucket over `window` as of `now_ms` (buckets of a second up to a
    /// minute, of a minute past it): the bucket width and the buckets with
    /// samples, oldest first.
    pub fn metric_history(
        &self,
        store: &Store,
        filter: &app::api::MetricFilter,
        window: Window,
        now_ms: i64,
    ) -> (i64, Vec<app::api::MetricPoint>) {
        let step = if window.ms() <= 60_000 { 1_000 } else { 60_000 };
        let mut merged: BTreeMap<i64, Agg> = BTreeMap::new();
        for (id, series) in &self.metrics {
            if !store.series().name(*id).is_some_and(|n| filter.matches(n)) {
                continue;
            }
            for (start, slot) in series.ring(window).window(now_ms, window.ms()) {
                if let Some(agg) = slot {
                    match merged.get_mut(&start) {
                        Some(m) => m.merge(agg),
                        None => {
                            merged.insert(start, (**agg).clone());
                        }
                    }
                }
            }
        }
        let points = merged
            .into_iter()
            .filter(|(_, a)| a.count > 0)
            .map(|(t_ms, a)| app::api::MetricPoint {
                t_ms,
                count: a.count,
                p50: a.quantile(0.5),
                p90: a.quantile(0.9),
                p99: a.quantile(0.99),
            })
            .collect();
        (step, points)
    }

    /// Id of the last event folded.
    pub fn last_id(&self) -> Option<u64> {
        self.last_id
    }

    /// Received time of the last event folded (`i64::MIN` before any).
    pub fn last_ms(&self) -> i64 {
        self.last_ms
    }

    /// Projection `name` over `window` as of `now_ms`; `None` for an
    /// unknown name. Names of keys come from `store`'s dictionaries.
    pub fn snapshot(
        &self,
        store: &Store,
        name: &str,
        window: Window,
        now_ms: i64,
    ) -> Option<ProjectionBody> {
        let subject = |id: u32| store.subjects().name(id).map(str::to_string);
        let service = |id: u32| store.services().name(id).map(str::to_string);
        Some(match name {
            "rates" => {
                let count = self.total.sum(now_ms, window);
                ProjectionBody::Rates {
                    total: Rate {
                        count,
                        per_sec: per_sec(count, window),
                    },
                    subjects: keyed_rates(&self.subjects, subject, now_ms, window),
                    services: keyed_rates(&self.services, service, now_ms, window),
                    levels: Level::ALL
                        .iter()
                        .filter_map(|l| {
                            let count = self.levels[*l as usize].sum(now_ms, window);
                            (count > 0).then(|| KeyedRate {
                                key: l.as_str().to_string(),
                                rate: Rate {
                                    count,
                                    per_sec: per_sec(count, window),
                                },
                            })
                        })
                        .collect(),
                }
            }
            "log_levels" => {
                let mut totals = BTreeMap::new();
                for l in Level::ALL {
                    let c = self.levels[l as usize].sum(now_ms, window);
                    if c > 0 {
                        totals.insert(l.as_str().to_string(), c);
                    }
                }
                let mut by_service: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
                for ((svc, l), m) in &self.service_levels {
                    let c = m.sum(now_ms, window);
                    if c > 0 {
                        by_service
                            .entry(service(*svc).unwrap_or_default())
                            .or_default()
                            .insert(Level::ALL[*l as usize].as_str().to_string(), c);
                    }
                }
                ProjectionBody::LogLevels {
                    totals,
                    services: by_service
                        .into_iter()
                        .map(|(service, levels)| ServiceLevels { service, levels })
                        .collect(),
                }
            }
            "metrics" => {
                let mut series: Vec<MetricStats> = self
                    .metrics
                    .iter()
                    .filter_map(|(id, s)| {
                        let agg = s.window(now_ms, window)?;
                        let q = |p: f64| agg.sketch.quantile(p).ok().flatten().unwrap_or(0.0);
                        Some(MetricStats {
                            series: store.series().name(*id).unwrap_or_default().to_string(),
                            count: agg.count,
                            sum: agg.sum,
                            min: agg.min,
                            max: agg.max,
                            mean: agg.sum / agg.count as f64,
                            p50: q(0.5),
                            p90: q(0.9),
                            p99: q(0.99),
                        })
                    })
                    .collect();
                series.sort_by(|a, b| a.series.cmp(&b.series));
                ProjectionBody::Metrics { series }
            }
            "top_errors" => top_k(keyed_rates(
                &self.errors,
                |id| store.messages().name(id).map(str::to_string),
                now_ms,
                window,
            )),
            "top_subjects" => top_k(keyed_rates(&self.subjects, subject, now_ms, window)),
            "top_services" => top_k(keyed_rates(&self.services, service, now_ms, window)),
            "rate_history" => {
                let dense = |ring: &Ring<u32>| -> Vec<u64> {
                    let mut v = vec![0u64; HISTORY_SECS];
                    let first = (now_ms.div_euclid(1_000) - HISTORY_SECS as i64 + 1) * 1_000;
                    for (start, c) in ring.window(now_ms, HISTORY_SECS as i64 * 1_000) {
                        let i = ((start - first) / 1_000) as usize;
                        if let Some(slot) = v.get_mut(i) {
                            *slot = u64::from(*c);
                        }
                    }
                    v
                };
                let mut levels = BTreeMap::new();
                for l in Level::ALL {
                    let v = dense(&self.level_history[l as usize]);
                    if v.iter().any(|c| *c > 0) {
                        levels.insert(l.as_str().to_string(), v);
                    }
                }
                ProjectionBody::RateHistory {
                    start_ms: (now_ms.div_euclid(1_000) - HISTORY_SECS as i64 + 1) * 1_000,
                    step_ms: 1_000,
                    total: dense(&self.history),
                    levels,
                }
            }
            "flows" => self.flows.snapshot(store, window, now_ms),
            "topology" | "topology_all" => {
                let table = self.consumers.as_ref().map(|t| t.read().clone());
                self.topology.snapshot(
                    store,
                    window,
                    now_ms,
                    name == "topology_all",
                    table.as_ref(),
                )
            }
            "cqrs" => super::cqrs::snapshot(self, store, &self.cqrs, window, now_ms),
            other => {
                return self
                    .custom
                    .iter()
                    .find(|c| c.def().name == other)
                    .map(|c| c.snapshot(window, now_ms));
            }
        })
    }
}

#[cfg(test)]
mod tests;
