//! Topology (PRODUCT.md F8): a graph of who publishes what and who reacts
//! to it, inferred from traffic alone.
//!
//! - A **publishes** edge goes from a service to a subject for every event
//!   the service published on it (the service as decoding found it: payload
//!   field, else the subject's first token).
//! - A **consumes** edge goes from a subject to a service when the service
//!   published a step of a flow *caused* by an event on that subject: the
//!   step's `Causation-Id` header names the causing message's `Nats-Msg-Id`
//!   (else, without the header, the flow's previous step by another
//!   service is taken as the cause). Once per event consumed: a service
//!   whose reaction is several steps (a request, then its event) counts
//!   it once. See [`super::flows`].
//! - **Request/reply**: a core NATS message published with a reply subject
//!   is a request; the message that later arrives on that reply subject
//!   (the requester's inbox) is its answer. Its publisher (as decoding
//!   found it: payload field or service header; an inbox names no service)
//!   *consumes* the request's subject, and a **replies** edge goes from it
//!   back to the requester. Answers with an error level or a
//!   `Nats-Service-Error` header (NATS micro services) count as errors.
//!   Requests wait at most [`REPLY_WAIT_MS`] for an answer, and at most
//!   [`MAX_PENDING`] wait at once (the oldest give way).
//!
//! Subjects are grouped so ids in them do not make one node each: a token
//! with a digit becomes `*` (`accounts.acc-0001.opened` is
//! `accounts.*.opened`). Logs (events with a level) and metrics are left
//! out unless asked for (`topology_all`): they would tie every service to
//! its `logs.<service>`.
//!
//! The layout is computed here, deterministically: columns by distance
//! from the nodes that start flows (else from nodes nothing points to),
//! rows by name, so the same graph always lands in the same place.

use super::weight::{self, Weight};
use super::window::MultiRes;
use crate::ingest::consumers::ConsumerTable;
use crate::ingest::decode::Level;
use crate::store::intern::NONE;
use crate::store::{EventRef, Store};
use app::api::{ProjectionBody, Rate, TopoEdge, TopoNode, Window};
use foldhash::HashMap;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Edges tracked at most (the rest are counted in `overflow`).
const MAX_EDGES: usize = 2_000;
/// Requests waiting for an answer, at most.
pub const MAX_PENDING: usize = 10_000;
/// How long a request waits for its answer.
pub const REPLY_WAIT_MS: i64 = 30_000;

/// A request seen, its answer not yet.
#[derive(Clone, Debug)]
struct Request {
    subject: u32,
    requester: u32,
    t_ms: i64,
}

/// The topology projection's state.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    /// (service, subject) → (events, errors) per bucket.
    publishes: HashMap<(u32, u32), MultiRes<(u32, u32)>>,
    /// Same, for logs and metrics (shown only with `telemetry`).
    telemetry: HashMap<(u32, u32), MultiRes<(u32, u32)>>,
    /// (subject, service) → caused steps per bucket.
    consumes: HashMap<(u32, u32), MultiRes<(u32, u32)>>,
    /// (responder, requester) → answers per bucket.
    replies: HashMap<(u32, u32), MultiRes<(u32, u32)>>,
    /// Requests by reply subject, and their order (oldest first).
    requests: HashMap<std::sync::Arc<str>, Request>,
    request_order: VecDeque<std::sync::Arc<str>>,
    /// Subjects that started flows.
    starters: BTreeSet<u32>,
    overflow: u64,
}

fn bump(
    map: &mut HashMap<(u32, u32), MultiRes<(u32, u32)>>,
    overflow: &mut u64,
    key: (u32, u32),
    t: i64,
    error: bool,
) {
    if !map.contains_key(&key) && map.len() >= MAX_EDGES {
        *overflow += 1;
        return;
    }
    map.entry(key).or_default().update(t, |(n, e)| {
        *n = n.saturating_add(1);
        *e = e.saturating_add(u32::from(error));
    });
}

