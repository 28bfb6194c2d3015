//! Queries over the event log: filters (subject pattern, level, service,
//! kind, free text, field predicates, id and time bounds) and cursor
//! paging, newest first.

use super::{EventRef, Store};
use crate::ingest::decode::{Kind, Level};
use std::collections::HashSet;

pub use crate::event::subject_matches;

/// What to look for. Every set filter must hold.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// NATS subject pattern.
    pub subject: Option<String>,
    /// Levels to keep (any of).
    pub levels: Vec<Level>,
    /// Service, exactly.
    pub service: Option<String>,
    /// Kind.
    pub kind: Option<Kind>,
    /// Text the payload must contain (ASCII case-insensitive).
    pub text: Option<TextFilter>,
    /// `(dotted.path, value)`: the JSON payload's field must equal value
    /// (compared as text).
    pub fields: Vec<(String, String)>,
    /// Only ids greater than this.
    pub after_id: Option<u64>,
    /// Only ids smaller than this (the paging cursor).
    pub before_id: Option<u64>,
    /// Only events received at or after this (Unix ms).
    pub since_ms: Option<i64>,
    /// Only events received at or before this (Unix ms).
    pub until_ms: Option<i64>,
    /// At most this many results.
    pub limit: usize,
    /// Examine at most this many events (0: no bound). A page cut short by
    /// it still has a `next_before`, so paging goes on from where it
    /// stopped: one query never holds the log for long.
    pub max_scan: usize,
    /// Read at most this many payload bytes for the text and field filters
    /// (0: no bound); cut short the same way. A scan of 1 MiB payloads
    /// costs per byte, not per event.
    pub max_scan_bytes: usize,
    /// Stop examining at this instant, cut short the same way.
    pub deadline: Option<std::time::Instant>,
    /// Only subjects this scope allows (who asks may see no other).
    pub scope: Option<std::sync::Arc<crate::access::scope::Scope>>,
    /// Leave out the audit trail's records (`eventscope.audit.*`): the
    /// asker is not an admin.
    pub hide_audit: bool,
    /// The asker's masks: `q` and `field` match the masked payload too, so
    /// a masked value cannot be found by guessing it.
    pub masks: Option<std::sync::Arc<crate::access::mask::Masks>>,
}

impl Query {
    /// Whether `subject` passes the subject filter and the scope.
    fn subject_passes(&self, subject: &str) -> bool {
        self.subject
            .as_ref()
            .is_none_or(|p| subject_matches(p, subject))
            && self.scope.as_ref().is_none_or(|s| s.allows(subject))
            && !(self.hide_audit && subject.starts_with(crate::access::audit::SUBJECT_PREFIX))
    }

    /// Whether a scoped reader may see an event of Eventscope's own about
    /// another subject: a schema drift names the subject it was seen on.
    fn scope_payload_ok(&self, subject: &str, payload: &[u8]) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|s| s.allows_named(subject, payload))
    }

    /// Whether the masked payload still matches the text and field
    /// filters (only asked of events whose stored payload matched).
    fn masked_matches(&self, payload: &[u8]) -> bool {
        let Some(masks) = &self.masks else {
            return true;
        };
        if self.text.is_none() && self.fields.is_empty() {
            return true;
        }
        match masks.payload(payload) {
            None => true,
            Some((masked, _)) => {
                self.text
                    .as_ref()
                    .is_none_or(|t| t.is_in(masked.as_bytes()))
                    && (self.fields.is_empty() || fields_match(masked.as_bytes(), &self.fields))
            }
        }
    }
}

/// Free text to find in payloads, ASCII case-insensitively, in time linear
/// in the payload (Aho-Corasick): a needle and payload chosen to defeat a
/// naive search (`aaaa…b` in `aaaa…a`) cost no more than any other.
#[derive(Clone, Debug)]
pub struct TextFilter {
    text: String,
    finder: aho_corasick::AhoCorasick,
}

impl TextFilter {
    /// A filter for `text` (empty text matches everything).
    pub fn new(text: &str) -> Self {
        let finder = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build([text])
            .expect("one literal pattern always builds");
        TextFilter {
            text: text.to_string(),
            finder,
        }
    }

