//! A bounded string interner: strings that repeat (subjects, services,
//! metric series, error messages) are stored once and referred to by a
//! `u32`. Past its capacity it hands out [`OVERFLOW`] instead of growing.

use foldhash::HashMap;
use std::sync::Arc;

/// Id of "no value".
pub const NONE: u32 = u32::MAX;
/// Id given to new strings once the interner is full.
pub const OVERFLOW: u32 = u32::MAX - 1;
/// What [`OVERFLOW`] reads as.
pub const OVERFLOW_NAME: &str = "(overflow)";

/// Bounded interner.
#[derive(Debug, Clone)]
pub struct Interner {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
    max: usize,
    bytes: usize,
    overflowed: u64,
}

impl Interner {
    /// An interner holding at most `max` distinct strings.
    pub fn new(max: usize) -> Self {
        Interner {
            ids: HashMap::default(),
            names: Vec::new(),
            max: max.min(OVERFLOW as usize),
            bytes: 0,
            overflowed: 0,
        }
    }

    /// The id of `s`, adding it if there is room.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        if self.names.len() >= self.max {
            self.overflowed += 1;
            return OVERFLOW;
        }
        let id = self.names.len() as u32;
        let name: Arc<str> = Arc::from(s);
        // Two pointers (map key and vec) plus the text, plus map overhead.
        self.bytes += s.len() + 48;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_once_and_overflows_when_full() {
        let mut i = Interner::new(2);
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
}