/// Whether a subject token looks like an id (three or more digits, or a
/// long run of letters and digits such as a hash): `acc-0001`, `42`,
/// `9f86d081884c7d65`, but not `v2`, `e2e` or `http2`.
fn id_like(t: &str) -> bool {
    let digits = t.bytes().filter(u8::is_ascii_digit).count();
    digits >= 3 || (digits > 0 && t.len() >= 16) || (!t.is_empty() && digits == t.len())
}

/// Whether a subject is NATS's own (`$JS.…`, `$SYS.…`, `_INBOX.…`):
/// infrastructure, not an application's events.
pub fn is_system(subject: &str) -> bool {
    subject.starts_with('$') || subject.starts_with("_INBOX.")
}

/// `accounts.acc-0001.opened` → `accounts.*.opened`.
pub fn subject_group(subject: &str) -> String {
    subject
        .split('.')
        .map(|t| if id_like(t) { "*" } else { t })
        .collect::<Vec<_>>()
        .join(".")
}

impl Topology {
    /// Folds one event in; `caused_by` is the subject of the step that
    /// caused it, if it is a flow step with a known cause.
    pub fn apply(&mut self, e: &EventRef<'_>, caused_by: Option<u32>, starts_flow: bool) {
        let t = e.received_ms();
        let service = e.service_id();
        let error = e.level().is_some_and(|l| l >= Level::Error);
        // (Bounded: subject ids are not, the log's dictionaries giving new
        // ones as they let old ones go.)
        if starts_flow && self.starters.len() < super::builtin::MAX_KEYS {
            self.starters.insert(e.subject_id());
        }
        // (Most traffic is no answer: skip hashing its subject then.)
        if !self.requests.is_empty()
            && let Some(asked) = self.requests.remove(e.subject())
        {
            self.answer(e, &asked, error);
        }
        if let Some(reply) = e.reply()
            && !is_system(e.subject())
        {
            self.ask(reply, e.subject_id(), service, t);
        }
        if service == NONE || is_system(e.subject()) {
            return;
        }
        let map = if super::flows::is_telemetry(e) {
            &mut self.telemetry
        } else {
            &mut self.publishes
        };
        bump(map, &mut self.overflow, (service, e.subject_id()), t, error);
        if let Some(cause) = caused_by {
            bump(
                &mut self.consumes,
                &mut self.overflow,
                (cause, service),
                t,
                error,
            );
        }
    }

    /// Lets go of the edges with nothing newer than `since` (in no window
    /// any more), so that new ones find room under [`MAX_EDGES`].
    pub fn age_out(&mut self, since: i64) {
        for m in [
            &mut self.publishes,
            &mut self.telemetry,
            &mut self.consumes,
            &mut self.replies,
        ] {
            m.retain(|_, r| r.newest_ms() >= since);
        }
    }

    /// What it weighs (nothing in it is shared with a checkpoint but the
    /// requests' reply subjects, counted here all the same).
    pub fn weight(&self) -> Weight {
        let edges = |m: &HashMap<(u32, u32), MultiRes<(u32, u32)>>| {
            weight::map(m) + m.len() * MultiRes::<(u32, u32)>::bucket_bytes()
        };
        Weight::own(
            edges(&self.publishes)
                + edges(&self.telemetry)
                + edges(&self.consumes)
                + edges(&self.replies)
                + weight::map(&self.requests)
                + self.requests.keys().map(|k| k.len() + 16).sum::<usize>()
                + weight::deque(&self.request_order)
                // A B-tree node per eleven keys, about 100 bytes.
                + self.starters.len() * 10,
        )
    }

    /// Adds `other`'s edges, waiting requests and starters (another
    /// partition's).
    pub fn absorb(&mut self, other: &Topology) {
        use super::window::{absorb_map, add_pair};
        absorb_map(&mut self.publishes, &other.publishes, add_pair);
        absorb_map(&mut self.telemetry, &other.telemetry, add_pair);
        absorb_map(&mut self.consumes, &other.consumes, add_pair);
        absorb_map(&mut self.replies, &other.replies, add_pair);
        for (k, r) in &other.requests {
            self.requests
                .entry(std::sync::Arc::clone(k))
                .or_insert_with(|| r.clone());
        }
        self.request_order
            .extend(other.request_order.iter().cloned());
        self.starters.extend(other.starters.iter().copied());
        self.overflow += other.overflow;
    }

