//! Subject scopes: which subjects a user may see events of (PRODUCT.md
//! F12). A scope is named in the config file (`[scopes.payments]`, with
//! `allow` and `deny` lists of NATS subject patterns) and given to users,
//! tokens and `[[role_mapping]]` rules by name. An event on a subject the
//! scope does not allow never reaches its user: not in a list, a tail, an
//! event's page, a flow, the topology or the schemas; aggregate views keep
//! only the rows they can tie to an allowed subject and say they are
//! scoped (docs/SECURITY.md).
//!
//! Deciding is conservative: a subject *pattern* (a topology edge, a
//! schema's subject group) is shown only when every subject it matches is
//! allowed.

use crate::event::subject_matches;
use serde::Deserialize;

/// A `[scopes.NAME]` table of the config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeEntry {
    /// Subject patterns allowed (`orders.>`, `payments.*.done`); empty:
    /// every subject but the denied ones.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Subject patterns refused even when allowed (`payments.internal.>`).
    #[serde(default)]
    pub deny: Vec<String>,
}

/// Longest scope name, in bytes.
pub const MAX_NAME: usize = 64;
/// Patterns in one `allow` or `deny` list, at most.
pub const MAX_PATTERNS: usize = 64;
/// Bytes of one pattern, at most.
pub const MAX_PATTERN_BYTES: usize = 256;

/// Why a scope is refused: the key at fault (`allow`, `deny` or `name`)
/// and what is wrong.
pub fn check(name: &str, entry: &ScopeEntry) -> Result<(), (&'static str, String)> {
    if name.is_empty()
        || name.len() > MAX_NAME
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err((
            "name",
            format!("scope {name:?}: a scope's name has 1 to {MAX_NAME} letters, digits, - or _"),
        ));
    }
    if entry.allow.is_empty() && entry.deny.is_empty() {
        return Err((
            "allow",
            format!("scope {name:?} allows everything: give `allow` or `deny` patterns"),
        ));
    }
    for (key, list) in [("allow", &entry.allow), ("deny", &entry.deny)] {
        if list.len() > MAX_PATTERNS {
            return Err((
                key,
                format!("scope {name:?}: at most {MAX_PATTERNS} patterns in `{key}`"),
            ));
        }
        for p in list {
            valid_pattern(p).map_err(|why| (key, format!("scope {name:?}: {p:?} {why}")))?;
        }
    }
    Ok(())
}

/// Why `p` is not a NATS subject pattern.
fn valid_pattern(p: &str) -> Result<(), &'static str> {
    if p.is_empty() || p.len() > MAX_PATTERN_BYTES {
        return Err("must have 1 to 256 bytes");
    }
    if p.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("has a space or a control character");
    }
    let tokens: Vec<&str> = p.split('.').collect();
    for (i, t) in tokens.iter().enumerate() {
        if t.is_empty() {
            return Err("has an empty token (two dots, or a dot at an end)");
        }
        if *t == ">" && i + 1 != tokens.len() {
            return Err("has `>` before its last token");
        }
        if t.len() > 1 && (t.contains('*') || t.contains('>')) {
            return Err("has `*` or `>` inside a token (they stand alone: `a.*.c`, `a.>`)");
        }
    }
    Ok(())
}

/// A scope, ready to decide.
#[derive(Debug, PartialEq, Eq)]
pub struct Scope {
    /// Its name in the config file (shown as the user's badge).
    pub name: String,
    allow: Vec<String>,
    deny: Vec<String>,
}

impl Scope {
    /// From a checked entry.
    pub fn new(name: &str, entry: &ScopeEntry) -> Scope {
        Scope {
            name: name.to_string(),
            allow: entry.allow.clone(),
            deny: entry.deny.clone(),
        }
    }

    /// Whether events on `subject` may be seen.
    pub fn allows(&self, subject: &str) -> bool {
        (self.allow.is_empty() || self.allow.iter().any(|a| subject_matches(a, subject)))
            && !self.deny.iter().any(|d| subject_matches(d, subject))
    }

    /// Whether an event on `subject` (already allowed) may be seen for
    /// what its payload names: a schema drift (Eventscope's own event)
    /// names the subject it was seen on, which must be allowed too.
    pub fn allows_named(&self, subject: &str, payload: &[u8]) -> bool {
        if subject != crate::projection::schema::DRIFT_SUBJECT {
            return true;
        }
        serde_json::from_slice::<serde_json::Value>(payload)
            .ok()
            .and_then(|v| v.get("subject")?.as_str().map(|s| self.allows(s)))
            .unwrap_or(false)
    }

