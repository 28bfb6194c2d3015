//! Flows (PRODUCT.md F8): events that share a correlation id, followed as
//! one saga or request across subjects and services. A pure fold like the
//! other projections, so time travel rebuilds it too.
//!
//! What a step means comes from its subject, by rules a user can set
//! (`[flows]` in the config file): a subject with a *completion* word
//! (`orders.completed`) finishes the flow, one with a *compensation* word
//! (`payments.refunded`, `orders.cancelled`) marks it compensated, and a
//! flow with no step for longer than the stall timeout, unfinished, is
//! stalled. A rule with a `.`, `*` or `>` is a subject pattern instead of a
//! word. Nothing here knows the demo's subjects.
//!
//! Bounded: the newest [`MAX_FLOWS`] flows are tracked (older ones are
//! forgotten and counted), each with its first [`MAX_STEPS`] steps.

use super::weight::{self, Weight};
use super::window::MultiRes;
use crate::event::subject_matches;
use crate::store::intern::NONE;
use crate::store::{EventRef, Store};
use app::api::{FlowCounts, FlowDetail, FlowStatus, FlowStep, FlowSummary, ProjectionBody, Window};
use foldhash::HashMap;
use std::collections::VecDeque;
use std::sync::Arc;

/// Flows tracked at once.
pub const MAX_FLOWS: usize = 5_000;
/// Steps kept per flow (more are counted).
pub const MAX_STEPS: usize = 64;
/// Flows listed in the projection.
const LISTED: usize = 200;

/// Words that finish a flow, by default.
pub const COMPLETE_WORDS: [&str; 6] = [
    "completed",
    "complete",
    "done",
    "succeeded",
    "fulfilled",
    "finished",
];
/// Words that mark a compensation, by default.
pub const COMPENSATE_WORDS: [&str; 9] = [
    "compensated",
    "compensation",
    "refunded",
    "cancelled",
    "canceled",
    "released",
    "reverted",
    "rolled_back",
    "rolledback",
];
/// Default stall timeout.
pub const STALL_MS: i64 = 30_000;

/// How steps are read (the `[flows]` config section).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowRules {
    /// Words (or subject patterns) of steps that complete a flow.
    pub complete: Vec<String>,
    /// Words (or subject patterns) of compensation steps.
    pub compensate: Vec<String>,
    /// A flow with no step for this long, unfinished, is stalled
    /// (`30s`, `2m`, `500ms`).
    #[serde(deserialize_with = "duration")]
    pub stall_after: std::time::Duration,
}

impl Default for FlowRules {
    fn default() -> Self {
        FlowRules {
            complete: COMPLETE_WORDS.iter().map(|w| w.to_string()).collect(),
            compensate: COMPENSATE_WORDS.iter().map(|w| w.to_string()).collect(),
            stall_after: std::time::Duration::from_millis(STALL_MS as u64),
        }
    }
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "{text:?} is not a duration such as 30s or 2m ({e})"
        ))
    })
}

/// One list of rules, made ready to match: words (lowercase, with a mask
/// of their lengths, so most tokens are told apart by length alone) and
/// subject patterns.
#[derive(Clone, Debug, Default)]
struct Matcher {
    words: Vec<String>,
    /// Bit `n` set: some word is `n` bytes long (`n` < 64).
    lengths: u64,
    /// Words 64 bytes or longer (compared whatever the token's length).
    long_words: bool,
    patterns: Vec<String>,
}

impl Matcher {
    fn new(rules: &[String]) -> Matcher {
        let mut m = Matcher::default();
        for rule in rules {
            if rule.contains(['.', '*', '>']) {
                m.patterns.push(rule.clone());
            } else {
                if rule.len() < 64 {
                    m.lengths |= 1 << rule.len();
                } else {
                    m.long_words = true;
                }
                m.words.push(rule.to_ascii_lowercase());
            }
        }
        m
    }

    /// Whether a word matches a whole token of `subject`, or a pattern the
    /// whole subject.
    fn matches(&self, subject: &str) -> bool {
        if self.patterns.iter().any(|p| subject_matches(p, subject)) {
            return true;
        }
        if self.words.is_empty() {
            return false;
        }
        subject.split('.').any(|token| {
            let by_length = if token.len() < 64 {
                self.lengths & (1 << token.len()) != 0
            } else {
                self.long_words
            };
            by_length && self.words.iter().any(|w| token.eq_ignore_ascii_case(w))
        })
    }
}