    /// Remembers a request until its answer arrives on `reply`.
    fn ask(&mut self, reply: &str, subject: u32, requester: u32, t_ms: i64) {
        if self.request_order.len() >= MAX_PENDING
            && let Some(old) = self.request_order.pop_front()
        {
            self.requests.remove(&old);
        }
        // Keys already answered stay in the queue until they reach its
        // front: the queue, and so the map, never pass `MAX_PENDING`.
        let key: std::sync::Arc<str> = std::sync::Arc::from(reply);
        self.request_order.push_back(std::sync::Arc::clone(&key));
        self.requests.insert(
            key,
            Request {
                subject,
                requester,
                t_ms,
            },
        );
    }

    /// `e` arrived on the reply subject of `asked`.
    fn answer(&mut self, e: &EventRef<'_>, asked: &Request, error: bool) {
        let t = e.received_ms();
        if t - asked.t_ms > REPLY_WAIT_MS {
            return;
        }
        let responder = e.service_id();
        if responder == NONE {
            return;
        }
        let error = error
            || e.headers()
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("Nats-Service-Error"));
        bump(
            &mut self.consumes,
            &mut self.overflow,
            (asked.subject, responder),
            t,
            error,
        );
        if asked.requester != NONE && asked.requester != responder {
            bump(
                &mut self.replies,
                &mut self.overflow,
                (responder, asked.requester),
                t,
                error,
            );
        }
    }

    /// The graph over `window` as of `now_ms`; with the JetStream
    /// `consumers` polled then, if the moment is now (within 30 s of the
    /// poll): they are live state, not in the log.
    pub fn snapshot(
        &self,
        store: &Store,
        window: Window,
        now_ms: i64,
        telemetry: bool,
        consumers: Option<&ConsumerTable>,
    ) -> ProjectionBody {
        let sum = |m: &MultiRes<(u32, u32)>| {
            m.window(now_ms, window)
                .fold((0u64, 0u64), |(n, e), (a, b)| {
                    (n + u64::from(*a), e + u64::from(*b))
                })
        };
        let service = |id: u32| format!("svc:{}", store.services().name(id).unwrap_or("?"));
        let subject = |id: u32| {
            format!(
                "sub:{}",
                subject_group(store.subjects().name(id).unwrap_or("?"))
            )
        };
        // (from, to) → (kind, events, errors)
        let mut edges: BTreeMap<(String, String), (&'static str, u64, u64)> = BTreeMap::new();
        let mut add = |from: String, to: String, kind: &'static str, (n, e): (u64, u64)| {
            if n > 0 {
                let slot = edges.entry((from, to)).or_insert((kind, 0, 0));
                slot.1 += n;
                slot.2 += e;
            }
        };
        for ((svc, sub), m) in &self.publishes {
            add(service(*svc), subject(*sub), "publishes", sum(m));
        }
        if telemetry {
            for ((svc, sub), m) in &self.telemetry {
                add(service(*svc), subject(*sub), "publishes", sum(m));
            }
        }
        for ((sub, svc), m) in &self.consumes {
            add(subject(*sub), service(*svc), "consumes", sum(m));
        }
        for ((responder, requester), m) in &self.replies {
            add(service(*responder), service(*requester), "replies", sum(m));
        }
        let mut pending: BTreeMap<(String, String), u64> = BTreeMap::new();
        let live = consumers.filter(|t| (now_ms - t.polled_ms).abs() <= 30_000);
        // JetStream as it is: subjects → their stream → its consumers.
        let seen: Vec<String> = edges
            .keys()
            .flat_map(|(a, b)| [a, b])
            .filter_map(|n| n.strip_prefix("sub:"))
            .map(str::to_string)
            .collect();
        let mut published: BTreeMap<String, u64> = BTreeMap::new();
        for ((_, to), (kind, n, _)) in &edges {
            if *kind == "publishes" {
                *published.entry(to.clone()).or_default() += n;
            }
        }
        let mut stores: Vec<(String, String, u64)> = Vec::new();
        let mut reads: BTreeMap<String, String> = BTreeMap::new();
        for c in live.map(|t| t.consumers.as_slice()).unwrap_or_default() {
            let stream = format!("str:{}", c.stream);
            if !stores.iter().any(|(_, s, _)| *s == stream) {
                let mut from: Vec<&String> = seen
                    .iter()
                    .filter(|s| {
                        c.stream_subjects
                            .iter()
                            .any(|f| crate::event::subject_matches(f, s))
                    })
                    .collect();
                from.sort();
                from.dedup();
                for f in from {
                    let sub = format!("sub:{f}");
                    let n = published.get(&sub).copied().unwrap_or(0);
                    stores.push((sub, stream.clone(), n));
                }
            }
            let to = format!("con:{}/{}", c.stream, c.name);
            let count = (c.per_sec * window.ms() as f64 / 1_000.0).round() as u64;
            edges.insert((stream.clone(), to.clone()), ("delivers", count, 0));
            reads.insert(to.clone(), c.subjects.first().cloned().unwrap_or_default());
            pending.insert((stream, to), c.pending);
        }
        for (from, to, n) in stores {
            edges.insert((from, to), ("stores", n, 0));
        }
        let starters: BTreeSet<String> = self.starters.iter().map(|s| subject(*s)).collect();
        let mut body = layout(edges, &starters, window);
        if let ProjectionBody::Topology { edges, .. } = &mut body {
            for e in edges {
                e.pending = pending.get(&(e.from.clone(), e.to.clone())).copied();
                if let Some(r) = reads.get(&e.to) {
                    e.subject = r.clone();
                }
            }
        }
        body
    }
}

