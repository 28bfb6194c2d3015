//! Traffic like the users': what the load tool (`eventscope-load`) offers
//! and the core benches fold. Not used by the server itself.
//!
//! [`Profile::Realistic`] (the default) is what an event-driven system on
//! NATS publishes: requests through several services, each request's 3 to
//! 8 events sharing one trace id (`trace_id`, a correlation key, so the
//! flows and topology folds do real work), domain events with
//! `Nats-Msg-Id` and `Causation-Id` headers, JSON logs of the services
//! that handle them, about 10% metric samples with tags, about 1% errors,
//! and some request/reply through `_INBOX` subjects. Payloads are 240 to
//! 320 bytes on average (the unit test below holds the mix). [`Profile::Simple`] is the earlier profile: one
//! service, one subject, no correlation key.
//!
//! A [`Traffic`] is a pool of templates made before any clock starts;
//! message `i` is template `i % len` in "epoch" `i / len`, whose trace
//! ids, message ids and reply inboxes carry the epoch, so every message of
//! a run is distinct (the log's dedupe window would otherwise swallow a
//! repeated `Nats-Msg-Id`, and the flows fold would see one flow grow).

use bytes::Bytes;

/// Which traffic to make.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Requests across services with shared trace ids, headers, metrics,
    /// errors and request/reply (the default).
    #[default]
    Realistic,
    /// One service's logs on one subject, no correlation key.
    Simple,
}

/// One message to publish.
#[derive(Clone, Debug)]
pub struct Message {
    /// Its subject.
    pub subject: async_nats::Subject,
    /// The reply subject of a request.
    pub reply: Option<async_nats::Subject>,
    /// `(name, value)` headers.
    pub headers: Vec<(&'static str, String)>,
    /// The payload.
    pub payload: Bytes,
}

impl Message {
    /// The headers as async-nats wants them (`None` without headers).
    pub fn header_map(&self) -> Option<async_nats::HeaderMap> {
        if self.headers.is_empty() {
            return None;
        }
        let mut map = async_nats::HeaderMap::new();
        for (k, v) in &self.headers {
            map.insert(*k, v.as_str());
        }
        Some(map)
    }
}

/// Placeholder for the epoch in a template's strings: 8 hex digits.
const EPOCH: &str = "EEEEEEEE";

/// A template's subject.
#[derive(Clone, Debug)]
enum Subject {
    /// The same in every epoch (shared, no copy per message).
    Fixed(async_nats::Subject),
    /// With the placeholder (a reply inbox).
    PerEpoch(String),
}

#[derive(Clone, Debug)]
struct Template {
    subject: Subject,
    reply: Option<String>,
    headers: Vec<(&'static str, String)>,
    payload: Vec<u8>,
    /// Offsets of the placeholder in the payload.
    patch: Vec<usize>,
}

/// A pool of message templates; see the module's documentation.
#[derive(Clone, Debug)]
pub struct Traffic {
    templates: Vec<Template>,
}

/// The services of the realistic profile.
pub const SERVICES: [&str; 12] = [
    "gateway",
    "auth",
    "orders",
    "payments",
    "inventory",
    "shipping",
    "notify",
    "pricing",
    "search",
    "users",
    "cart",
    "audit",
];

/// Request kinds: each a chain of (service, domain event subject or `None`
/// for a log line only, log message). A request takes the chain's first 3
/// to 8 steps.
const CHAINS: [&[(usize, &str, &str)]; 4] = [
    // checkout
    &[
        (0, "", "POST /api/checkout accepted"),
        (2, "orders.created", "order created"),
        (3, "payments.authorized", "payment authorized"),
        (4, "inventory.reserved", "stock reserved"),
        (5, "shipping.scheduled", "shipment scheduled"),
        (6, "notify.email.sent", "confirmation email sent"),
        (11, "", "audit record written"),
        (2, "orders.completed", "order completed"),
    ],
    // search (the pricing lookup is a request/reply)
    &[
        (0, "", "GET /api/search accepted"),
        (8, "search.queried", "search executed"),
        (7, "?pricing.quote", "price quote requested"),
        (7, "", "price quote computed"),
        (8, "search.ranked", "results ranked"),
        (0, "", "GET /api/search answered"),
        (11, "", "audit record written"),
        (8, "search.completed", "search completed"),
    ],
    // sign-in
    &[
        (0, "", "POST /api/login accepted"),
        (1, "auth.challenge.issued", "challenge issued"),
        (9, "?users.lookup", "user record requested"),
        (1, "auth.session.created", "session created"),
        (11, "", "audit record written"),
        (1, "", "token signed"),
        (0, "", "POST /api/login answered"),
        (1, "auth.login.completed", "login completed"),
    ],
    // cart update
    &[
        (0, "", "PUT /api/cart accepted"),
        (10, "cart.item.added", "item added to cart"),
        (7, "pricing.recalculated", "cart repriced"),
        (4, "inventory.checked", "stock checked"),
        (10, "cart.updated", "cart updated"),
        (6, "", "push notification queued"),
        (11, "", "audit record written"),
        (10, "cart.completed", "cart update completed"),
    ],
];

/// Error messages (about 1% of events), some with a stack.
const ERRORS: [&str; 4] = [
    "payment declined: card_expired",
    "upstream timeout after 3000 ms",
    "constraint violation: duplicate key order_id",
    "panic: index out of range [5] with length 5\\n\\tat handler.go:142\\n\\tat server.go:88",
];

const METRICS: [(&str, &str); 4] = [
    ("http_request_duration_seconds", "route"),
    ("queue_depth", "queue"),
    ("db_query_seconds", "table"),
    ("cache_hit_ratio", "cache"),
];

const ROUTES: [&str; 6] = [
    "/api/checkout",
    "/api/search",
    "/api/login",
    "/api/cart",
    "/api/orders",
    "/api/users",
];

impl Traffic {
    /// A pool of `len` templates of `profile`, reproducible from `seed`.
    pub fn new(profile: Profile, len: usize, seed: u64) -> Traffic {
        let len = len.max(1);
        let templates = match profile {
            Profile::Simple => (0..len as u64).map(simple).collect(),
            Profile::Realistic => realistic(len, seed),
        };
        Traffic { templates }
    }

