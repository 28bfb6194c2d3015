//! A bounded string interner: strings that repeat (subjects, services,
//! metric series, error messages) are stored once and referred to by a
//! `u32`. Bounded in strings *and* bytes, and no string longer than
//! [`MAX_LEN`] is kept: past either bound, or for a longer string, it hands
//! out [`OVERFLOW`] instead of growing (counted; the caller keeps such a
//! string in the event itself or cuts it first).

use foldhash::HashMap;
use std::sync::Arc;

/// Id of "no value".
pub const NONE: u32 = u32::MAX;
/// Id given to new strings once the interner is full.
pub const OVERFLOW: u32 = u32::MAX - 1;
/// What [`OVERFLOW`] reads as.
pub const OVERFLOW_NAME: &str = "(overflow)";

/// The longest string an interner keeps, in bytes.
pub const MAX_LEN: usize = 256;
/// Bytes counted per string besides its text: two pointers (map key and
/// vec), the id, the map's slot.
const OVERHEAD: usize = 48;

/// Bounded interner.
#[derive(Debug, Clone)]
pub struct Interner {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
    max: usize,
    max_bytes: usize,
    bytes: usize,
    overflowed: u64,
    too_long: u64,
}

impl Interner {
    /// An interner holding at most `max` distinct strings in at most
    /// `max_bytes` (as [`Interner::bytes`] counts them).
    pub fn new(max: usize, max_bytes: usize) -> Self {
        Interner {
            ids: HashMap::default(),
            names: Vec::new(),
            max: max.min(OVERFLOW as usize),
            max_bytes,
            bytes: 0,
            overflowed: 0,
            too_long: 0,
        }
    }

    /// The id of `s`, adding it if there is room; [`OVERFLOW`] if there is
    /// none or `s` is longer than [`MAX_LEN`].
    pub fn intern(&mut self, s: &str) -> u32 {
        if s.len() > MAX_LEN {
            self.too_long += 1;
            return OVERFLOW;
        }
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        if self.names.len() >= self.max || self.bytes + s.len() + OVERHEAD > self.max_bytes {
            self.overflowed += 1;
            return OVERFLOW;
        }
        let id = self.names.len() as u32;
        let name: Arc<str> = Arc::from(s);
        self.bytes += s.len() + OVERHEAD;
        self.names.push(Arc::clone(&name));
        self.ids.insert(name, id);
        id
    }

    /// The id of `s` if it was interned.
    pub fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// The string for `id`; `None` for [`NONE`].
    pub fn name(&self, id: u32) -> Option<&str> {
        match id {
            NONE => None,
            OVERFLOW => Some(OVERFLOW_NAME),
            _ => self.names.get(id as usize).map(|s| s.as_ref()),
        }
    }

    /// All `(id, string)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u32, s.as_ref()))
    }

    /// Approximate heap bytes used.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Strings refused because the interner was full.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Strings refused because they were longer than [`MAX_LEN`].
    pub fn too_long(&self) -> u64 {
        self.too_long
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_once_and_overflows_when_full() {
        let mut i = Interner::new(2, 1 << 20);
        let a = i.intern("a");
        assert_eq!(i.intern("a"), a);
        let b = i.intern("b");
        assert_ne!(a, b);
        assert_eq!(i.intern("c"), OVERFLOW);
        assert_eq!(i.name(OVERFLOW), Some(OVERFLOW_NAME));
        assert_eq!(i.name(b), Some("b"));
        assert_eq!(i.name(NONE), None);
        assert_eq!(i.overflowed(), 1);
        assert_eq!(i.get("a"), Some(a));
    }

    #[test]
    fn a_byte_budget_and_a_length_cap_bound_it() {
        // Room for two strings of 100 bytes, not three.
        let mut i = Interner::new(1_000, 2 * (100 + OVERHEAD) + 10);
        let long = "x".repeat(MAX_LEN + 1);
        assert_eq!(i.intern(&long), OVERFLOW, "longer than MAX_LEN");
        assert_eq!(i.too_long(), 1);
        assert_eq!(i.overflowed(), 0);
        let a = i.intern(&"a".repeat(100));
        let b = i.intern(&"b".repeat(100));
        assert!(a != OVERFLOW && b != OVERFLOW);
        assert_eq!(i.intern(&"c".repeat(100)), OVERFLOW, "over the bytes");
        assert_eq!(i.overflowed(), 1);
        assert!(i.bytes() <= 2 * (100 + OVERHEAD) + 10);
        // What is in still answers.
        assert_eq!(i.intern(&"a".repeat(100)), a);
        assert_eq!(
            i.intern("short"),
            OVERFLOW,
            "no room left even for a short one"
        );
    }
}
