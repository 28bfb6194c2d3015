//! Masking: payload fields and headers a role sees as `[masked]`, or not at
//! all (PRODUCT.md F12). The config file lists them in `[[masks]]`
//! entries, each for some roles (by default viewers and operators: admins
//! see everything unless an entry names them). What is stored is never
//! changed: masks apply to what leaves the server (an event's page, the
//! lists and the live tail, the schemas' examples), and searches
//! (`q=`, `field=`) are matched against the masked text too, so a masked
//! value cannot be found by guessing it.
//!
//! A field path is dotted keys from the payload's root (`card.number`);
//! `*` stands for any one key and `**` for any number of them
//! (`**.password`: a `password` at any depth). Arrays are looked into
//! without a key of their own (`items.sku` masks the `sku` of every item).
//! Only JSON payloads have fields; other payloads are shown as they are.

use super::Role;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// What a masked value is shown as.
pub const MASKED: &str = "[masked]";
/// What a payload is shown as when it looks like JSON, does not read as
/// JSON, and the reader's role has masked fields.
pub const WITHHELD: &str = "[withheld: not readable as JSON, and your role has masked fields]";
/// Paths and header names listed as masked for one event, at most.
pub const MAX_LISTED: usize = 64;
/// Keys in one path, at most.
const MAX_SEGMENTS: usize = 32;
/// Bytes of one path or header name, at most.
const MAX_PATH_BYTES: usize = 256;
/// Paths and headers in one entry, at most.
const MAX_ENTRIES: usize = 256;

/// A `[[masks]]` entry of the config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskEntry {
    /// Payload field paths (`card.number`, `**.password`).
    #[serde(default)]
    pub fields: Vec<String>,
    /// Header names (any case).
    #[serde(default)]
    pub headers: Vec<String>,
    /// The roles that see them masked.
    #[serde(default = "default_roles")]
    pub roles: Vec<Role>,
    /// Leave them out instead of showing `[masked]`.
    #[serde(default)]
    pub remove: bool,
}

fn default_roles() -> Vec<Role> {
    vec![Role::Viewer, Role::Operator]
}

/// Why an entry is refused: the key at fault and what is wrong.
pub fn check(entry: &MaskEntry) -> Result<(), (&'static str, String)> {
    if entry.fields.is_empty() && entry.headers.is_empty() {
        return Err(("fields", "give `fields` or `headers` to mask".to_string()));
    }
    if entry.roles.is_empty() {
        return Err(("roles", "name the roles that see these masked".to_string()));
    }
    for (key, list) in [("fields", &entry.fields), ("headers", &entry.headers)] {
        if list.len() > MAX_ENTRIES {
            return Err((key, format!("at most {MAX_ENTRIES} in one entry")));
        }
        for p in list {
            let segments = p.split('.').count();
            if p.is_empty()
                || p.len() > MAX_PATH_BYTES
                || (key == "fields" && (segments > MAX_SEGMENTS || p.split('.').any(str::is_empty)))
            {
                return Err((
                    key,
                    format!(
                        "{p:?} is not a {}",
                        if key == "fields" {
                            "field path (dotted keys, e.g. card.number or **.password)"
                        } else {
                            "header name"
                        }
                    ),
                ));
            }
            if key == "headers" && axum::http::HeaderName::try_from(p.as_str()).is_err() {
                return Err((key, format!("{p:?} is not a header name")));
            }
        }
    }
    Ok(())
}

/// What one role sees masked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Masks {
    /// Field paths, split into keys, and whether they are removed.
    fields: Vec<(Vec<String>, bool)>,
    /// Header names, lowercase, and whether they are removed.
    headers: Vec<(String, bool)>,
}

/// The masks of every role.
#[derive(Debug, Default)]
pub struct Masking {
    by_role: [Option<Arc<Masks>>; 3],
}

impl Masking {
    /// From the config's checked entries.
    pub fn new(entries: &[MaskEntry]) -> Masking {
        let mut by_role: [Option<Arc<Masks>>; 3] = Default::default();
        for (i, role) in Role::ALL.into_iter().enumerate() {
            let mut m = Masks::default();
            for e in entries.iter().filter(|e| e.roles.contains(&role)) {
                m.fields.extend(
                    e.fields
                        .iter()
                        .map(|p| (p.split('.').map(str::to_string).collect(), e.remove)),
                );
                m.headers
                    .extend(e.headers.iter().map(|h| (h.to_ascii_lowercase(), e.remove)));
            }
            if !(m.fields.is_empty() && m.headers.is_empty()) {
                by_role[i] = Some(Arc::new(m));
            }
        }
        Masking { by_role }
    }

    /// What `role` sees masked, if anything.
    pub fn for_role(&self, role: Role) -> Option<Arc<Masks>> {
        let i = Role::ALL.iter().position(|r| *r == role)?;
        self.by_role[i].clone()
    }
}