/// [`FlowRules`] made ready to match (as the fold uses them).
#[derive(Clone, Debug, Default)]
struct RoleMatcher {
    compensate: Matcher,
    complete: Matcher,
}

impl RoleMatcher {
    fn new(rules: &FlowRules) -> RoleMatcher {
        RoleMatcher {
            compensate: Matcher::new(&rules.compensate),
            complete: Matcher::new(&rules.complete),
        }
    }

    fn role(&self, subject: &str) -> Role {
        if self.compensate.matches(subject) {
            Role::Compensation
        } else if self.complete.matches(subject) {
            Role::Completion
        } else {
            Role::Step
        }
    }
}

impl FlowRules {
    /// What a step on `subject` means: a compensation if a compensation
    /// rule matches, else a completion if a completion rule does. A word
    /// matches a whole token of the subject, whatever its case; a rule
    /// with `.`, `*` or `>` is a subject pattern.
    pub fn role(&self, subject: &str) -> Role {
        RoleMatcher::new(self).role(subject)
    }

    fn stall_ms(&self) -> i64 {
        i64::try_from(self.stall_after.as_millis()).unwrap_or(i64::MAX)
    }
}

/// What a step does to its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// An ordinary step.
    Step,
    /// It completes the flow.
    Completion,
    /// It undoes part of the flow.
    Compensation,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Step => "step",
            Role::Completion => "completion",
            Role::Compensation => "compensation",
        }
    }
}

/// Headers naming the message that caused a step.
pub const CAUSATION_HEADERS: [&str; 3] = ["Causation-Id", "Nats-Causation-Id", "X-Causation-Id"];

/// A message id's hash, to match a `Causation-Id` with the step it names
/// (the same in every fold of this process: live and time travel agree).
fn hash(s: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x6576_656e_7473_636f).hash_one(s)
}

/// A log line (it has a level) or a metric sample, as opposed to a domain
/// event: telemetry is never taken as a flow's cause or drawn in the
/// topology by default.
pub fn is_telemetry(e: &EventRef<'_>) -> bool {
    match e.kind() {
        crate::ingest::decode::Kind::Metric => true,
        crate::ingest::decode::Kind::Log => e.level().is_some(),
        crate::ingest::decode::Kind::Raw => false,
    }
}

/// What folding a step tells the topology.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepLink {
    /// It is a flow's first step.
    pub starts: bool,
    /// The subject of the step that caused it, if known.
    pub caused_by: Option<u32>,
}

#[derive(Clone, Debug)]
struct Step {
    id: u64,
    /// Hash of its `Nats-Msg-Id` (0: none).
    msg: u64,
    /// A log or metric event (never a cause).
    telemetry: bool,
    t_ms: i64,
    subject: u32,
    service: u32,
    level: Option<crate::ingest::decode::Level>,
    role: Role,
    /// 1 + the index of the step that caused it (0: none known).
    cause: u16,
}

#[derive(Clone, Debug)]
struct Flow {
    started_ms: i64,
    last_ms: i64,
    /// Shared with the checkpoints taken since it last changed.
    steps: Arc<Vec<Step>>,
    dropped: u32,
    errors: u32,
    completed_ms: Option<i64>,
    compensated_ms: Option<i64>,
}

/// A step's subject: its event's own while the log holds it (a reply
/// inbox's, not only its group `_INBOX.>`), else its subject id's name.
fn step_subject(store: &Store, s: &Step) -> String {
    match store.get(s.id) {
        Some(e) => e.subject().to_string(),
        None => store.subjects().name(s.subject).unwrap_or("").to_string(),
    }
}

impl Flow {
    fn status(&self, now_ms: i64, stall_ms: i64) -> FlowStatus {
        if self.compensated_ms.is_some() {
            FlowStatus::Compensated
        } else if self.completed_ms.is_some() {
            FlowStatus::Completed
        } else if now_ms - self.last_ms >= stall_ms {
            FlowStatus::Stalled
        } else {
            FlowStatus::Running
        }
    }