/// Graphs with at most this many edges get the crossing-reducing sweeps
/// (counting crossings is quadratic in the edges).
const SWEEP_MAX_EDGES: usize = 400;
/// Sweeps, alternately up and down.
const SWEEPS: usize = 8;

/// An edge going right: its (from, to) columns and its (from, to) nodes.
type Span<'a> = ((usize, usize), (&'a str, &'a str));

/// Crossings between edges that span the same columns (a good proxy for
/// what the eye counts, and cheap).
fn crossings(spans: &[Span<'_>], row_of: &BTreeMap<&str, f64>) -> usize {
    let mut n = 0;
    for (i, (span, (a, b))) in spans.iter().enumerate() {
        for (other, (c, d)) in &spans[i + 1..] {
            if other != span {
                break;
            }
            if (row_of[a] - row_of[c]) * (row_of[b] - row_of[d]) < 0.0 {
                n += 1;
            }
        }
    }
    n
}

/// The layered-layout heuristic: each column in turn is re-sorted by the
/// mean row of its neighbours (successors when sweeping up from the last
/// column, predecessors when sweeping down), nodes without such neighbours
/// keeping their place; the order with the fewest crossings wins.
/// Deterministic: the same graph always gets the same rows.
fn sweep<'a>(
    edges: &'a BTreeMap<(String, String), (&'static str, u64, u64)>,
    column: &BTreeMap<&'a str, usize>,
    rows: &mut BTreeMap<usize, Vec<&'a str>>,
    row_of: &mut BTreeMap<&'a str, f64>,
) {
    let mut spans: Vec<Span<'a>> = edges
        .keys()
        .map(|(a, b)| {
            (
                (column[a.as_str()], column[b.as_str()]),
                (a.as_str(), b.as_str()),
            )
        })
        .filter(|((ca, cb), _)| ca < cb)
        .collect();
    // Equal spans side by side: `crossings` compares only within a run.
    spans.sort_by_key(|(span, _)| *span);
    let mut best = (crossings(&spans, row_of), rows.clone());
    for pass in 0..SWEEPS {
        let up = pass % 2 == 0;
        let order: Vec<usize> = if up {
            rows.keys().rev().copied().collect()
        } else {
            rows.keys().copied().collect()
        };
        for c in order {
            let Some(names) = rows.get_mut(&c) else {
                continue;
            };
            let key = |n: &str| {
                let near: Vec<f64> = spans
                    .iter()
                    .filter_map(|((ca, cb), (a, b))| {
                        if up && *a == n && *ca == c {
                            row_of.get(b).copied()
                        } else if !up && *b == n && *cb == c {
                            row_of.get(a).copied()
                        } else {
                            None
                        }
                    })
                    .collect();
                if near.is_empty() {
                    row_of[n]
                } else {
                    near.iter().sum::<f64>() / near.len() as f64
                }
            };
            let mut keyed: Vec<(f64, f64, &str)> =
                names.iter().map(|n| (key(n), row_of[n], *n)).collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.total_cmp(&b.1)));
            *names = keyed.into_iter().map(|(_, _, n)| n).collect();
            for (r, n) in names.iter().enumerate() {
                row_of.insert(n, r as f64);
            }
        }
        let now = crossings(&spans, row_of);
        if now < best.0 {
            best = (now, rows.clone());
        }
    }
    *rows = best.1;
    for names in rows.values() {
        for (r, n) in names.iter().enumerate() {
            row_of.insert(n, r as f64);
        }
    }
}