/// Whether `path` matches the glob `rule` (`*` one key, `**` any number),
/// in time linear in their product (no backtracking blow-up).
fn glob(rule: &[String], path: &[&str]) -> bool {
    // can[j]: rule[..i] matches path[..j].
    let mut can = vec![false; path.len() + 1];
    can[0] = true;
    for r in rule {
        let mut next = vec![false; path.len() + 1];
        if r == "**" {
            let mut any = false;
            for j in 0..=path.len() {
                any |= can[j];
                next[j] = any;
            }
        } else {
            for j in 1..=path.len() {
                next[j] = can[j - 1] && (r == "*" || r == path[j - 1]);
            }
        }
        can = next;
    }
    can[path.len()]
}

/// How a field path stands to the masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// No mask reaches it.
    Clear,
    /// It is masked, or inside a masked field; `true`: removed.
    Masked(bool),
    /// A masked field may be inside it (an object or array holding one).
    Holds,
}

/// The positions in `rule` reachable after matching all of `path`, with
/// `**` standing for any number of keys (an NFA walk: linear in their
/// product).
fn reach(rule: &[String], path: &[&str]) -> Vec<bool> {
    let close = |states: &mut Vec<bool>| {
        for i in 0..rule.len() {
            if states[i] && rule[i] == "**" {
                states[i + 1] = true;
            }
        }
    };
    let mut states = vec![false; rule.len() + 1];
    states[0] = true;
    close(&mut states);
    for key in path {
        let mut next = vec![false; rule.len() + 1];
        for i in 0..rule.len() {
            if !states[i] {
                continue;
            }
            if rule[i] == "**" {
                next[i] = true;
            } else if rule[i] == "*" || rule[i] == *key {
                next[i + 1] = true;
            }
        }
        close(&mut next);
        states = next;
    }
    states
}

impl Masks {
    /// How the field at `path` stands to the masks: masked (it, or a
    /// field holding it), holding a masked field, or clear.
    pub fn relation(&self, path: &[&str]) -> Relation {
        for end in 1..=path.len() {
            if let Some(remove) = self.field(&path[..end]) {
                return Relation::Masked(remove);
            }
        }
        if self.fields.iter().any(|(rule, _)| {
            let states = reach(rule, path);
            states[..rule.len()].iter().any(|s| *s)
        }) {
            return Relation::Holds;
        }
        Relation::Clear
    }

    /// Whether payload fields are masked (else only headers).
    pub fn has_fields(&self) -> bool {
        !self.fields.is_empty()
    }

    /// The rule for the field at `path`: `Some(remove)` when it is masked.
    pub fn field(&self, path: &[&str]) -> Option<bool> {
        self.fields
            .iter()
            .find(|(rule, _)| glob(rule, path))
            .map(|(_, remove)| *remove)
    }

    /// Masks `v` in place; the paths it masked or removed (the first
    /// [`MAX_LISTED`]).
    pub fn json(&self, v: &mut Value) -> Vec<String> {
        let mut out = Vec::new();
        if self.has_fields() {
            self.walk(v, &mut Vec::new(), &mut out);
        }
        out
    }