    /// Templates in the pool.
    pub fn len(&self) -> usize {
        self.templates.len()
    }

    /// Whether the pool is empty (never).
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// Message `i` of a run.
    pub fn message(&self, i: u64) -> Message {
        let n = self.templates.len() as u64;
        let t = &self.templates[(i % n) as usize];
        let epoch = format!("{:08x}", (i / n) as u32);
        let fill = |s: &str| s.replace(EPOCH, &epoch);
        let payload = if t.patch.is_empty() {
            Bytes::from(t.payload.clone())
        } else {
            let mut p = t.payload.clone();
            for &at in &t.patch {
                p[at..at + EPOCH.len()].copy_from_slice(epoch.as_bytes());
            }
            Bytes::from(p)
        };
        Message {
            subject: match &t.subject {
                Subject::Fixed(s) => s.clone(),
                Subject::PerEpoch(s) => fill(s).into(),
            },
            reply: t.reply.as_deref().map(|r| fill(r).into()),
            headers: t.headers.iter().map(|(k, v)| (*k, fill(v))).collect(),
            payload,
        }
    }
}

impl Message {
    /// The event Eventscope makes of this message received at
    /// `received_ms` (as core ingest does: headers sorted by name).
    pub fn into_event(
        self,
        received_ms: i64,
        decoders: &crate::ingest::decode::Decoders,
    ) -> crate::event::NewEvent {
        let mut headers: Vec<(String, String)> = self
            .headers
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        headers.sort_by(|a, b| a.0.cmp(&b.0));
        let decoded = decoders.decode_message(self.subject.as_str(), &self.payload, &headers);
        crate::event::NewEvent {
            received_ms,
            subject: self.subject,
            payload: self.payload,
            headers,
            reply: self.reply.map(|r| r.to_string()),
            source: crate::event::Source::Core,
            decoded,
        }
    }
}

/// The simple profile's event `i`: a JSON log of about 300 bytes.
fn simple(i: u64) -> Template {
    let mut p = format!(
        r#"{{"ts":{},"level":"{}","service":"load","msg":"request handled","request_id":"{i:016x}","latency_ms":{}"#,
        1_795_672_800_000u64 + i,
        if i.is_multiple_of(50) {
            "error"
        } else {
            "info"
        },
        i % 400
    );
    let pad = 299usize.saturating_sub(p.len() + 12);
    p.push_str(&format!(r#","pad":"{}"}}"#, "x".repeat(pad)));
    Template {
        subject: Subject::Fixed(async_nats::Subject::from_static("load.events")),
        reply: None,
        headers: Vec::new(),
        payload: p.into_bytes(),
        patch: Vec::new(),
    }
}

/// Offsets of every placeholder in `s`.
fn placeholders(s: &str) -> Vec<usize> {
    s.match_indices(EPOCH).map(|(at, _)| at).collect()
}

fn template(
    subject: String,
    reply: Option<String>,
    headers: Vec<(&'static str, String)>,
    payload: String,
) -> Template {
    Template {
        subject: if subject.contains(EPOCH) {
            Subject::PerEpoch(subject)
        } else {
            Subject::Fixed(subject.into())
        },
        reply,
        headers,
        patch: placeholders(&payload),
        payload: payload.into_bytes(),
    }
}

/// A metric sample of a random service.
fn metric(rng: &mut fastrand::Rng, ts: u64) -> Template {
    let service = SERVICES[rng.usize(..SERVICES.len())];
    let (name, tag) = METRICS[rng.usize(..METRICS.len())];
    let value = match name {
        "queue_depth" => f64::from(rng.u32(0..500)),
        "cache_hit_ratio" => (rng.f64() * 1e3).round() / 1e3,
        _ => (rng.f64() * 0.25 * 1e4).round() / 1e4,
    };
    let payload = format!(
        r#"{{"name":"{name}","value":{value},"ts":{ts},"unit":"{}","tags":{{"service":"{service}","{tag}":"{}","region":"eu-west-{}","instance":"{service}-{}","env":"production"}}}}"#,
        if name.ends_with("seconds") {
            "seconds"
        } else {
            "1"
        },
        ROUTES[rng.usize(..ROUTES.len())],
        rng.u8(1..4),
        rng.u8(0..6),
    );
    template(format!("metrics.{service}"), None, Vec::new(), payload)
}

/// The realistic profile's first `len` messages.
fn realistic(len: usize, seed: u64) -> Vec<Template> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::with_capacity(len + 8);
    let mut request = 0u64;
    let mut ts = 1_795_672_800_000u64;
    while out.len() < len {
        // About 10% metric samples, between requests' events: one per nine
        // other messages on average.
        let before = out.len();
        request += 1;
        let trace = format!(
            "{EPOCH}{:024x}",
            request.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        );
        let chain = CHAINS[rng.usize(..CHAINS.len())];
        // The request's events: 3 to 8, its chain's first ones.
        let events = rng.usize(3..=8);
        let mut req: Vec<Template> = Vec::with_capacity(24);
        let user = rng.u32(1..50_000);
        let mut last_msg_id: Option<String> = None;
        for (step, &(svc, event, text)) in chain.iter().enumerate() {
            if req.len() >= events {
                break;
            }
            let service = SERVICES[svc];
            let error = rng.u32(0..100) == 0;
            let span = format!("{:016x}", rng.u64(..));
            let duration = rng.u32(1..250);
            let (level, msg) = if error {
                ("error", ERRORS[rng.usize(..ERRORS.len())])
            } else {
                ("info", text)
            };
            let log = format!(
                r#"{{"ts":{ts},"level":"{level}","service":"{service}","msg":"{msg}","trace_id":"{trace}","span_id":"{span}","user_id":"u-{user}","route":"{}","status":{},"duration_ms":{duration},"client_ip":"10.{}.{}.{}","host":"{service}-{}","version":"1.{}.{}"}}"#,
                ROUTES[rng.usize(..ROUTES.len())],
                if error { 500 } else { 200 },
                rng.u8(0..255),
                rng.u8(0..255),
                rng.u8(1..255),
                rng.u8(0..6),
                rng.u8(0..20),
                rng.u8(0..10),
            );
            ts += 1;
            if event.is_empty() {
                req.push(template(format!("logs.{service}"), None, Vec::new(), log));
                continue;
            }
            let (request_reply, subject) = match event.strip_prefix('?') {
                Some(s) => (true, s),
                None => (false, event),
            };
            let msg_id = format!("{trace}-{step}");
            let mut headers = vec![("Nats-Msg-Id", msg_id.clone())];
            if let Some(cause) = &last_msg_id {
                headers.push(("Causation-Id", cause.clone()));
            }
            let kind = subject.replace('.', "_");
            let body = format!(
                r#"{{"type":"{kind}","trace_id":"{trace}","service":"{service}","ts":{ts},"user_id":"u-{user}","order_id":"ord-{}","amount":{}.{:02},"currency":"EUR","items":{},"sku":"SKU-{:05}","ship_to":{{"country":"{}","city":"{}"}}}}"#,
                rng.u32(100_000..999_999),
                rng.u32(1..900),
                rng.u8(0..100),
                rng.u8(1..6),
                rng.u32(0..99_999),
                ["DE", "FR", "NL", "ES", "IT"][rng.usize(..5)],
                ["Berlin", "Paris", "Utrecht", "Madrid", "Milan"][rng.usize(..5)],
            );
            let reply = request_reply.then(|| format!("_INBOX.{service}.{trace}.{step}"));
            req.push(template(subject.to_string(), reply.clone(), headers, body));
            ts += 1;
            if let Some(inbox) = reply {
                // The answer, by the service asked.
                let answer = format!(
                    r#"{{"trace_id":"{trace}","ok":{},"service":"{service}","ts":{ts},"took_ms":{duration},"result":{{"price":{}.{:02},"currency":"EUR","valid_for_s":300}}}}"#,
                    !error,
                    rng.u32(1..900),
                    rng.u8(0..100)
                );
                req.push(template(inbox, None, Vec::new(), answer));
                ts += 1;
            } else {
                last_msg_id = Some(msg_id);
            }
            // The service's log line for the step.
            req.push(template(format!("logs.{service}"), None, Vec::new(), log));
        }
        req.truncate(events);
        out.extend(req);
        for _ in before..out.len() {
            if rng.u32(0..9) == 0 {
                out.push(metric(&mut rng, ts));
                ts += 1;
            }
        }
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realistic_traffic_has_the_promised_mix() {
        let t = Traffic::new(Profile::Realistic, 20_000, 7);
        let msgs: Vec<Message> = (0..20_000).map(|i| t.message(i)).collect();
        let share = |f: &dyn Fn(&Message) -> bool| {
            msgs.iter().filter(|m| f(m)).count() as f64 / msgs.len() as f64
        };
        let text = |m: &Message| String::from_utf8_lossy(&m.payload).into_owned();
        let metrics = share(&|m| m.subject.starts_with("metrics."));
        assert!((0.05..0.15).contains(&metrics), "metrics {metrics}");
        let errors = share(&|m| text(m).contains(r#""level":"error""#));
        assert!((0.003..0.03).contains(&errors), "errors {errors}");
        let requests = share(&|m| m.reply.is_some());
        assert!(requests > 0.005, "requests {requests}");
        let with_headers = share(&|m| !m.headers.is_empty());
        assert!(with_headers > 0.2, "headers {with_headers}");
        let mean = msgs.iter().map(|m| m.payload.len()).sum::<usize>() as f64 / msgs.len() as f64;
        assert!((240.0..320.0).contains(&mean), "mean payload {mean}");
        // Trace ids are shared by 3 to 8 events of one request.
        let mut by_trace = std::collections::HashMap::<String, usize>::new();
        for m in &msgs {
            let p = text(m);
            if let Some(at) = p.find(r#""trace_id":""#) {
                let id = &p[at + 12..at + 12 + 32];
                *by_trace.entry(id.to_string()).or_default() += 1;
            }
        }
        let sizes: Vec<usize> = by_trace.values().copied().collect();
        let mean_events = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
        assert!(
            (3.0..9.0).contains(&mean_events),
            "events per trace {mean_events}"
        );
        assert!(sizes.iter().all(|&n| n <= 8), "{sizes:?}");
        let services: std::collections::HashSet<_> = msgs
            .iter()
            .filter_map(|m| m.subject.strip_prefix("logs."))
            .collect();
        assert!(services.len() >= 8, "{services:?}");
    }

    #[test]
    fn every_message_of_a_run_is_distinct() {
        let t = Traffic::new(Profile::Realistic, 1_000, 1);
        let a = t.message(5);
        let b = t.message(1_005);
        assert_eq!(a.subject, b.subject);
        assert_ne!(a.payload, b.payload);
        assert!(!a.payload.windows(8).any(|w| w == EPOCH.as_bytes()));
        assert!(a.headers.iter().all(|(_, v)| !v.contains(EPOCH)));
        let ids = |m: &Message| {
            m.headers
                .iter()
                .find(|(k, _)| *k == "Nats-Msg-Id")
                .map(|(_, v)| v.clone())
        };
        let with_id = (0..1_000)
            .find(|&i| ids(&t.message(i)).is_some())
            .expect("a message with an id");
        assert_ne!(ids(&t.message(with_id)), ids(&t.message(with_id + 1_000)));
        // Every payload is JSON.
        for i in 0..1_000 {
            let m = t.message(i);
            serde_json::from_slice::<serde_json::Value>(&m.payload)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&m.payload)));
        }
    }
}