    /// Whether every subject `pattern` matches may be seen (a subject with
    /// no wildcard is a pattern matching itself). One allowed pattern must
    /// contain it whole, and no denied one overlap it.
    pub fn covers(&self, pattern: &str) -> bool {
        (self.allow.is_empty() || self.allow.iter().any(|a| within(pattern, a)))
            && !self.deny.iter().any(|d| overlap(d, pattern))
    }
}

/// Whether every subject `inner` matches also matches `outer`.
pub fn within(inner: &str, outer: &str) -> bool {
    let mut i = inner.split('.');
    let mut o = outer.split('.');
    loop {
        match (o.next(), i.next()) {
            // `>` takes one or more tokens, whatever they are.
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(t)) if t != ">" => {}
            (Some(a), Some(b)) if a == b && a != "*" && a != ">" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether some subject matches both `a` and `b`.
pub fn overlap(a: &str, b: &str) -> bool {
    let mut x = a.split('.');
    let mut y = b.split('.');
    loop {
        match (x.next(), y.next()) {
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some("*"), Some(_)) | (Some(_), Some("*")) => {}
            (Some(s), Some(t)) if s == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(allow: &[&str], deny: &[&str]) -> Scope {
        let entry = ScopeEntry {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        };
        check("t", &entry).expect("valid");
        Scope::new("t", &entry)
    }

    #[test]
    fn subjects_are_allowed_by_allow_and_refused_by_deny() {
        let s = scope(&["orders.>", "payments.*"], &["orders.internal.>"]);
        assert!(s.allows("orders.created"));
        assert!(s.allows("orders.eu.created"));
        assert!(s.allows("payments.done"));
        assert!(!s.allows("payments.card.done"));
        assert!(!s.allows("orders.internal.audit"));
        assert!(!s.allows("orders"));
        assert!(!s.allows("shipping.sent"));
        let only_deny = scope(&[], &["secrets.>"]);
        assert!(only_deny.allows("orders.created"));
        assert!(!only_deny.allows("secrets.db"));
        // A schema drift names the subject it was seen on.
        let drift = crate::projection::schema::DRIFT_SUBJECT;
        assert!(only_deny.allows(drift));
        assert!(!only_deny.allows_named(drift, br#"{"subject":"secrets.db"}"#));
        assert!(only_deny.allows_named(drift, br#"{"subject":"orders.created"}"#));
        assert!(!only_deny.allows_named(drift, b"not json"));
    }

    #[test]
    fn a_pattern_is_covered_only_when_every_subject_it_matches_is_allowed() {
        let s = scope(&["orders.>", "payments.*"], &["orders.internal.>"]);
        assert!(s.covers("orders.*"));
        assert!(s.covers("orders.eu.>"));
        assert!(s.covers("payments.done"));
        assert!(s.covers("payments.*"));
        // `orders.>` reaches orders.internal.x, which is denied.
        assert!(!s.covers("orders.>"));
        assert!(!s.covers("orders.*.audit"));
        assert!(!s.covers("payments.>"));
        assert!(!s.covers(">"));
        assert!(!s.covers("*.created"));
        assert!(!s.covers("shipping.sent"));
    }

    #[test]
    fn within_and_overlap_read_wildcards_as_nats_does() {
        assert!(within("a.b", "a.*"));
        assert!(within("a.*", "a.*"));
        assert!(!within("a.>", "a.*"));
        assert!(within("a.b.>", "a.>"));
        assert!(!within("a", "a.>"));
        assert!(!within("a.*", "a.b"));
        assert!(overlap("a.*", "*.b"));
        assert!(overlap("a.>", "a.b.c"));
        assert!(!overlap("a.b", "a.c"));
        assert!(!overlap("a.b", "a.b.c"));
        assert!(overlap(">", "x"));
    }

    #[test]
    fn bad_scopes_name_the_key_at_fault() {
        let entry = |allow: &[&str]| ScopeEntry {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: vec![],
        };
        assert_eq!(check("ok", &entry(&["a.>"])), Ok(()));
        assert_eq!(
            check("bad name", &entry(&["a"])).map_err(|e| e.0),
            Err("name")
        );
        assert_eq!(check("ok", &entry(&[])).map_err(|e| e.0), Err("allow"));
        for bad in ["a..b", "a.>.b", "a b", "a.b*", ""] {
            assert_eq!(
                check("ok", &entry(&[bad])).map_err(|e| e.0),
                Err("allow"),
                "{bad:?}"
            );
        }
    }
}