    /// The text looked for.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `hay` contains the text.
    pub fn is_in(&self, hay: &[u8]) -> bool {
        self.text.is_empty() || self.finder.is_match(hay)
    }
}

/// One page of results.
#[derive(Debug)]
pub struct Page<'a> {
    /// Matching events, newest first.
    pub events: Vec<EventRef<'a>>,
    /// Pass as `before_id` for the next (older) page; `None` at the end.
    pub next_before: Option<u64>,
    /// Events examined.
    pub scanned: usize,
    /// Payload bytes read by the text and field filters.
    pub scanned_bytes: usize,
}

/// Whether the JSON payload has every `(path, value)` of `fields`: the
/// payload is parsed once, whatever the number of fields.
fn fields_match(payload: &[u8], fields: &[(String, String)]) -> bool {
    // Only an object or an array has fields: skip the parse otherwise.
    let starts = payload.iter().find(|b| !b.is_ascii_whitespace());
    if !matches!(starts, Some(b'{' | b'[')) {
        return false;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return false;
    };
    fields
        .iter()
        .all(|(path, want)| field_equals(&v, path, want))
}

fn field_equals(v: &serde_json::Value, path: &str, want: &str) -> bool {
    let mut cur = v;
    for key in path.split('.') {
        cur = match cur {
            serde_json::Value::Object(m) => match m.get(key) {
                Some(x) => x,
                None => return false,
            },
            serde_json::Value::Array(a) => match key.parse::<usize>().ok().and_then(|i| a.get(i)) {
                Some(x) => x,
                None => return false,
            },
            _ => return false,
        };
    }
    match cur {
        serde_json::Value::String(s) => s == want,
        serde_json::Value::Null => want == "null",
        // Numbers and booleans compare by their JSON text ("42", "true").
        other => want.parse::<serde_json::Value>().is_ok_and(|w| w == *other),
    }
}