    fn walk(&self, v: &mut Value, path: &mut Vec<String>, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    path.push(k);
                    let here: Vec<&str> = path.iter().map(String::as_str).collect();
                    let key = path.last().cloned().unwrap_or_default();
                    match self.field(&here) {
                        Some(remove) => {
                            if out.len() < MAX_LISTED {
                                out.push(here.join("."));
                            }
                            if remove {
                                map.remove(&key);
                            } else {
                                map.insert(key, Value::String(MASKED.to_string()));
                            }
                        }
                        None => {
                            if let Some(child) = map.get_mut(&key) {
                                self.walk(child, path, out);
                            }
                        }
                    }
                    path.pop();
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.walk(item, path, out);
                }
            }
            _ => {}
        }
    }

    /// A JSON payload with its masked fields masked, and their paths;
    /// `None` when nothing in it is masked (or it is not a JSON object or
    /// array), so the stored bytes are shown as they are. A payload that
    /// looks like JSON but does not read as it (trailing data, a bad
    /// escape, bytes that are not UTF-8) cannot be masked, so it is
    /// withheld whole: [`WITHHELD`], listed as the masked path `payload`.
    pub fn payload(&self, bytes: &[u8]) -> Option<(String, Vec<String>)> {
        if !self.has_fields() {
            return None;
        }
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
        if *first != b'{' && *first != b'[' {
            return None;
        }
        let Ok(mut v) = serde_json::from_slice::<Value>(bytes) else {
            return Some((WITHHELD.to_string(), vec!["payload".to_string()]));
        };
        let masked = self.json(&mut v);
        if masked.is_empty() {
            return None;
        }
        Some((serde_json::to_string(&v).ok()?, masked))
    }

    /// Masks or removes headers; the names masked.
    pub fn headers(&self, headers: &mut Vec<(String, String)>) -> Vec<String> {
        let mut out = Vec::new();
        if self.headers.is_empty() {
            return out;
        }
        headers.retain_mut(|(name, value)| {
            let lower = name.to_ascii_lowercase();
            match self.headers.iter().find(|(h, _)| *h == lower) {
                Some((_, remove)) => {
                    if out.len() < MAX_LISTED {
                        out.push(format!("header {name}"));
                    }
                    if !remove {
                        *value = MASKED.to_string();
                    }
                    !remove
                }
                None => true,
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn masks(fields: &[&str], headers: &[&str], remove: bool) -> Arc<Masks> {
        let entry = MaskEntry {
            fields: fields.iter().map(|s| s.to_string()).collect(),
            headers: headers.iter().map(|s| s.to_string()).collect(),
            roles: vec![Role::Viewer],
            remove,
        };
        check(&entry).expect("valid");
        let m = Masking::new(&[entry]);
        assert!(m.for_role(Role::Admin).is_none(), "only the roles named");
        m.for_role(Role::Viewer).expect("viewer masks")
    }

    #[test]
    fn fields_are_masked_by_path_at_any_depth_and_through_arrays() {
        let m = masks(&["card.number", "**.password", "items.sku"], &[], false);
        let mut v = json!({
            "card": {"number": "4111 1111 1111 1111", "brand": "visa"},
            "user": {"name": "ana", "login": {"password": "hunter2"}},
            "password": "top",
            "items": [{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 1}],
        });
        let masked = m.json(&mut v);
        assert_eq!(v["card"]["number"], MASKED);
        assert_eq!(v["card"]["brand"], "visa");
        assert_eq!(v["user"]["login"]["password"], MASKED);
        assert_eq!(v["password"], MASKED);
        assert_eq!(v["items"][0]["sku"], MASKED);
        assert_eq!(v["items"][1]["qty"], 1);
        assert!(masked.contains(&"card.number".to_string()), "{masked:?}");
        assert!(masked.contains(&"user.login.password".to_string()));
        let text = v.to_string();
        assert!(!text.contains("4111") && !text.contains("hunter2") && !text.contains("A1"));
    }

    #[test]
    fn removed_fields_and_headers_are_gone_and_others_untouched() {
        let m = masks(&["*.secret"], &["Authorization"], true);
        let (text, paths) = m
            .payload(br#"{"db":{"secret":"s3","host":"h"},"secret":"top"}"#)
            .expect("masked");
        assert!(
            !text.contains("s3") && text.contains("\"host\":\"h\""),
            "{text}"
        );
        // `*.secret` is one level down only.
        assert!(text.contains("\"secret\":\"top\""));
        assert_eq!(paths, vec!["db.secret".to_string()]);
        assert!(
            m.payload(br#"{"a":1}"#).is_none(),
            "nothing masked: bytes as stored"
        );
        assert!(m.payload(b"level=info secret=x").is_none(), "not JSON");
        let mut headers = vec![
            ("authorization".to_string(), "Bearer x".to_string()),
            ("Nats-Msg-Id".to_string(), "1".to_string()),
        ];
        assert_eq!(
            m.headers(&mut headers),
            vec!["header authorization".to_string()]
        );
        assert_eq!(headers, vec![("Nats-Msg-Id".to_string(), "1".to_string())]);
    }

    #[test]
    fn fields_holding_or_inside_masked_ones_are_told_apart() {
        let m = masks(&["card.number", "**.password"], &[], false);
        let rel = |p: &str| m.relation(&p.split('.').collect::<Vec<_>>());
        assert_eq!(rel("card.number"), Relation::Masked(false));
        assert_eq!(rel("card.number.last4"), Relation::Masked(false));
        assert_eq!(rel("card"), Relation::Holds);
        assert_eq!(rel("user"), Relation::Holds, "a password may be anywhere");
        assert_eq!(rel("user.login.password"), Relation::Masked(false));
        assert_eq!(rel("card.brand"), Relation::Holds, "**.password reaches in");
        let only_card = masks(&["card.number"], &[], false);
        let rel = |p: &str| only_card.relation(&p.split('.').collect::<Vec<_>>());
        assert_eq!(rel("card.brand"), Relation::Clear);
        assert_eq!(rel("amount"), Relation::Clear);
    }

    #[test]
    fn a_payload_that_looks_like_json_but_is_not_is_withheld() {
        let m = masks(&["card.number"], &[], false);
        for bad in [
            &br#"{"card":{"number":"4111"}} trailing"#[..],
            br#"{"card":{"number":"4111\ud800"}}"#,
            b"{\"card\":{\"number\":\"4111\xff\"}}",
        ] {
            let (text, paths) = m.payload(bad).expect("withheld");
            assert_eq!(text, WITHHELD);
            assert_eq!(paths, ["payload"]);
        }
    }

    #[test]
    fn globs_take_linear_time() {
        let rule: Vec<String> = ["**"; 16]
            .iter()
            .map(|s| s.to_string())
            .chain(["x".to_string()])
            .collect();
        let path: Vec<&str> = ["a"; 32].to_vec();
        assert!(!glob(&rule, &path));
        assert!(glob(&["**".to_string()], &[]));
        assert!(glob(&["a".to_string(), "*".to_string()], &["a", "b"]));
        assert!(!glob(&["a".to_string(), "*".to_string()], &["a"]));
    }
}
