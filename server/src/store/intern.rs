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
/// Bytes counted per string besides its text: its `Arc`'s counters, and
/// its slots in the two maps (by string: pointer, id and newest use; by
/// id: id and pointer; with hashbrown's control bytes and spare room).
const OVERHEAD: usize = 96;

/// What [`Interner::name`] reads for a string let go because no held event
/// used it any more (ids are not reused).
pub const FORGOTTEN_NAME: &str = "(forgotten)";

/// Bounded interner, generational: when it is nearly full, the strings no
/// event still held in the log uses are let go ([`Interner::retire_before`];
/// their ids are never handed out again), so a burst of one-off strings
/// fills it only until the log evicts the events that carried them.
#[derive(Debug, Clone)]
pub struct Interner {
    /// Each string's id and the newest event that used it.
    ids: HashMap<Arc<str>, (u32, u64)>,
    names: HashMap<u32, Arc<str>>,
    next: u32,
    max: usize,
    max_bytes: usize,
    bytes: usize,
    overflowed: u64,
    too_long: u64,
    retired: u64,
}

impl Interner {
    /// An interner holding at most `max` distinct strings in at most
    /// `max_bytes` (as [`Interner::bytes`] counts them).
    pub fn new(max: usize, max_bytes: usize) -> Self {
        Interner {
            ids: HashMap::default(),
            names: HashMap::default(),
            next: 0,
            max: max.min(OVERFLOW as usize),
            max_bytes,
            bytes: 0,
            overflowed: 0,
            too_long: 0,
            retired: 0,
        }
    }

    /// The id of `s`, used by event `event` (the newest use is what keeps
    /// it), adding it if there is room; [`OVERFLOW`] if there is none, if
    /// `s` is longer than [`MAX_LEN`], or once 4 billion ids were given.
    pub fn intern(&mut self, s: &str, event: u64) -> u32 {
        if s.len() > MAX_LEN {
            self.too_long += 1;
            return OVERFLOW;
        }
        if let Some((id, last)) = self.ids.get_mut(s) {
            *last = event;
            return *id;
        }
        if self.ids.len() >= self.max
            || self.bytes + s.len() + OVERHEAD > self.max_bytes
            || self.next >= OVERFLOW - 1
        {
            self.overflowed += 1;
            return OVERFLOW;
        }
        let id = self.next;
        self.next += 1;
        let name: Arc<str> = Arc::from(s);
        self.bytes += s.len() + OVERHEAD;
        self.names.insert(id, Arc::clone(&name));
        self.ids.insert(name, (id, event));
        id
    }

    /// Whether it is at seven eighths of either bound or more.
    pub fn nearly_full(&self) -> bool {
        self.ids.len() * 8 >= self.max * 7 || self.bytes * 8 >= self.max_bytes * 7
    }

    /// Lets go of the strings whose newest use is an event older than
    /// `first_held` (no event in the log uses them); how many.
    pub fn retire_before(&mut self, first_held: u64) -> usize {
        let (names, bytes) = (&mut self.names, &mut self.bytes);
        let before = self.ids.len();
        self.ids.retain(|name, (id, last)| {
            let keep = *last >= first_held;
            if !keep {
                names.remove(id);
                *bytes -= name.len() + OVERHEAD;
            }
            keep
        });
        let n = before - self.ids.len();
        self.retired += n as u64;
        n
    }

    /// The id of `s` if it was interned.
    pub fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).map(|(id, _)| *id)
    }

    /// The string for `id`; `None` for [`NONE`].
    pub fn name(&self, id: u32) -> Option<&str> {
        match id {
            NONE => None,
            OVERFLOW => Some(OVERFLOW_NAME),
            _ => match self.names.get(&id) {
                Some(s) => Some(s.as_ref()),
                None if id < self.next => Some(FORGOTTEN_NAME),
                None => None,
            },
        }
    }

    /// All `(id, string)` pairs held.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        self.names.iter().map(|(i, s)| (*i, s.as_ref()))
    }

    /// Strings let go because no held event used them.
    pub fn retired(&self) -> u64 {
        self.retired
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
        let a = i.intern("a", 1);
        assert_eq!(i.intern("a", 1), a);
        let b = i.intern("b", 1);
        assert_ne!(a, b);
        assert_eq!(i.intern("c", 1), OVERFLOW);
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
        assert_eq!(i.intern(&long, 1), OVERFLOW, "longer than MAX_LEN");
        assert_eq!(i.too_long(), 1);
        assert_eq!(i.overflowed(), 0);
        let a = i.intern(&"a".repeat(100), 1);
        let b = i.intern(&"b".repeat(100), 1);
        assert!(a != OVERFLOW && b != OVERFLOW);
        assert_eq!(i.intern(&"c".repeat(100), 1), OVERFLOW, "over the bytes");
        assert_eq!(i.overflowed(), 1);
        assert!(i.bytes() <= 2 * (100 + OVERHEAD) + 10);
        // What is in still answers.
        assert_eq!(i.intern(&"a".repeat(100), 1), a);
        assert_eq!(
            i.intern("short", 1),
            OVERFLOW,
            "no room left even for a short one"
        );
    }

    #[test]
    fn strings_no_held_event_uses_are_let_go_and_their_ids_not_reused() {
        let mut i = Interner::new(4, 1 << 20);
        let a = i.intern("a", 1);
        let b = i.intern("b", 2);
        let c = i.intern("c", 3);
        assert_eq!(i.intern("a", 10), a, "a used again by event 10");
        assert!(!i.nearly_full());
        let d = i.intern("d", 11);
        assert!(i.nearly_full());
        assert_eq!(i.intern("e", 12), OVERFLOW, "full");
        // The log now holds events from 5 on: b and c are used by none.
        assert_eq!(i.retire_before(5), 2);
        assert_eq!(i.retired(), 2);
        assert_eq!(i.name(b), Some(FORGOTTEN_NAME));
        assert_eq!(i.get("c"), None);
        assert_eq!((i.name(a), i.name(d)), (Some("a"), Some("d")));
        // Room again, with new ids.
        let e = i.intern("e", 13);
        let c2 = i.intern("c", 14);
        assert!(e != OVERFLOW && c2 != OVERFLOW);
        assert!(![a, b, c, d].contains(&e) && ![a, b, c, d].contains(&c2));
        assert_eq!(i.iter().count(), 4);
        assert_eq!(i.bytes(), 4 * (1 + OVERHEAD));
    }
}
