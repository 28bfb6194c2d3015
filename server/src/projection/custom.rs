//! User-defined projections, declared in the config file (`[[projection]]`):
//! a subject filter, predicates on fields, a group-by field, an aggregation
//! and a default window. Folded with the built-ins, in the same pass, so
//! they are time-travelable too.
//!
//! ```toml
//! [[projection]]
//! name = "slow_payments"
//! subject = "metrics.>"
//! where = ["name == http_request_duration_ms", "value > 200"]
//! group_by = "tags.service"
//! aggregate = "quantiles"      # count, rate, sum, min, max, mean, quantiles, distinct, total
//! field = "value"
//! window = "15m"
//! ```
//!
//! A field is `subject`, `service`, `level`, `kind`, or a dotted path into
//! the JSON payload (`user.id`, `items.0.sku`). Predicates are
//! `field op value` with `==`, `!=`, `>`, `>=`, `<`, `<=` (numbers compare
//! as numbers) or `~` (contains).

use super::builtin::Series;
use super::weight::{self, Weight};
use super::window::MultiRes;
use crate::event::subject_matches;
use crate::store::EventRef;
use app::api::{CustomGroup, ProjectionBody, Window};
use foldhash::{HashMap, HashSet};
use serde::Deserialize;

/// Groups kept per projection; further groups are counted under
/// [`OVERFLOW_GROUP`].
const MAX_GROUPS: usize = 1_000;
/// Distinct values remembered per time bucket.
const MAX_DISTINCT_PER_BUCKET: usize = 100_000;
/// Group of events whose group-by field is missing.
pub const NO_GROUP: &str = "(none)";
/// Group of events past [`MAX_GROUPS`].
pub const OVERFLOW_GROUP: &str = "(other groups)";

/// What a projection computes per group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// Events.
    Count,
    /// Events per second.
    Rate,
    /// Sum of the field.
    Sum,
    /// Smallest value of the field.
    Min,
    /// Largest value of the field.
    Max,
    /// Mean of the field.
    Mean,
    /// p50, p90 and p99 of the field (1% relative error).
    Quantiles,
    /// Distinct values of the field.
    Distinct,
    /// Sum of the field over every event folded since the start, not
    /// windowed: a running balance (an event-sourced account's, say).
    Total,
}

impl Aggregate {
    fn as_str(self) -> &'static str {
        match self {
            Aggregate::Count => "count",
            Aggregate::Rate => "rate",
            Aggregate::Sum => "sum",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Mean => "mean",
            Aggregate::Quantiles => "quantiles",
            Aggregate::Distinct => "distinct",
            Aggregate::Total => "total",
        }
    }

    fn needs_field(self) -> bool {
        !matches!(self, Aggregate::Count | Aggregate::Rate)
    }
}

fn default_subject() -> String {
    ">".to_string()
}

fn default_window() -> String {
    "1m".to_string()
}

/// A `[[projection]]` entry of the config file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectionDef {
    /// Name, as used in `/api/v1/projections/{name}`.
    pub name: String,
    /// Subject pattern of the events it folds.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// Predicates every folded event must meet.
    #[serde(default, rename = "where")]
    pub predicates: Vec<String>,
    /// Field to group by; none: one group.
    pub group_by: Option<String>,
    /// The aggregation.
    pub aggregate: Aggregate,
    /// The field aggregated (all but count and rate need one).
    pub field: Option<String>,
    /// Default window.
    #[serde(default = "default_window")]
    pub window: String,
}