/// Places the nodes of `edges` in columns and rows.
fn layout(
    edges: BTreeMap<(String, String), (&'static str, u64, u64)>,
    starters: &BTreeSet<String>,
    window: Window,
) -> ProjectionBody {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut indegree: BTreeMap<&str, usize> = BTreeMap::new();
    for (from, to) in edges.keys() {
        out.entry(from).or_default().push(to);
        out.entry(to).or_default();
        *indegree.entry(to).or_default() += 1;
        indegree.entry(from).or_default();
    }
    // Roots: the publishers of subjects that start flows; else nodes
    // nothing points to; whatever is left starts a new search, by name.
    let mut roots: Vec<&str> = edges
        .keys()
        .filter(|(_, to)| starters.contains(to.as_str()))
        .map(|(from, _)| from.as_str())
        .collect();
    roots.extend(indegree.iter().filter(|(_, d)| **d == 0).map(|(n, _)| *n));
    let mut column: BTreeMap<&str, usize> = BTreeMap::new();
    let mut pending: Vec<&str> = out.keys().copied().collect();
    pending.reverse();
    let mut queue: VecDeque<&str> = VecDeque::new();
    // All roots at once (a breadth-first search from all of them), then
    // whatever they do not reach, one at a time.
    for root in roots {
        if !column.contains_key(root) {
            column.insert(root, 0);
            queue.push_back(root);
        }
    }
    loop {
        if queue.is_empty() {
            match pending.pop() {
                Some(r) if !column.contains_key(r) => {
                    column.insert(r, 0);
                    queue.push_back(r);
                }
                Some(_) => continue,
                None => break,
            }
        }
        while let Some(n) = queue.pop_front() {
            let c = column[n];
            for to in &out[n] {
                if !column.contains_key(to) {
                    column.insert(to, c + 1);
                    queue.push_back(to);
                }
            }
        }
    }
    let mut rows: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (n, c) in &column {
        rows.entry(*c).or_default().push(n);
    }
    // Fewer crossings: after the first column (by name), each node sits at
    // the mean row of the nodes in earlier columns that point to it (the
    // barycentre heuristic), ties and orphans by name.
    let mut preds: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        preds.entry(to.as_str()).or_default().push(from.as_str());
    }
    let mut row_of: BTreeMap<&str, f64> = BTreeMap::new();
    for (c, names) in rows.iter_mut() {
        if *c > 0 {
            let key = |n: &str| {
                let placed: Vec<f64> = preds
                    .get(n)
                    .into_iter()
                    .flatten()
                    .filter(|p| column.get(*p).is_some_and(|pc| pc < c))
                    .filter_map(|p| row_of.get(p).copied())
                    .collect();
                if placed.is_empty() {
                    f64::MAX
                } else {
                    placed.iter().sum::<f64>() / placed.len() as f64
                }
            };
            let mut keyed: Vec<(f64, &str)> = names.iter().map(|n| (key(n), *n)).collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
            *names = keyed.into_iter().map(|(_, n)| n).collect();
        }
        for (r, n) in names.iter().enumerate() {
            row_of.insert(n, r as f64);
        }
    }
    if edges.len() <= SWEEP_MAX_EDGES {
        sweep(&edges, &column, &mut rows, &mut row_of);
    }
    let mut nodes = Vec::new();
    for (c, names) in &rows {
        for (r, id) in names.iter().enumerate() {
            let (kind, label) = id.split_once(':').unwrap_or(("subject", id));
            nodes.push(TopoNode {
                id: id.to_string(),
                kind: match kind {
                    "svc" => "service",
                    "con" => "consumer",
                    "str" => "stream",
                    _ => "subject",
                }
                .to_string(),
                label: label.to_string(),
                column: *c as u32,
                row: r as u32,
            });
        }
    }
    let edges = edges
        .into_iter()
        .map(|((from, to), (kind, n, e))| {
            let subject = match kind {
                "publishes" => to.trim_start_matches("sub:").to_string(),
                // A consumer's edge: what it reads.
                "delivers" => String::new(), // set by the caller, which knows
                // what the consumer reads
                // Answers arrive on the requesters' inboxes.
                "replies" => "_INBOX.>".to_string(),
                _ => from.trim_start_matches("sub:").to_string(),
            };
            TopoEdge {
                subject,
                from,
                to,
                kind: kind.to_string(),
                rate: Rate {
                    count: n,
                    per_sec: n as f64 * 1_000.0 / window.ms() as f64,
                },
                errors: e,
                pending: None,
            }
        })
        .collect();
    ProjectionBody::Topology { nodes, edges }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flow_starters_stay_bounded_however_many_subjects() {
        let mut store = crate::store::Store::new(256 << 20);
        let mut topology = Topology::default();
        let max = crate::projection::builtin::MAX_KEYS;
        for i in 0..max * 2 {
            let e = crate::event::NewEvent::core(&format!("start.s{i}"), "{}", i as i64);
            let id = store.append(&e).expect("fits");
            topology.apply(&store.get(id).expect("stored"), None, true);
        }
        assert_eq!(topology.starters.len(), max);
    }

    #[test]
    fn edges_past_the_cap_are_counted_not_kept() {
        let mut store = crate::store::Store::new(256 << 20);
        let mut topology = Topology::default();
        for i in 0..MAX_EDGES + 4 {
            let e = crate::event::NewEvent::core(
                &format!("orders.e{i}.placed"),
                r#"{"service":"orders"}"#,
                i as i64,
            );
            let id = store.append(&e).expect("fits");
            topology.apply(&store.get(id).expect("stored"), None, false);
        }
        assert_eq!(topology.publishes.len(), MAX_EDGES);
        assert_eq!(topology.overflow, 4);
    }

    #[test]
    fn ids_in_subjects_are_grouped() {
        assert_eq!(
            subject_group("accounts.acc-0001.opened"),
            "accounts.*.opened"
        );
        assert_eq!(subject_group("orders.placed"), "orders.placed");
        assert_eq!(subject_group("v2.e2e.x"), "v2.e2e.x");
        assert_eq!(subject_group("a.42.9f86d081884c7d65"), "a.*.*");
        assert!(is_system("$JS.API.INFO") && is_system("_INBOX.abc") && !is_system("orders.x"));
    }

    #[test]
    fn requests_and_their_answers_make_consumes_and_replies_edges() {
        use crate::event::NewEvent;
        let mut store = Store::new(16 << 20);
        let mut topo = Topology::default();
        let mut fold = |e: NewEvent| {
            let id = store.append(&e).expect("fits");
            topo.apply(&store.get(id).expect("stored"), None, false);
        };
        let request = |n: u32, t: i64| {
            let mut e = NewEvent::core("fraud.check", r#"{"service":"payments"}"#, t);
            e.reply = Some(format!("_INBOX.p.{n}"));
            e
        };
        let answer = |n: u32, t: i64, service: Option<&str>, headers: &[(&str, &str)]| {
            let mut e = NewEvent::core(&format!("_INBOX.p.{n}"), r#"{"score":0.1}"#, t);
            e.decoded.service = service.map(Into::into);
            e.headers = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            e
        };
        let t0 = 1_000_000;
        for n in 0..4 {
            fold(request(n, t0 + i64::from(n)));
        }
        fold(answer(0, t0 + 10, Some("fraud"), &[]));
        fold(answer(
            1,
            t0 + 11,
            Some("fraud"),
            &[("Nats-Service-Error", "boom")],
        ));
        // An answer nobody names, and one past the wait: no edges.
        fold(answer(2, t0 + 12, None, &[]));
        fold(answer(3, t0 + REPLY_WAIT_MS + 10, Some("fraud"), &[]));
        // A second answer on an inbox already answered is not an answer.
        fold(answer(0, t0 + 13, Some("fraud"), &[]));
        let now = t0 + REPLY_WAIT_MS + 20;
        let ProjectionBody::Topology { edges, .. } =
            topo.snapshot(&store, Window::H1, now, false, None)
        else {
            panic!("not a topology")
        };
        let got: Vec<(&str, &str, &str, u64, u64)> = edges
            .iter()
            .map(|e| {
                (
                    e.from.as_str(),
                    e.to.as_str(),
                    e.kind.as_str(),
                    e.rate.count,
                    e.errors,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("sub:fraud.check", "svc:fraud", "consumes", 2, 1),
                ("svc:fraud", "svc:payments", "replies", 2, 1),
                ("svc:payments", "sub:fraud.check", "publishes", 4, 0),
            ]
        );
        assert_eq!(edges[1].subject, "_INBOX.>");
    }

    #[test]
    fn waiting_requests_are_bounded() {
        let mut topo = Topology::default();
        for n in 0..(MAX_PENDING + 50) {
            topo.ask(&format!("_INBOX.{n}"), 1, 2, 0);
        }
        assert_eq!(topo.requests.len(), MAX_PENDING);
        assert!(!topo.requests.contains_key("_INBOX.0"));
        assert!(
            topo.requests
                .contains_key(format!("_INBOX.{}", MAX_PENDING + 49).as_str())
        );
    }

    #[test]
    fn sweeps_untangle_what_one_pass_leaves_crossed() {
        // One pass by predecessors puts m and n level (both at mean row 1)
        // and by name, so b → n crosses c → m; sweeping up from the right
        // moves c next to a.
        let mut edges = BTreeMap::new();
        for (a, b) in [("svc:a", "sub:m"), ("svc:c", "sub:m"), ("svc:b", "sub:n")] {
            edges.insert((a.to_string(), b.to_string()), ("publishes", 1, 0));
        }
        let ProjectionBody::Topology { nodes, .. } = layout(edges, &BTreeSet::new(), Window::M1)
        else {
            panic!("not a topology")
        };
        let order = |col: u32| {
            let mut v: Vec<(u32, &str)> = nodes
                .iter()
                .filter(|n| n.column == col)
                .map(|n| (n.row, n.id.as_str()))
                .collect();
            v.sort_unstable();
            v.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
        };
        assert_eq!(order(0), ["svc:a", "svc:c", "svc:b"]);
        assert_eq!(order(1), ["sub:m", "sub:n"]);
    }

    #[test]
    fn layout_follows_the_flow_and_is_stable() {
        let mut edges = BTreeMap::new();
        for (a, b, k) in [
            ("svc:orders", "sub:orders.placed", "publishes"),
            ("sub:orders.placed", "svc:payments", "consumes"),
            ("svc:payments", "sub:payments.authorised", "publishes"),
            ("sub:payments.authorised", "svc:orders", "consumes"),
            ("svc:orders", "sub:orders.completed", "publishes"),
        ] {
            edges.insert((a.to_string(), b.to_string()), (k, 1, 0));
        }
        let starters: BTreeSet<String> = ["sub:orders.placed".to_string()].into();
        let ProjectionBody::Topology { nodes, edges: out } =
            layout(edges.clone(), &starters, Window::M1)
        else {
            panic!("not a topology")
        };
        let col = |id: &str| nodes.iter().find(|n| n.id == id).map(|n| n.column);
        assert_eq!(col("svc:orders"), Some(0));
        assert_eq!(col("sub:orders.placed"), Some(1));
        assert_eq!(col("svc:payments"), Some(2));
        assert_eq!(col("sub:payments.authorised"), Some(3));
        assert_eq!(out.len(), 5);
        // The same graph, the same places.
        let again = layout(edges, &starters, Window::M1);
        assert_eq!(again, ProjectionBody::Topology { nodes, edges: out });
    }
}