impl Store {
    /// Runs `q`, newest first.
    pub fn query(&self, q: &Query) -> Page<'_> {
        let limit = q.limit.max(1);
        // Resolve the subject pattern against the dictionary once (events
        // that keep their own subject are matched one by one).
        let subjects: Option<HashSet<u32>> =
            (q.subject.is_some() || q.scope.is_some() || q.hide_audit).then(|| {
                self.subjects()
                    .iter()
                    .filter(|(_, s)| q.subject_passes(s))
                    .map(|(id, _)| id)
                    .collect()
            });
        let service = match &q.service {
            Some(name) => match self.services().get(name) {
                Some(id) => Some(id),
                None => {
                    return Page {
                        events: Vec::new(),
                        next_before: None,
                        scanned: 0,
                        scanned_bytes: 0,
                    };
                }
            },
            None => None,
        };
        let upper = q.before_id.map_or(u64::MAX, |b| b.saturating_sub(1));
        let upper = match q.until_ms {
            Some(ms) => upper.min(self.last_id_at(ms).unwrap_or(0)),
            None => upper,
        };
        let reads_payload = q.text.is_some() || !q.fields.is_empty();
        let mut events = Vec::with_capacity(limit.min(1024));
        let mut scanned = 0;
        let mut scanned_bytes = 0;
        let mut more = false;
        let mut last_scanned = None;
        for e in self.iter_rev_upto(upper) {
            if (q.max_scan > 0 && scanned >= q.max_scan)
                || (q.max_scan_bytes > 0 && scanned_bytes >= q.max_scan_bytes)
                || (scanned % 64 == 63
                    && q.deadline.is_some_and(|d| std::time::Instant::now() >= d))
            {
                more = true;
                break;
            }
            if q.after_id.is_some_and(|a| e.id <= a)
                || q.since_ms.is_some_and(|s| e.received_ms() < s)
            {
                break;
            }
            scanned += 1;
            if reads_payload {
                scanned_bytes += e.payload().len();
            }
            last_scanned = Some(e.id);
            if subjects.as_ref().is_some_and(|set| {
                // A subject kept in the event is matched by its own text.
                if e.subject_is_own() {
                    !q.subject_passes(e.subject())
                } else {
                    !set.contains(&e.subject_id())
                }
            }) || service.is_some_and(|id| e.service_id() != id)
                || (!q.levels.is_empty() && !e.level().is_some_and(|l| q.levels.contains(&l)))
                || q.kind.is_some_and(|k| e.kind() != k)
                || q.text.as_ref().is_some_and(|t| !t.is_in(e.payload()))
                || (!q.fields.is_empty() && !fields_match(e.payload(), &q.fields))
                || !q.masked_matches(e.payload())
                || !q.scope_payload_ok(e.subject(), e.payload())
            {
                continue;
            }
            if events.len() == limit {
                more = true;
                break;
            }
            events.push(e);
        }
        let next_before = match (more, events.len() == limit) {
            (false, _) => None,
            // A full page: continue below its last event.
            (true, true) => events.last().map(|e| e.id),
            // The scan budget ran out: continue below what was examined.
            (true, false) => last_scanned,
        };
        Page {
            events,
            next_before,
            scanned,
            scanned_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;

    #[test]
    fn case_insensitive_search() {
        let f = |h: &str, n: &str| TextFilter::new(n).is_in(h.as_bytes());
        assert!(f("Payment DECLINED", "declined"));
        assert!(f("abc", ""));
        assert!(f("aaab", "AAB"));
        assert!(!f("decline", "declined"));
        assert!(!f("", "x"));
        assert!(f("x", "X"));
        assert!(!f("ab", "abc"));
    }

    #[test]
    fn nats_wildcards() {
        assert!(subject_matches("logs.>", "logs.a.b"));
        assert!(!subject_matches("logs.>", "logs"));
        assert!(subject_matches("metrics.*.cpu", "metrics.h1.cpu"));
        assert!(!subject_matches("metrics.*.cpu", "metrics.h1.mem"));
        assert!(!subject_matches("a.*", "a.b.c"));
        assert!(subject_matches("a.b", "a.b"));
        assert!(subject_matches(">", "x"));
    }

    fn store() -> Store {
        let mut s = Store::new(64 << 20);
        let rows = [
            (
                "logs.orders",
                r#"{"level":"info","msg":"order placed","user":{"id":7}}"#,
            ),
            (
                "logs.orders",
                r#"{"level":"error","msg":"Payment DECLINED","user":{"id":8}}"#,
            ),
            ("logs.payments", r#"{"level":"warn","msg":"retry"}"#),
            ("metrics.orders", r#"{"name":"lat","value":3}"#),
            (
                "logs.orders",
                r#"{"level":"error","msg":"timeout","user":{"id":7}}"#,
            ),
        ];
        for (i, (subj, p)) in rows.iter().enumerate() {
            s.append(&NewEvent::core(subj, p.to_string(), i as i64 * 1000))
                .expect("stored");
        }
        s
    }

    fn ids(p: &Page) -> Vec<u64> {
        p.events.iter().map(|e| e.id).collect()
    }

    #[test]
    fn filters_combine() {
        let s = store();
        let q = |f: &dyn Fn(&mut Query)| {
            let mut q = Query {
                limit: 100,
                ..Query::default()
            };
            f(&mut q);
            ids(&s.query(&q))
        };
        assert_eq!(q(&|_| {}), vec![5, 4, 3, 2, 1]);
        assert_eq!(q(&|q| q.subject = Some("logs.*".into())), vec![5, 3, 2, 1]);
        assert_eq!(q(&|q| q.levels = vec![Level::Error]), vec![5, 2]);
        assert_eq!(q(&|q| q.service = Some("payments".into())), vec![3]);
        assert_eq!(q(&|q| q.service = Some("nope".into())), Vec::<u64>::new());
        assert_eq!(q(&|q| q.kind = Some(Kind::Metric)), vec![4]);
        assert_eq!(q(&|q| q.text = Some(TextFilter::new("declined"))), vec![2]);
        assert_eq!(
            q(&|q| q.fields = vec![("user.id".into(), "7".into())]),
            vec![5, 1]
        );
        assert_eq!(
            q(&|q| {
                q.since_ms = Some(1000);
                q.until_ms = Some(3000)
            }),
            vec![4, 3, 2]
        );
        assert_eq!(q(&|q| q.after_id = Some(3)), vec![5, 4]);
    }

    #[test]
    fn a_scan_budget_cuts_pages_short_but_paging_reaches_everything() {
        let s = store();
        let mut q = Query {
            limit: 10,
            max_scan: 2,
            levels: vec![Level::Error],
            ..Query::default()
        };
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = s.query(&q);
            pages += 1;
            assert!(page.scanned <= 2);
            seen.extend(ids(&page));
            match page.next_before {
                Some(c) => q.before_id = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, vec![5, 2]);
        assert_eq!(pages, 3, "5 events, 2 per page");
    }

    #[test]
    fn cursor_paging_visits_everything_once() {
        let s = store();
        let mut q = Query {
            limit: 2,
            ..Query::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = s.query(&q);
            seen.extend(ids(&page));
            match page.next_before {
                Some(c) => q.before_id = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, vec![5, 4, 3, 2, 1]);
    }

    #[test]
    fn text_that_defeats_a_naive_search_is_still_found_or_not() {
        // `aaa…ab` in `aaa…a`: a search that compares the needle at every
        // place the first byte occurs does payload × needle work.
        let hay = vec![b'a'; 1 << 20];
        let needle = format!("{}b", "A".repeat(4_000));
        let filter = TextFilter::new(&needle);
        assert!(!filter.is_in(&hay));
        let mut hay = hay;
        hay.extend_from_slice(b"b");
        assert!(filter.is_in(&hay), "case-insensitive, at the very end");
    }

    #[test]
    fn a_byte_budget_cuts_pages_of_large_payloads_short() {
        let mut s = Store::new(1 << 30);
        let big = format!("{{\"msg\":\"{}\"}}", "x".repeat(1 << 20));
        for i in 0..20 {
            s.append(&NewEvent::core("big.one", big.clone(), i))
                .expect("kept");
        }
        let mut q = Query {
            limit: 100,
            text: Some(TextFilter::new("never there")),
            max_scan_bytes: 5 << 20,
            ..Query::default()
        };
        let mut pages = 0;
        let mut scanned = 0;
        loop {
            let page = s.query(&q);
            pages += 1;
            assert!(page.events.is_empty());
            assert!(
                page.scanned_bytes <= (5 << 20) + big.len(),
                "{}",
                page.scanned_bytes
            );
            scanned += page.scanned;
            match page.next_before {
                Some(c) => q.before_id = Some(c),
                None => break,
            }
        }
        assert_eq!(scanned, 20, "paging still reaches every event");
        assert_eq!(pages, 4, "5 MiB of 1 MiB payloads a page");
        // Without text or field filters, payloads are not read or counted.
        let page = s.query(&Query {
            limit: 100,
            max_scan_bytes: 5 << 20,
            ..Query::default()
        });
        assert_eq!((page.events.len(), page.scanned_bytes), (20, 0));
    }

    #[test]
    fn several_fields_are_read_from_one_parse_and_all_must_hold() {
        let p = br#"{"user":{"id":7,"name":"ann"},"tags":["a","b"],"ok":true}"#;
        let f = |fields: &[(&str, &str)]| {
            let fields: Vec<(String, String)> = fields
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            fields_match(p, &fields)
        };
        assert!(f(&[
            ("user.id", "7"),
            ("user.name", "ann"),
            ("tags.1", "b")
        ]));
        assert!(f(&[("ok", "true")]));
        assert!(!f(&[("user.id", "7"), ("user.name", "bob")]));
        assert!(!fields_match(
            b"user.id=7",
            &[("user.id".into(), "7".into())]
        ));
    }

    #[test]
    fn walking_back_from_an_id_matches_filtering_the_whole_log() {
        let mut s = Store::new(1 << 30);
        // Enough events for several chunks.
        for i in 0..50_000 {
            s.append(&NewEvent::core("a.b", format!("{{\"i\":{i}}}"), i))
                .expect("kept");
        }
        for upto in [
            0,
            1,
            2,
            4_095,
            4_096,
            4_097,
            25_000,
            49_999,
            50_000,
            u64::MAX,
        ] {
            let walked: Vec<u64> = s.iter_rev_upto(upto).map(|e| e.id).take(5_000).collect();
            let filtered: Vec<u64> = s
                .iter_rev()
                .filter(|e| e.id <= upto)
                .map(|e| e.id)
                .take(5_000)
                .collect();
            assert_eq!(walked, filtered, "upto {upto}");
        }
    }
}