impl ProjectionDef {
    /// The projection demo mode defines: each demo account's balance, the
    /// running total of its events' signed `amount`.
    pub fn account_balances() -> Self {
        ProjectionDef {
            name: "account_balances".to_string(),
            subject: "accounts.>".to_string(),
            predicates: Vec::new(),
            group_by: Some("account".to_string()),
            aggregate: Aggregate::Total,
            field: Some("amount".to_string()),
            window: "1h".to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Contains,
}

#[derive(Clone, Debug, PartialEq)]
struct Predicate {
    field: String,
    op: Op,
    value: String,
}

impl Predicate {
    fn parse(s: &str) -> Result<Predicate, String> {
        // Longest operators first, so ">=" is not read as ">".
        for (token, op) in [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            (">=", Op::Ge),
            ("<=", Op::Le),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("~", Op::Contains),
        ] {
            if let Some((field, value)) = s.split_once(token) {
                let (field, value) = (field.trim(), value.trim());
                if field.is_empty() {
                    return Err(format!("{s:?} has no field before {token}"));
                }
                return Ok(Predicate {
                    field: field.to_string(),
                    op,
                    value: value.trim_matches('"').to_string(),
                });
            }
        }
        Err(format!(
            "{s:?} is not a predicate; write `field op value` with ==, !=, >, >=, <, <= or ~"
        ))
    }

    fn holds(&self, actual: Option<&str>) -> bool {
        let Some(actual) = actual else {
            return self.op == Op::Ne;
        };
        let numbers = actual
            .parse::<f64>()
            .ok()
            .zip(self.value.parse::<f64>().ok());
        match (self.op, numbers) {
            (Op::Contains, _) => actual.contains(self.value.as_str()),
            (Op::Eq, Some((a, b))) => a == b,
            (Op::Ne, Some((a, b))) => a != b,
            (Op::Eq, None) => actual == self.value,
            (Op::Ne, None) => actual != self.value,
            (Op::Gt, Some((a, b))) => a > b,
            (Op::Ge, Some((a, b))) => a >= b,
            (Op::Lt, Some((a, b))) => a < b,
            (Op::Le, Some((a, b))) => a <= b,
            (Op::Gt | Op::Ge | Op::Lt | Op::Le, None) => false,
        }
    }
}

impl ProjectionDef {
    /// Checks the entry; the message says which part is wrong.
    /// Checks the definition; an error names the key at fault (`name`,
    /// `field`, `window` or `where`) and what is wrong.
    pub fn validate(&self, builtin_names: &[String]) -> Result<(), (&'static str, String)> {
        if self.name.is_empty() || self.name.contains(['/', '?', '#', ' ']) {
            return Err((
                "name",
                format!(
                    "name {:?} must be non-empty, without spaces, / ? or #",
                    self.name
                ),
            ));
        }
        if builtin_names.contains(&self.name) {
            return Err((
                "name",
                format!("name {:?} is a built-in projection's", self.name),
            ));
        }
        if self.aggregate.needs_field() && self.field.is_none() {
            return Err((
                "field",
                format!("aggregate {:?} needs a `field`", self.aggregate.as_str()),
            ));
        }
        Window::parse(&self.window).ok_or_else(|| {
            (
                "window",
                format!("window {:?}: use 1s, 10s, 1m, 15m or 1h", self.window),
            )
        })?;
        for p in &self.predicates {
            Predicate::parse(p).map_err(|e| ("where", e))?;
        }
        Ok(())
    }

    /// The default window.
    pub fn default_window(&self) -> Window {
        Window::parse(&self.window).unwrap_or(Window::M1)
    }
}

/// The looked-up value of a field of one event, as text.
fn field_value(
    e: &EventRef<'_>,
    json: &mut Option<Option<serde_json::Value>>,
    path: &str,
) -> Option<String> {
    match path {
        "subject" => return Some(e.subject().to_string()),
        "service" => return e.service().map(str::to_string),
        "level" => return e.level().map(|l| l.as_str().to_string()),
        "kind" => return Some(e.kind().as_str().to_string()),
        _ => {}
    }
    let root = json
        .get_or_insert_with(|| serde_json::from_slice(e.payload()).ok())
        .as_ref()?;
    let mut cur = root;
    for key in path.split('.') {
        cur = match cur {
            serde_json::Value::Object(m) => m.get(key)?,
            serde_json::Value::Array(a) => a.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(match cur {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => return None,
        other => other.to_string(),
    })
}

/// One group's buckets.
#[derive(Clone, Debug, Default)]
struct Group {
    count: MultiRes<u32>,
    values: Series,
    distinct: MultiRes<HashSet<u64>>,
    /// For `total`: events and their sum since the start.
    total: (u64, f64),
}

/// A user-defined projection's state.
#[derive(Clone, Debug)]
pub struct Custom {
    def: ProjectionDef,
    predicates: Vec<Predicate>,
    groups: HashMap<String, Group>,
}

impl Custom {
    /// An empty projection for a validated `def`.
    pub fn new(def: ProjectionDef) -> Self {
        let predicates = def
            .predicates
            .iter()
            .filter_map(|p| Predicate::parse(p).ok())
            .collect();
        Custom {
            def,
            predicates,
            groups: HashMap::default(),
        }
    }

    /// What its groups weigh beside `prev`, the same projection in the
    /// state before ([`super::weight`]).
    pub fn weight(&self, prev: Option<&Custom>) -> Weight {
        let mut w = Weight::own(weight::map(&self.groups));
        for (key, g) in &self.groups {
            w += Weight::own(
                key.capacity()
                    + g.count.slot_bytes()
                    + g.distinct.slot_bytes()
                    + g.distinct
                        .rings()
                        .iter()
                        .flat_map(|r| r.slots())
                        .map(weight::set)
                        .sum::<usize>(),
            );
            w += g
                .values
                .weight(prev.and_then(|p| p.groups.get(key)).map(|p| &p.values));
        }
        w
    }

    /// Adds `other`'s groups (the same definition, another partition's
    /// events) into this one's.
    pub fn absorb(&mut self, other: &Custom) {
        for (key, g) in &other.groups {
            let Some(mine) = self.groups.get_mut(key) else {
                self.groups.insert(key.clone(), g.clone());
                continue;
            };
            mine.count.absorb(&g.count, super::window::add_u32);
            mine.values.absorb(&g.values);
            mine.distinct.absorb(&g.distinct, |a, b| {
                for h in b {
                    if a.len() >= MAX_DISTINCT_PER_BUCKET {
                        break;
                    }
                    a.insert(*h);
                }
            });
            mine.total.0 += g.total.0;
            mine.total.1 += g.total.1;
        }
    }

    /// The definition.
    pub fn def(&self) -> &ProjectionDef {
        &self.def
    }

    /// Folds one event in (if it matches). With `full` (the projections
    /// at their byte budget) no new group, value bucket or distinct value
    /// is made: `false` when something was left out for it.
    pub fn apply(&mut self, e: &EventRef<'_>, full: bool) -> bool {
        if !subject_matches(&self.def.subject, e.subject()) {
            return true;
        }
        let mut json = None;
        for p in &self.predicates {
            if !p.holds(field_value(e, &mut json, &p.field).as_deref()) {
                return true;
            }
        }
        let value = match &self.def.field {
            Some(f) => match field_value(e, &mut json, f) {
                Some(v) => Some(v),
                // An event without the aggregated field is not counted.
                None => return true,
            },
            None => None,
        };
        let key = match &self.def.group_by {
            Some(g) => field_value(e, &mut json, g).unwrap_or_else(|| NO_GROUP.to_string()),
            None => String::new(),
        };
        let mut taken = true;
        let key = if self.groups.contains_key(&key) {
            key
        } else if full {
            taken = false;
            OVERFLOW_GROUP.to_string()
        } else if self.groups.len() < MAX_GROUPS {
            key
        } else {
            OVERFLOW_GROUP.to_string()
        };
        let t = e.received_ms();
        let group = self.groups.entry(key).or_default();
        group.count.incr(t);
        match self.def.aggregate {
            Aggregate::Count | Aggregate::Rate => {}
            Aggregate::Total => {
                if let Some(n) = value
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|n| n.is_finite())
                {
                    group.total.0 += 1;
                    group.total.1 += n;
                }
            }
            Aggregate::Distinct => {
                if let Some(v) = value {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    v.hash(&mut h);
                    let hash = h.finish();
                    group.distinct.update(t, |set| {
                        if set.contains(&hash) {
                            return;
                        }
                        if full || set.len() >= MAX_DISTINCT_PER_BUCKET {
                            taken = false;
                        } else {
                            set.insert(hash);
                        }
                    });
                }
            }
            _ => {
                if let Some(n) = value
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|n| n.is_finite())
                {
                    taken &= group.values.add(t, n, full);
                }
            }
        }
        taken
    }

    /// The state over `window` as of `now_ms`.
    pub fn snapshot(&self, window: Window, now_ms: i64) -> ProjectionBody {
        let mut groups: Vec<CustomGroup> = self
            .groups
            .iter()
            .filter_map(|(key, g)| {
                if self.def.aggregate == Aggregate::Total {
                    return (g.total.0 > 0).then(|| CustomGroup {
                        key: key.clone(),
                        count: g.total.0,
                        value: Some(g.total.1),
                        p50: None,
                        p90: None,
                        p99: None,
                    });
                }
                let count = g.count.sum(now_ms, window);
                if count == 0 {
                    return None;
                }
                let mut out = CustomGroup {
                    key: key.clone(),
                    count,
                    value: None,
                    p50: None,
                    p90: None,
                    p99: None,
                };
                match self.def.aggregate {
                    Aggregate::Count => out.value = Some(count as f64),
                    Aggregate::Rate => {
                        out.value = Some(count as f64 * 1_000.0 / window.ms() as f64)
                    }
                    Aggregate::Distinct => {
                        let mut all: HashSet<u64> = HashSet::default();
                        for set in g.distinct.window(now_ms, window) {
                            all.extend(set);
                        }
                        out.value = Some(all.len() as f64);
                    }
                    agg => {
                        let a = g.values.window(now_ms, window)?;
                        let (sum, min, max, mean) = a.stats();
                        out.count = a.count();
                        match agg {
                            Aggregate::Sum => out.value = Some(sum),
                            Aggregate::Min => out.value = Some(min),
                            Aggregate::Max => out.value = Some(max),
                            Aggregate::Mean => out.value = Some(mean),
                            _ => {
                                out.p50 = Some(a.quantile(0.5));
                                out.p90 = Some(a.quantile(0.9));
                                out.p99 = Some(a.quantile(0.99));
                            }
                        }
                    }
                }
                Some(out)
            })
            .collect();
        groups.sort_by(|a, b| a.key.cmp(&b.key));
        ProjectionBody::Custom {
            aggregate: self.def.aggregate.as_str().to_string(),
            field: self.def.field.clone(),
            group_by: self.def.group_by.clone(),
            groups,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;
    use crate::store::Store;

    fn def(toml_text: &str) -> ProjectionDef {
        toml::from_str(toml_text).expect("valid projection")
    }

    fn store(rows: &[(&str, &str)]) -> Store {
        let mut s = Store::new(16 << 20);
        for (i, (subject, payload)) in rows.iter().enumerate() {
            s.append(&NewEvent::core(
                subject,
                payload.to_string(),
                1_000_000 + i as i64,
            ))
            .expect("stored");
        }
        s
    }

    fn groups(body: ProjectionBody) -> Vec<CustomGroup> {
        match body {
            ProjectionBody::Custom { groups, .. } => groups,
            other => panic!("not custom: {other:?}"),
        }
    }

    #[test]
    fn predicates_group_and_aggregate() {
        let s = store(&[
            ("orders.placed", r#"{"country":"DE","total":30,"user":"a"}"#),
            ("orders.placed", r#"{"country":"DE","total":70,"user":"b"}"#),
            ("orders.placed", r#"{"country":"FR","total":5,"user":"a"}"#),
            (
                "orders.placed",
                r#"{"country":"FR","total":500,"user":"c"}"#,
            ),
            ("orders.cancelled", r#"{"country":"DE","total":999}"#),
            ("orders.placed", r#"{"total":12}"#),
        ]);
        let mut sum = Custom::new(def(r#"name = "revenue"
               subject = "orders.placed"
               where = ["total < 400"]
               group_by = "country"
               aggregate = "sum"
               field = "total""#));
        let mut distinct = Custom::new(def(r#"name = "buyers"
               subject = "orders.>"
               aggregate = "distinct"
               field = "user""#));
        for e in s.iter() {
            sum.apply(&e, false);
            distinct.apply(&e, false);
        }
        let now = 1_000_010;
        let g = groups(sum.snapshot(Window::M1, now));
        let got: Vec<(String, Option<f64>)> = g.into_iter().map(|g| (g.key, g.value)).collect();
        assert_eq!(
            got,
            vec![
                (NO_GROUP.to_string(), Some(12.0)),
                ("DE".to_string(), Some(100.0)),
                ("FR".to_string(), Some(5.0)),
            ]
        );
        let g = groups(distinct.snapshot(Window::M1, now));
        assert_eq!(g[0].value, Some(3.0), "a, b, c");
        // A minute and more later, the window is empty.
        assert!(groups(sum.snapshot(Window::M1, now + 120_000)).is_empty());
    }

    #[test]
    fn groups_past_the_cap_are_counted_in_one_overflow_group() {
        let rows: Vec<(String, String)> = (0..MAX_GROUPS + 5)
            .map(|i| ("orders.placed".to_string(), format!(r#"{{"user":"u{i}"}}"#)))
            .collect();
        let rows: Vec<(&str, &str)> = rows.iter().map(|(s, p)| (s.as_str(), p.as_str())).collect();
        let s = store(&rows);
        let mut by_user = Custom::new(def(r#"name = "by_user"
               subject = "orders.>"
               group_by = "user"
               aggregate = "count""#));
        for e in s.iter() {
            assert!(by_user.apply(&e, false), "not at the byte budget: taken");
        }
        let g = groups(by_user.snapshot(Window::H1, 1_000_000 + 10_000));
        assert_eq!(g.len(), MAX_GROUPS + 1, "the cap and the overflow group");
        let other = g
            .iter()
            .find(|g| g.key == OVERFLOW_GROUP)
            .expect("overflow group");
        assert_eq!(other.count, 5);
        assert_eq!(
            g.iter().map(|g| g.count).sum::<u64>(),
            (MAX_GROUPS + 5) as u64
        );
    }

    #[test]
    fn total_is_a_running_balance_beyond_any_window() {
        let s = store(&[
            ("accounts.a.opened", r#"{"account":"a","amount":0}"#),
            ("accounts.a.deposited", r#"{"account":"a","amount":100}"#),
            ("accounts.b.deposited", r#"{"account":"b","amount":40}"#),
            ("accounts.a.withdrawn", r#"{"account":"a","amount":-30}"#),
        ]);
        let mut balance = Custom::new(def(r#"name = "balances"
               subject = "accounts.>"
               group_by = "account"
               aggregate = "total"
               field = "amount""#));
        for e in s.iter() {
            balance.apply(&e, false);
        }
        // Two hours on, past every window: still the balance.
        let g = groups(balance.snapshot(Window::S1, 1_000_000 + 7_200_000));
        let got: Vec<(String, u64, Option<f64>)> =
            g.into_iter().map(|g| (g.key, g.count, g.value)).collect();
        assert_eq!(
            got,
            [
                ("a".to_string(), 3, Some(70.0)),
                ("b".to_string(), 1, Some(40.0))
            ]
        );
    }

    #[test]
    fn validation_names_the_problem() {
        let builtins = vec!["rates".to_string()];
        let bad = |t: &str| def(t).validate(&builtins).expect_err("refused").1;
        assert!(
            bad(r#"name = "rates"
            aggregate = "count""#)
            .contains("built-in")
        );
        assert!(
            bad(r#"name = "x"
            aggregate = "sum""#)
            .contains("needs a `field`")
        );
        assert!(
            bad(r#"name = "x"
            aggregate = "count"
            where = ["total 5"]"#)
            .contains("not a predicate")
        );
        assert!(
            bad(r#"name = "x"
            aggregate = "count"
            window = "2m""#)
            .contains("1s, 10s")
        );
        let p = Predicate::parse("latency_ms >= 200").expect("parses");
        assert!(p.holds(Some("200")) && p.holds(Some("1e3")) && !p.holds(Some("199.9")));
        assert!(!p.holds(None));
    }
}
