//! JSON Patch (RFC 6902) deltas between two states of a view, aware of
//! sliding series. `json_patch::diff` compares arrays index by index, so a
//! per-second history that moved on by one bucket would come out as one
//! `replace` per element (thousands, every second). Here an array whose
//! head was dropped and whose tail grew is found as such: `remove` at the
//! front, the few changed elements replaced, `add` at the end.

use serde_json::{Value, json};

/// Elements at the end of a series allowed to differ when looking for a
/// shift (the newest buckets are still filling).
const TAIL_SLACK: usize = 8;
/// The largest shift looked for (buckets dropped between two frames).
const MAX_SHIFT: usize = 300;
/// Arrays shorter than this are compared index by index.
const MIN_SERIES: usize = 16;

/// The operations that turn `old` into `new`.
pub fn diff(old: &Value, new: &Value) -> json_patch::Patch {
    let mut ops = Vec::new();
    diff_into(old, new, &mut String::new(), &mut ops);
    // Every op built above is a well-formed RFC 6902 operation.
    serde_json::from_value(Value::Array(ops)).unwrap_or_else(|_| {
        json_patch::Patch(vec![json_patch::PatchOperation::Replace(
            json_patch::ReplaceOperation {
                path: Default::default(),
                value: new.clone(),
            },
        )])
    })
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn diff_into(old: &Value, new: &Value, path: &mut String, ops: &mut Vec<Value>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let len = path.len();
                path.push('/');
                path.push_str(&escape(k));
                match b.get(k) {
                    Some(vb) => diff_into(va, vb, path, ops),
                    None => ops.push(json!({"op": "remove", "path": path.as_str()})),
                }
                path.truncate(len);
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    let p = format!("{path}/{}", escape(k));
                    ops.push(json!({"op": "add", "path": p, "value": vb}));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            let k = shift(a, b);
            for _ in 0..k {
                ops.push(json!({"op": "remove", "path": format!("{path}/0")}));
            }
            let a = &a[k..];
            let common = a.len().min(b.len());
            for i in 0..common {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                diff_into(&a[i], &b[i], path, ops);
                path.truncate(len);
            }
            for i in (common..a.len()).rev() {
                ops.push(json!({"op": "remove", "path": format!("{path}/{i}")}));
            }
            for v in &b[common..] {
                ops.push(json!({"op": "add", "path": format!("{path}/-"), "value": v}));
            }
        }
        _ => ops.push(json!({"op": "replace", "path": path.as_str(), "value": new})),
    }
}

/// How many elements `new` dropped from the front of `old`: the smallest
/// `k` for which `old[k..]` starts `new` (but for the last few elements);
/// 0 when there is no such shift.
fn shift(a: &[Value], b: &[Value]) -> usize {
    if a.len() < MIN_SERIES || b.len() < MIN_SERIES {
        return 0;
    }
    let same = |k: usize| {
        let m = (a.len() - k).min(b.len()).saturating_sub(TAIL_SLACK);
        m >= TAIL_SLACK && a[k..k + m] == b[..m]
    };
    if same(0) {
        return 0;
    }
    (1..=MAX_SHIFT.min(a.len() - MIN_SERIES / 2))
        .find(|&k| a[k] == b[0] && same(k))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `patch` applied to `old` as the browser does: sent as JSON, read
    /// back with `app::wire::patch_ops`.
    fn apply(old: &Value, patch: &json_patch::Patch) -> Value {
        let sent = serde_json::to_value(patch).expect("json");
        let read = app::wire::patch_ops(sent).expect("the browser reads every op the diff makes");
        assert_eq!(&read, patch);
        let mut v = old.clone();
        json_patch::patch(&mut v, &read).expect("patch applies");
        v
    }

    #[test]
    fn a_sliding_series_is_a_few_operations() {
        let old: Vec<u64> = (0..3_600).collect();
        let mut new: Vec<u64> = (1..3_601).collect();
        new[3_598] += 5; // the newest buckets still filling
        let (old, new) = (
            json!({"total": old, "at": 1}),
            json!({"total": new, "at": 2}),
        );
        let patch = diff(&old, &new);
        assert!(patch.0.len() <= 4, "{} ops: {:?}", patch.0.len(), patch.0);
        assert_eq!(apply(&old, &patch), new);
    }

    #[test]
    fn keys_that_need_escaping() {
        let old = json!({"a/b": 1, "c~d": [1, 2]});
        let new = json!({"a/b": 2, "c~d": [1], "e": null});
        assert_eq!(apply(&old, &diff(&old, &new)), new);
    }

    proptest! {
        /// Whatever the two values, the patch turns one into the other.
        #[test]
        fn patches_reproduce_the_new_state(
            base in proptest::collection::vec(0u8..4, 0..60),
            drop in 0usize..20,
            extra in proptest::collection::vec(0u8..4, 0..20),
            edits in proptest::collection::vec((0usize..80, 0u8..4), 0..5),
            other in proptest::collection::vec(0u8..4, 0..40),
        ) {
            let mut new: Vec<u8> = base.iter().skip(drop).copied().chain(extra).collect();
            for (i, v) in edits {
                if let Some(x) = new.get_mut(i) {
                    *x = v;
                }
            }
            let old = json!({"s": base, "o": {"x": other}});
            let new = json!({"s": new, "o": {"y": 1}});
            prop_assert_eq!(apply(&old, &diff(&old, &new)), new);
        }
    }
}