    fn summary(&self, id: &str, store: &Store, now_ms: i64, stall_ms: i64) -> FlowSummary {
        let subject = |s: &Step| step_subject(store, s);
        let status = self.status(now_ms, stall_ms);
        // Where it stopped: the last domain event (not a log line) before
        // the first compensation, or the last one of a stalled flow.
        let stopped_at = match status {
            FlowStatus::Compensated => {
                let first_comp = self
                    .steps
                    .iter()
                    .position(|s| s.role == Role::Compensation)
                    .unwrap_or(self.steps.len());
                let before = &self.steps[..first_comp];
                before
                    .iter()
                    .rev()
                    .find(|s| !s.telemetry)
                    .or(before.last())
                    .map(subject)
            }
            FlowStatus::Stalled => self
                .steps
                .iter()
                .rev()
                .find(|s| !s.telemetry)
                .or(self.steps.last())
                .map(subject),
            _ => None,
        };
        let mut services: Vec<String> = Vec::new();
        for s in self.steps.iter() {
            if let Some(name) = store.services().name(s.service)
                && !services.iter().any(|x| x == name)
            {
                services.push(name.to_string());
            }
        }
        FlowSummary {
            id: id.to_string(),
            status,
            started_ms: self.started_ms,
            last_ms: self.last_ms,
            steps: (self.steps.len() as u32).saturating_add(self.dropped),
            errors: self.errors,
            first_subject: self.steps.first().map(subject).unwrap_or_default(),
            last_subject: self.steps.last().map(subject).unwrap_or_default(),
            stopped_at,
            services,
        }
    }
}

/// The flows projection's state. A flow's steps are shared (`Arc`):
/// cloning the state for a time-travel checkpoint copies the map of flows
/// (5,000 at most: about 0.3 ms) but no steps, and a step added later
/// copies that one flow's steps once. (A persistent map, `imbl`, shared the
/// map too, but cost 0.5 µs an event on busy traffic, where every flow is
/// new between two checkpoints anyway: nothing was left to share.)
#[derive(Clone, Debug)]
pub struct Flows {
    rules: Arc<FlowRules>,
    matcher: Arc<RoleMatcher>,
    flows: HashMap<Arc<str>, Flow>,
    /// Flow ids, oldest first seen first: what is forgotten past the cap.
    order: VecDeque<Arc<str>>,
    /// Role of each subject id, worked out once.
    roles: HashMap<u32, Role>,
    started: MultiRes<u32>,
    completed: MultiRes<u32>,
    compensated: MultiRes<u32>,
    forgotten: u64,
}

impl Default for Flows {
    fn default() -> Self {
        Flows::new(FlowRules::default())
    }
}

impl Flows {
    /// No flows yet, reading steps by `rules`.
    pub fn new(rules: FlowRules) -> Self {
        Flows {
            matcher: Arc::new(RoleMatcher::new(&rules)),
            rules: Arc::new(rules),
            flows: HashMap::default(),
            order: VecDeque::new(),
            roles: HashMap::default(),
            started: MultiRes::default(),
            completed: MultiRes::default(),
            compensated: MultiRes::default(),
            forgotten: 0,
        }
    }

    /// What it weighs beside `prev`, the flows of the state before (a
    /// flow's steps still shared with it are counted as shared).
    pub fn weight(&self, prev: Option<&Flows>) -> Weight {
        let mut w = Weight::own(
            weight::map(&self.flows)
                + weight::deque(&self.order)
                + weight::map(&self.roles)
                + self.started.slot_bytes()
                + self.completed.slot_bytes()
                + self.compensated.slot_bytes(),
        );
        for (id, flow) in &self.flows {
            let before = prev.and_then(|p| p.flows.get_key_value(id));
            w += weight::arc(id, before.map(|(k, _)| k), || id.len());
            w += weight::arc(&flow.steps, before.map(|(_, f)| &f.steps), || {
                std::mem::size_of::<Vec<Step>>() + weight::vec(&flow.steps)
            });
        }
        w
    }

