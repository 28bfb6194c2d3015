//! Schema watch (PRODUCT.md F9): the shape of each kind of JSON payload,
//! inferred from the payloads themselves, and drift from it.
//!
//! A *schema* is kept per event type (a `type`, `event_type` or `@type`
//! string field) when the payload has one, else per subject group (ids in
//! subjects made `*`, as in the topology). For each field path (nested
//! objects as `a.b`, to depth 4) it counts the payloads that had it and the
//! JSON types seen, and keeps the first value seen as an example (text,
//! cut to 80 characters).
//!
//! Once a schema has [`ESTABLISHED`] samples, a payload that
//! - has a field never seen before raises **new field**;
//! - lacks a field every earlier payload had raises **missing field**;
//! - has a field with a type the field never had (and it always had one)
//!   raises **type change**.
//!
//! Each drift is raised once, then the schema takes the change in (the new
//! field is known, the type is one of two, the field is no longer always
//! there). The hub writes each drift into the log as an event on
//! [`DRIFT_SUBJECT`], so it is in the tail, the counts and time travel.
//!
//! Live only: the hub feeds it as events arrive; it is not part of the
//! time-travel fold (its drifts are events in the log, and those travel).
//!
//! Bounded: [`MAX_SCHEMAS`] schemas of [`MAX_FIELDS`] fields; at most
//! [`SAMPLES_PER_SEC`] payloads a second are read per subject, and
//! [`TOTAL_SAMPLES_PER_SEC`] in all (by received time), so many subjects
//! cannot make it read every payload (each read costs microseconds); the rest are
//! counted as skipped.

use super::topology::subject_group;
use crate::store::EventRef;
use app::api::{SchemaField, SchemaInfo};
use foldhash::HashMap;
use serde_json::Value;
use std::collections::BTreeMap;

/// Samples before a schema's drift is watched.
pub const ESTABLISHED: u64 = 20;
/// Schemas kept.
pub const MAX_SCHEMAS: usize = 500;
/// Fields kept per schema.
pub const MAX_FIELDS: usize = 200;
/// Payloads read per subject per second.
pub const SAMPLES_PER_SEC: u32 = 200;
/// Payloads read per second over all subjects: a few percent of a core
/// (a read of a 300-byte payload is 5 to 15 µs).
pub const TOTAL_SAMPLES_PER_SEC: u32 = 2_000;
/// Deepest nesting followed.
const MAX_DEPTH: usize = 4;
/// Subject the hub writes drift events to (never watched itself).
pub const DRIFT_SUBJECT: &str = "eventscope.schema.drift";

/// A drift found in a payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Drift {
    /// The schema's key.
    pub schema: String,
    /// The event's subject.
    pub subject: String,
    /// The field path.
    pub field: String,
    /// `new_field`, `missing_field` or `type_change`.
    pub kind: &'static str,
    /// The type(s) it had, for a type change.
    pub from: Option<String>,
    /// The type it has now (new field, type change).
    pub to: Option<String>,
    /// The event that showed it.
    pub event_id: u64,
}

impl Drift {
    /// The log event's payload.
    pub fn payload(&self) -> String {
        let what = match self.kind {
            "new_field" => format!("new field {}", self.field),
            "missing_field" => format!("missing field {}", self.field),
            _ => format!(
                "type change of {} ({} → {})",
                self.field,
                self.from.as_deref().unwrap_or("?"),
                self.to.as_deref().unwrap_or("?")
            ),
        };
        serde_json::json!({
            "level": "warn",
            "service": "eventscope",
            "msg": format!("schema drift in {}: {what}", self.schema),
            "drift": self.kind,
            "schema": self.schema,
            "subject": self.subject,
            "field": self.field,
            "from": self.from,
            "to": self.to,
            "event_id": self.event_id,
        })
        .to_string()
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        // 1 and 1.5 are the same type to a JSON reader.
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn example(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > 80 {
        text.chars().take(79).chain(['…']).collect()
    } else {
        text
    }
}

fn walk<'v>(prefix: &str, v: &'v Value, depth: usize, out: &mut Vec<(String, &'v Value)>) {
    if let Value::Object(map) = v {
        for (k, child) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.push((path.clone(), child));
            if depth + 1 < MAX_DEPTH {
                walk(&path, child, depth + 1, out);
            }
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Field {
    seen: u64,
    types: BTreeMap<&'static str, u64>,
    example: String,
}

#[derive(Clone, Debug, Default)]
struct Schema {
    subject: String,
    event_type: Option<String>,
    samples: u64,
    fields: BTreeMap<String, Field>,
    drifts: u64,
    last_drift_ms: Option<i64>,
}

/// Every schema and the drifts found.
#[derive(Clone, Debug, Default)]
pub struct Schemas {
    schemas: HashMap<String, Schema>,
    /// Subject id → (group, second, payloads read in it).
    budget: HashMap<u32, (String, i64, u32)>,
    /// (second, payloads read in it) over all subjects.
    total: (i64, u32),
    skipped: u64,
    drifts: u64,
    /// Drifts not yet taken by the hub (bounded).
    pending: Vec<Drift>,
}

impl Schemas {
    /// Reads one event's payload (if the budget allows).
    pub fn apply(&mut self, e: &EventRef<'_>) {
        let payload = e.payload();
        if payload.first() != Some(&b'{') {
            return;
        }
        let second = e.received_ms().div_euclid(1_000);
        // Bounded: subject ids are not (the log's dictionaries give new ones
        // as they let old ones go). Full, the table starts again (the total
        // budget still holds: a subject read this second may be read again).
        if self.budget.len() >= super::builtin::MAX_KEYS
            && !self.budget.contains_key(&e.subject_id())
        {
            self.budget.clear();
        }
        let budget = self
            .budget
            .entry(e.subject_id())
            .or_insert_with(|| (subject_group(e.subject()), i64::MIN, 0));
        if budget.0.starts_with("eventscope.") || super::topology::is_system(&budget.0) {
            return;
        }
        if budget.1 != second {
            budget.1 = second;
            budget.2 = 0;
        }
        if self.total.0 != second {
            self.total = (second, 0);
        }
        if budget.2 >= SAMPLES_PER_SEC || self.total.1 >= TOTAL_SAMPLES_PER_SEC {
            self.skipped += 1;
            return;
        }
        budget.2 += 1;
        self.total.1 += 1;
        let group = budget.0.clone();
        let Ok(value) = serde_json::from_slice::<Value>(payload) else {
            return;
        };
        let event_type = ["type", "event_type", "@type"]
            .iter()
            .find_map(|k| value.get(*k).and_then(Value::as_str))
            .map(str::to_string);
        let key = match &event_type {
            Some(t) => format!("{group} · {t}"),
            None => group.clone(),
        };
        if !self.schemas.contains_key(&key) && self.schemas.len() >= MAX_SCHEMAS {
            self.skipped += 1;
            return;
        }
        let mut fields = Vec::new();
        walk("", &value, 0, &mut fields);
        let schema = self.schemas.entry(key.clone()).or_insert_with(|| Schema {
            subject: group,
            event_type,
            ..Schema::default()
        });
        let watched = schema.samples >= ESTABLISHED;
        let mut found: Vec<Drift> = Vec::new();
        let drift = |field: &str, kind, from: Option<String>, to: Option<String>| Drift {
            schema: key.clone(),
            subject: e.subject().to_string(),
            field: field.to_string(),
            kind,
            from,
            to,
            event_id: e.id,
        };
        // Missing: fields every earlier payload had.
        if watched {
            for (path, f) in &schema.fields {
                if f.seen == schema.samples && !fields.iter().any(|(p, _)| p == path) {
                    found.push(drift(path, "missing_field", None, None));
                }
            }
        }
        for (path, v) in &fields {
            let t = type_name(v);
            let room = schema.fields.len() < MAX_FIELDS;
            match schema.fields.get_mut(path) {
                Some(f) => {
                    if watched && !f.types.contains_key(t) && f.types.len() == 1 {
                        let from = f.types.keys().next().map(|s| s.to_string());
                        found.push(drift(path, "type_change", from, Some(t.to_string())));
                    }
                    f.seen += 1;
                    *f.types.entry(t).or_default() += 1;
                }
                None if room => {
                    if watched {
                        found.push(drift(path, "new_field", None, Some(t.to_string())));
                    }
                    schema.fields.insert(
                        path.clone(),
                        Field {
                            seen: 1,
                            types: [(t, 1)].into(),
                            example: example(v),
                        },
                    );
                }
                None => {}
            }
        }
        schema.samples += 1;
        if !found.is_empty() {
            schema.drifts += found.len() as u64;
            schema.last_drift_ms = Some(e.received_ms());
            self.drifts += found.len() as u64;
            if self.pending.len() < 1_000 {
                self.pending.extend(found);
            }
        }
    }

    /// Drifts found since the last call (for the hub to log).
    pub fn take_drifts(&mut self) -> Vec<Drift> {
        std::mem::take(&mut self.pending)
    }

    /// Drifts found in all.
    pub fn drifts(&self) -> u64 {
        self.drifts
    }

    /// Payloads not read (over the budget, or past the schema cap).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Every schema, by key.
    pub fn list(&self) -> Vec<SchemaInfo> {
        let mut out: Vec<SchemaInfo> = self
            .schemas
            .iter()
            .map(|(key, s)| SchemaInfo {
                key: key.clone(),
                subject: s.subject.clone(),
                event_type: s.event_type.clone(),
                samples: s.samples,
                drifts: s.drifts,
                last_drift_ms: s.last_drift_ms,
                fields: s
                    .fields
                    .iter()
                    .map(|(path, f)| SchemaField {
                        path: path.clone(),
                        types: f.types.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                        presence: f.seen as f64 / s.samples.max(1) as f64,
                        example: f.example.clone(),
                    })
                    .collect(),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;
    use crate::store::Store;

    fn feed(schemas: &mut Schemas, store: &mut Store, subject: &str, payload: &str, t: i64) {
        let id = store
            .append(&NewEvent::core(subject, payload.to_string(), t))
            .expect("fits");
        schemas.apply(&store.get(id).expect("stored"));
    }

    #[test]
    fn drift_is_raised_exactly_when_the_shape_changes() {
        let (mut s, mut store) = (Schemas::default(), Store::new(64 << 20));
        for i in 0..ESTABLISHED {
            let p = format!(r#"{{"type":"Paid","amount":{i}.5,"meta":{{"by":"u{i}"}}}}"#);
            feed(&mut s, &mut store, "pay.1", &p, 1_000 + i as i64);
        }
        assert!(
            s.take_drifts().is_empty(),
            "nothing before it is established"
        );
        feed(
            &mut s,
            &mut store,
            "pay.2",
            r#"{"type":"Paid","amount":2.5,"meta":{"by":"x"}}"#,
            2_000,
        );
        assert!(
            s.take_drifts().is_empty(),
            "same shape, another id in the subject"
        );
        feed(
            &mut s,
            &mut store,
            "pay.3",
            r#"{"type":"Paid","amount":"2.5","meta":{"by":"x"}}"#,
            2_001,
        );
        let d = s.take_drifts();
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            (
                d[0].kind,
                d[0].field.as_str(),
                d[0].from.as_deref(),
                d[0].to.as_deref()
            ),
            ("type_change", "amount", Some("number"), Some("string"))
        );
        assert_eq!(d[0].schema, "pay.* · Paid");
        // Raised once: the same change again is known now.
        feed(
            &mut s,
            &mut store,
            "pay.3",
            r#"{"type":"Paid","amount":"3","meta":{"by":"x"}}"#,
            2_002,
        );
        assert!(s.take_drifts().is_empty());
        feed(
            &mut s,
            &mut store,
            "pay.3",
            r#"{"type":"Paid","amount":1.5,"meta":{"by":"x"},"coupon":"A"}"#,
            2_003,
        );
        let d = s.take_drifts();
        assert_eq!(
            (d.len(), d[0].kind, d[0].field.as_str()),
            (1, "new_field", "coupon")
        );
        feed(
            &mut s,
            &mut store,
            "pay.3",
            r#"{"type":"Paid","amount":1.5}"#,
            2_004,
        );
        let d: Vec<(&str, String)> = s
            .take_drifts()
            .into_iter()
            .map(|d| (d.kind, d.field))
            .collect();
        assert_eq!(
            d,
            [
                ("missing_field", "meta".to_string()),
                ("missing_field", "meta.by".to_string())
            ]
        );
        assert_eq!(s.drifts(), 4);
        let list = s.list();
        let amount = list[0]
            .fields
            .iter()
            .find(|f| f.path == "amount")
            .expect("amount");
        assert_eq!(amount.types.get("string"), Some(&2));
        assert_eq!(amount.example, "0.5");
    }

    #[test]
    fn the_per_subject_table_stays_bounded_however_many_subjects() {
        let (mut s, mut store) = (Schemas::default(), Store::new(256 << 20));
        for i in 0..super::super::builtin::MAX_KEYS * 2 + 10 {
            feed(
                &mut s,
                &mut store,
                &format!("burst.s{i}"),
                r#"{"x":1}"#,
                9_000,
            );
            assert!(s.budget.len() <= super::super::builtin::MAX_KEYS, "{i}");
        }
    }

    #[test]
    fn reads_at_most_the_budget_a_second_per_subject() {
        let (mut s, mut store) = (Schemas::default(), Store::new(64 << 20));
        for i in 0..SAMPLES_PER_SEC + 30 {
            feed(
                &mut s,
                &mut store,
                "a.b",
                r#"{"x":1}"#,
                5_000 + i64::from(i % 900),
            );
        }
        assert_eq!(s.skipped(), 30);
        assert_eq!(s.list()[0].samples, u64::from(SAMPLES_PER_SEC));
    }

    #[test]
    fn reads_at_most_the_total_budget_a_second_over_all_subjects() {
        let (mut s, mut store) = (Schemas::default(), Store::new(256 << 20));
        // 100 subjects, each under its own budget: the total caps them.
        let per_subject = TOTAL_SAMPLES_PER_SEC / 100 + 10;
        for i in 0..per_subject {
            for subject in 0..100 {
                feed(
                    &mut s,
                    &mut store,
                    &format!("s{subject}.x"),
                    r#"{"x":1}"#,
                    7_000 + i64::from(i % 900),
                );
            }
        }
        let read: u64 = s.list().iter().map(|x| x.samples).sum();
        assert_eq!(read, u64::from(TOTAL_SAMPLES_PER_SEC));
        assert_eq!(
            s.skipped(),
            u64::from(per_subject * 100 - TOTAL_SAMPLES_PER_SEC)
        );
        // The next second reads again.
        feed(&mut s, &mut store, "s0.x", r#"{"x":1}"#, 8_000);
        assert_eq!(s.list().iter().map(|x| x.samples).sum::<u64>(), read + 1);
    }
}