    /// Adds `other`'s flows (another partition's: their correlation ids are
    /// not this one's) and counts. The order flows are forgotten in stays
    /// that of their first steps.
    pub fn absorb(&mut self, other: &Flows) {
        for (k, f) in &other.flows {
            self.flows.entry(Arc::clone(k)).or_insert_with(|| f.clone());
        }
        let first = |k: &Arc<str>| {
            self.flows
                .get(k)
                .and_then(|f| f.steps.first())
                .map_or(0, |s| s.id)
        };
        let mut order = VecDeque::with_capacity(self.order.len() + other.order.len());
        let (mut a, mut b) = (self.order.iter().peekable(), other.order.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if first(y) < first(x) => b.next(),
                (Some(_), _) => a.next(),
                (None, _) => b.next(),
            };
            match next {
                Some(k) => order.push_back(Arc::clone(k)),
                None => break,
            }
        }
        self.order = order;
        for (subject, role) in &other.roles {
            self.roles.entry(*subject).or_insert(*role);
        }
        self.started.absorb(&other.started, super::window::add_u32);
        self.completed
            .absorb(&other.completed, super::window::add_u32);
        self.compensated
            .absorb(&other.compensated, super::window::add_u32);
        self.forgotten += other.forgotten;
    }

    /// Folds one event in (events without a correlation id are skipped).
    pub fn apply(&mut self, e: &EventRef<'_>) -> StepLink {
        let Some(corr) = e.correlation() else {
            return StepLink::default();
        };
        let t = e.received_ms();
        let telemetry = is_telemetry(e);
        let (mut msg, mut cause) = (0, 0);
        if !telemetry {
            for (k, v) in e.headers() {
                if k.eq_ignore_ascii_case("Nats-Msg-Id") {
                    msg = hash(&v);
                } else if CAUSATION_HEADERS.iter().any(|h| k.eq_ignore_ascii_case(h)) {
                    cause = hash(&v);
                }
            }
        }
        // Roles by subject id, but not for a subject the event keeps (a
        // group or the dictionary's overflow): its role is its own.
        let role = if e.subject_is_own() {
            self.matcher.role(e.subject())
        } else {
            // A cache, bounded: subject ids are not (the log's
            // dictionaries let old ones go and give new ids).
            if self.roles.len() >= super::builtin::MAX_KEYS
                && !self.roles.contains_key(&e.subject_id())
            {
                self.roles.clear();
            }
            *self
                .roles
                .entry(e.subject_id())
                .or_insert_with(|| self.matcher.role(e.subject()))
        };
        let step = Step {
            id: e.id,
            msg,
            telemetry,
            t_ms: t,
            subject: e.subject_id(),
            service: e.service_id(),
            level: e.level(),
            role,
            cause: 0,
        };
        let mut link = StepLink::default();
        if !self.flows.contains_key(corr) {
            link.starts = true;
            if self.flows.len() >= MAX_FLOWS
                && let Some(old) = self.order.pop_front()
            {
                self.flows.remove(&old);
                self.forgotten += 1;
            }
            let key: Arc<str> = Arc::from(corr);
            self.order.push_back(Arc::clone(&key));
            self.started.incr(t);
            self.flows.insert(
                key,
                Flow {
                    started_ms: t,
                    last_ms: t,
                    steps: Arc::new(Vec::new()),
                    dropped: 0,
                    errors: 0,
                    completed_ms: None,
                    compensated_ms: None,
                },
            );
        }
        let Some(flow) = self.flows.get_mut(corr) else {
            return link;
        };
        flow.last_ms = t;
        let mut step = step;
        if !telemetry {
            // The cause: the step its Causation-Id names, else the latest
            // step by another service.
            let causing = if cause != 0 {
                flow.steps.iter().rposition(|s| s.msg == cause)
            } else {
                flow.steps
                    .iter()
                    .rposition(|s| !s.telemetry && s.service != step.service)
            };
            if let Some(i) = causing {
                step.cause = (i + 1) as u16;
                // A service that already reacted to that step consumed it
                // once: its further steps (a request it makes, then its
                // event) do not count it again.
                let again = flow
                    .steps
                    .iter()
                    .any(|s| s.cause == step.cause && s.service == step.service);
                if !again {
                    link.caused_by = Some(flow.steps[i].subject);
                }
            }
        }
        if step
            .level
            .is_some_and(|l| l >= crate::ingest::decode::Level::Error)
        {
            flow.errors = flow.errors.saturating_add(1);
        }
        match role {
            Role::Completion if flow.completed_ms.is_none() => {
                flow.completed_ms = Some(t);
                if flow.compensated_ms.is_none() {
                    self.completed.incr(t);
                }
            }
            Role::Compensation if flow.compensated_ms.is_none() => {
                flow.compensated_ms = Some(t);
                self.compensated.incr(t);
            }
            _ => {}
        }
        if flow.steps.len() < MAX_STEPS {
            Arc::make_mut(&mut flow.steps).push(step);
        } else {
            flow.dropped = flow.dropped.saturating_add(1);
        }
        link
    }

    /// For flows whose first step on a subject `from` takes is in the
    /// window `(since, now]`: the ms from it to their first later step on a
    /// subject `to` takes (`None` when none has come yet).
    pub fn lags(
        &self,
        from: impl Fn(u32) -> bool,
        to: impl Fn(u32) -> bool,
        since: i64,
        now_ms: i64,
    ) -> Vec<Option<i64>> {
        let mut out = Vec::new();
        for f in self.flows.values() {
            if f.last_ms <= since {
                continue;
            }
            let Some(start) = f.steps.iter().position(|s| from(s.subject)) else {
                continue;
            };
            let t0 = f.steps[start].t_ms;
            if t0 <= since || t0 > now_ms {
                continue;
            }
            let end = f.steps[start..]
                .iter()
                .find(|s| to(s.subject) && s.t_ms <= now_ms)
                .map(|s| s.t_ms - t0);
            out.push(end);
        }
        out
    }

    /// Per time bucket over `window` as of `now_ms` (oldest first, every
    /// bucket): flows completed, compensated and stalled in it; and the
    /// bucket width.
    pub fn history(&self, window: Window, now_ms: i64) -> (i64, Vec<(i64, [u64; 3])>) {
        let (step, done) = self.completed.buckets(now_ms, window);
        let (_, undone) = self.compensated.buckets(now_ms, window);
        let first = (now_ms.div_euclid(step) + 1) * step - window.ms();
        let n = (window.ms() / step) as usize;
        let mut out: Vec<(i64, [u64; 3])> =
            (0..n).map(|i| (first + i as i64 * step, [0; 3])).collect();
        let mut put = |t: i64, which: usize, count: u64| {
            let i = (t - first).div_euclid(step);
            if let Some((_, slot)) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
                slot[which] += count;
            }
        };
        for (t, c) in done {
            put(t, 0, u64::from(*c));
        }
        for (t, c) in undone {
            put(t, 1, u64::from(*c));
        }
        let stall_ms = self.rules.stall_ms();
        for f in self.flows.values() {
            if f.status(now_ms, stall_ms) == FlowStatus::Stalled {
                put(f.last_ms.saturating_add(stall_ms), 2, 1);
            }
        }
        (step, out)
    }

    /// Flows forgotten because more than [`MAX_FLOWS`] were tracked.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// The projection over `window` as of `now_ms`.
    pub fn snapshot(&self, store: &Store, window: Window, now_ms: i64) -> ProjectionBody {
        let stall_ms = self.rules.stall_ms();
        let since = now_ms - window.ms();
        let mut counts = FlowCounts {
            started: self.started.sum(now_ms, window),
            completed: self.completed.sum(now_ms, window),
            compensated: self.compensated.sum(now_ms, window),
            ..FlowCounts::default()
        };
        let mut recent: Vec<(&Arc<str>, &Flow)> = Vec::new();
        for (id, f) in &self.flows {
            match f.status(now_ms, stall_ms) {
                FlowStatus::Running => counts.running += 1,
                FlowStatus::Stalled => {
                    let stalled_at = f.last_ms.saturating_add(stall_ms);
                    if stalled_at > since && stalled_at <= now_ms {
                        counts.stalled += 1;
                    }
                }
                _ => {}
            }
            if f.last_ms > since {
                recent.push((id, f));
            }
        }
        recent.sort_by(|a, b| b.1.last_ms.cmp(&a.1.last_ms).then_with(|| a.0.cmp(b.0)));
        ProjectionBody::Flows {
            counts,
            stall_ms,
            flows: recent
                .into_iter()
                .take(LISTED)
                .map(|(id, f)| f.summary(id, store, now_ms, stall_ms))
                .collect(),
        }
    }

    /// Flow `id` with its steps, as of `now_ms`.
    pub fn detail(&self, store: &Store, id: &str, now_ms: i64) -> Option<FlowDetail> {
        let f = self.flows.get(id)?;
        let stall_ms = self.rules.stall_ms();
        let mut prev = f.started_ms;
        let steps = f
            .steps
            .iter()
            .map(|s| {
                let gap_ms = s.t_ms - prev;
                prev = s.t_ms;
                FlowStep {
                    event_id: s.id,
                    t_ms: s.t_ms,
                    gap_ms,
                    subject: step_subject(store, s),
                    service: (s.service != NONE)
                        .then(|| store.services().name(s.service).map(str::to_string))
                        .flatten(),
                    level: s.level.map(|l| l.as_str().to_string()),
                    role: s.role.as_str().to_string(),
                }
            })
            .collect();
        Some(FlowDetail {
            flow: f.summary(id, store, now_ms, stall_ms),
            steps,
            steps_dropped: f.dropped,
            stall_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;

    fn event(subject: &str, corr: Option<&str>, t: i64) -> NewEvent {
        let mut e = NewEvent::core(subject, r#"{"level":"info","msg":"x"}"#, t);
        e.decoded.correlation_id = corr.map(Into::into);
        e
    }

    #[test]
    fn a_service_consumes_a_step_once_however_many_steps_it_leads_to() {
        let step = |subject: &str, service: &str, msg: &str, cause: Option<&str>, t: i64| {
            let mut e = event(subject, Some("o-1"), t);
            e.decoded.level = None;
            e.decoded.service = Some(service.into());
            e.headers = vec![("Nats-Msg-Id".to_string(), msg.to_string())];
            if let Some(c) = cause {
                e.headers.push(("Causation-Id".to_string(), c.to_string()));
            }
            e
        };
        let mut store = Store::new(16 << 20);
        let mut flows = Flows::default();
        let mut links = Vec::new();
        for e in [
            step("orders.placed", "orders", "m1", None, 1),
            step("fraud.check", "payments", "m2", Some("m1"), 2),
            step("payments.authorised", "payments", "m3", Some("m1"), 3),
            step("inventory.reserved", "inventory", "m4", Some("m3"), 4),
        ] {
            let id = store.append(&e).expect("fits");
            let link = flows.apply(&store.get(id).expect("stored"));
            links.push(
                link.caused_by
                    .and_then(|s| store.subjects().name(s))
                    .map(str::to_string),
            );
        }
        assert_eq!(
            links,
            [
                None,
                Some("orders.placed"),
                None,
                Some("payments.authorised")
            ]
            .map(|s| s.map(str::to_string))
        );
    }

    #[test]
    fn the_roles_cache_stays_bounded_however_many_subjects() {
        let mut store = Store::new(256 << 20);
        let mut flows = Flows::default();
        for i in 0..super::super::builtin::MAX_KEYS * 2 + 10 {
            let e = event(&format!("burst.s{i}"), Some("o-1"), i as i64);
            let id = store.append(&e).expect("fits");
            flows.apply(&store.get(id).expect("stored"));
            assert!(flows.roles.len() <= super::super::builtin::MAX_KEYS, "{i}");
        }
        assert!(!flows.roles.is_empty());
    }

    fn fold(events: &[NewEvent]) -> (Store, Flows) {
        let mut store = Store::new(64 << 20);
        let mut flows = Flows::default();
        for e in events {
            let id = store.append(e).expect("fits");
            flows.apply(&store.get(id).expect("stored"));
        }
        (store, flows)
    }

    fn counts(body: ProjectionBody) -> (FlowCounts, Vec<FlowSummary>) {
        match body {
            ProjectionBody::Flows { counts, flows, .. } => (counts, flows),
            other => panic!("not flows: {other:?}"),
        }
    }

    #[test]
    fn rules_read_words_and_patterns() {
        let r = FlowRules::default();
        assert_eq!(r.role("orders.completed"), Role::Completion);
        assert_eq!(r.role("payments.Refunded"), Role::Compensation);
        assert_eq!(r.role("orders.placed"), Role::Step);
        // A word must be a whole token.
        assert_eq!(r.role("orders.incomplete"), Role::Step);
        let r = FlowRules {
            complete: vec!["shipping.*.scheduled".into()],
            ..FlowRules::default()
        };
        assert_eq!(r.role("shipping.eu.scheduled"), Role::Completion);
        assert_eq!(r.role("orders.completed"), Role::Step);
    }

    #[test]
    fn statuses_follow_the_steps_and_the_clock() {
        let t0 = 1_000_000;
        let (store, flows) = fold(&[
            event("orders.placed", Some("a"), t0),
            event("orders.placed", Some("b"), t0),
            event("orders.placed", Some("c"), t0),
            event("payments.authorised", Some("a"), t0 + 10),
            event("payments.declined", Some("b"), t0 + 20),
            event("orders.completed", Some("a"), t0 + 30),
            event("orders.cancelled", Some("b"), t0 + 40),
            event("logs.noise", None, t0 + 50),
        ]);
        let (c, list) = counts(flows.snapshot(&store, Window::M1, t0 + 1_000));
        assert_eq!(
            (c.started, c.completed, c.compensated, c.stalled, c.running),
            (3, 1, 1, 0, 1)
        );
        let b = list.iter().find(|f| f.id == "b").expect("b listed");
        assert_eq!(b.status, FlowStatus::Compensated);
        assert_eq!(b.stopped_at.as_deref(), Some("payments.declined"));
        // 30 s after its only step, "c" is stalled, and says where.
        let (c2, list) = counts(flows.snapshot(&store, Window::M1, t0 + STALL_MS));
        assert_eq!((c2.stalled, c2.running), (1, 0));
        let stalled = list.iter().find(|f| f.id == "c").expect("c listed");
        assert_eq!(stalled.status, FlowStatus::Stalled);
        assert_eq!(stalled.stopped_at.as_deref(), Some("orders.placed"));
        let d = flows.detail(&store, "a", t0 + 1_000).expect("a");
        let gaps: Vec<i64> = d.steps.iter().map(|s| s.gap_ms).collect();
        assert_eq!(gaps, [0, 10, 20]);
        assert_eq!(d.steps[2].role, "completion");
    }

    #[test]
    fn a_reply_step_shows_its_own_inbox() {
        let t0 = 1_000_000;
        let (store, flows) = fold(&[
            event("fraud.check", Some("a"), t0),
            event("_INBOX.payments.7", Some("a"), t0 + 5),
            event("_INBOX.payments.8", Some("b"), t0 + 6),
        ]);
        let d = flows.detail(&store, "a", t0 + 1_000).expect("a");
        let subjects: Vec<&str> = d.steps.iter().map(|s| s.subject.as_str()).collect();
        assert_eq!(subjects, ["fraud.check", "_INBOX.payments.7"]);
        let (_, list) = counts(flows.snapshot(&store, Window::M1, t0 + 1_000));
        let b = list.iter().find(|f| f.id == "b").expect("b listed");
        assert_eq!(b.first_subject, "_INBOX.payments.8");
    }

    #[test]
    fn history_puts_each_end_in_its_bucket() {
        let t0 = 1_000_000;
        let (_, flows) = fold(&[
            event("orders.placed", Some("a"), t0),
            event("orders.completed", Some("a"), t0 + 2_500),
            event("orders.placed", Some("b"), t0 + 3_000),
            event("orders.cancelled", Some("b"), t0 + 3_100),
            event("orders.placed", Some("c"), t0 + 4_000),
        ]);
        let now = t0 + 40_000;
        let (step, h) = flows.history(Window::M1, now);
        assert_eq!((step, h.len()), (1_000, 60));
        let at = |t: i64| {
            h.iter()
                .find(|(s, _)| *s <= t && t < s + step)
                .map(|(_, c)| *c)
        };
        assert_eq!(at(t0 + 2_500), Some([1, 0, 0]));
        assert_eq!(at(t0 + 3_100), Some([0, 1, 0]));
        assert_eq!(at(t0 + 4_000 + STALL_MS), Some([0, 0, 1]));
        let sum: u64 = h.iter().map(|(_, c)| c.iter().sum::<u64>()).sum();
        assert_eq!(sum, 3);
    }

    #[test]
    fn bounded_in_flows_and_steps() {
        let mut events: Vec<NewEvent> = (0..MAX_FLOWS + 10)
            .map(|i| event("a.started", Some(&format!("f{i}")), 1_000))
            .collect();
        let newest = format!("f{}", MAX_FLOWS + 9);
        events.extend((0..MAX_STEPS + 5).map(|_| event("a.step", Some(&newest), 2_000)));
        let (store, flows) = fold(&events);
        assert_eq!(flows.forgotten(), 10);
        assert!(
            flows.detail(&store, "f0", 3_000).is_none(),
            "oldest forgotten"
        );
        let d = flows.detail(&store, &newest, 3_000).expect("newest kept");
        assert_eq!((d.steps.len(), d.steps_dropped), (MAX_STEPS, 6));
        assert_eq!(d.flow.steps as usize, MAX_STEPS + 6);
    }
}
