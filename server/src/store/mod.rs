//! The event log (PRODUCT.md F3): an append-only, byte-capped store of every
//! ingested event. Each event gets a stable, ordered id (1, 2, 3… within a
//! run). Payload, headers and metric samples are copied once into large
//! chunks; the index keeps one fixed-size [`Entry`] per event with the
//! decoded facts the projections fold, so replay never re-parses JSON.
//!
//! Bounded: when adding an event would pass the byte cap, whole chunks are
//! evicted oldest first and counted. The byte count includes the chunks'
//! capacity, the index and the interners, so the cap is a real bound.
//!
//! Time in the store is *received* time (made monotonic on append): queries
//! by time and "state as of T" both use it, so a replay up to T folds exactly
//! the events the live projections had folded at T.

pub mod intern;
pub mod query;

use crate::event::{NewEvent, Source};
use crate::ingest::decode::{Format, Kind, Level};
use foldhash::HashMap;
use intern::{Interner, NONE};
use std::collections::VecDeque;

/// The store as shared by the hub (the only writer) and the HTTP API
/// (readers). The hub holds the write lock only to append a batch.
pub type SharedStore = std::sync::Arc<parking_lot::RwLock<Store>>;

/// Default chunk size for payload bytes.
const CHUNK_BYTES: usize = 1 << 20;
/// Distinct strings kept per dictionary.
const MAX_SUBJECTS: usize = 10_000;
const MAX_SERVICES: usize = 1_000;
const MAX_SERIES: usize = 10_000;
const MAX_MESSAGES: usize = 10_000;
/// Fewer than 255, so every id fits the entry's `u8` and 255 means none.
const MAX_STREAMS: usize = 200;
/// Recent `Nats-Msg-Id`s remembered for de-duplication.
const DEDUP_WINDOW: usize = 100_000;
/// Bytes one remembered id takes: its hash in the order queue, and hash
/// and event id in the map's slot with the map's spare room.
const DEDUP_ENTRY_BYTES: usize = 16 + 32;
/// Bytes of one encoded metric sample (series id + value).
const SAMPLE_BYTES: usize = 12;

const LEVEL_NONE: u8 = u8::MAX;
/// Entry flag: same `Nats-Msg-Id` as an earlier event.
pub const FLAG_DUPLICATE: u8 = 1;
/// Entry flag: the event named a reply subject (a request), stored after
/// the correlation id as one length byte and the subject.
const FLAG_REPLY: u8 = 2;
/// Entry flag: the subject is kept whole in the event's bytes (after the
/// reply subject, as a `u16` length and the text), and the entry's subject
/// id is only its group: for a one-off subject (a reply inbox, a JetStream
/// ack; [`crate::event::one_off_group`]), which would otherwise take one
/// dictionary entry per message, and for any subject arriving once the
/// dictionary is full (id [`intern::OVERFLOW`]). Such an event still reads
/// and filters by its own subject.
const FLAG_SUBJECT: u8 = 4;

/// One event in the index. Fixed size (56 bytes); the variable parts live
/// in a chunk at `offset`: payload, encoded headers, metric samples, the
/// correlation id, then (flag [`FLAG_REPLY`]) the reply subject, then (flag
/// [`FLAG_SUBJECT`]) the subject.
#[derive(Clone, Copy, Debug)]
struct Entry {
    received_ms: i64,
    time_ms: i64,
    seq: u64,
    offset: u32,
    payload_len: u32,
    headers_len: u32,
    subject: u32,
    service: u32,
    message: u32,
    samples: u16,
    stream: u8,
    /// Bytes of the correlation id, stored after the samples (0: none).
    corr_len: u8,
    kind: u8,
    format: u8,
    level: u8,
    flags: u8,
}

/// A block of events: their index entries and their bytes.
#[derive(Debug)]
struct Chunk {
    first_id: u64,
    data: Vec<u8>,
    entries: Vec<Entry>,
}

impl Chunk {
    fn bytes(&self) -> usize {
        self.data.capacity() + self.entries.capacity() * std::mem::size_of::<Entry>()
    }
}

/// Counters about the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Events held now.
    pub events: u64,
    /// Bytes held now (chunks, index, dictionaries).
    pub bytes: u64,
    /// Payload bytes held now.
    pub payload_bytes: u64,
    /// The byte cap.
    pub cap_bytes: u64,
    /// Events appended since start.
    pub appended: u64,
    /// Events evicted to stay under the cap.
    pub evicted: u64,
    /// Events refused because alone they exceed the cap.
    pub too_large: u64,
    /// Events whose `Nats-Msg-Id` was seen before.
    pub duplicates: u64,
    /// Events that decoded as nothing (kept as raw bytes).
    pub raw: u64,
    /// Strings counted under "(overflow)" because a dictionary was full
    /// or they were longer than [`intern::MAX_LEN`] (an event whose
    /// subject overflowed still keeps it, see [`FLAG_SUBJECT`];
    /// per-subject projections count it under "(overflow)").
    pub interner_overflow: u64,
    /// Warn-or-worse messages longer than [`intern::MAX_LEN`], grouped by
    /// their start (the event keeps the whole text).
    pub messages_cut: u64,
    /// Correlation ids longer than 255 bytes, kept cut to 255.
    pub correlation_ids_cut: u64,
    /// Reply subjects longer than 255 bytes, left out of the event.
    pub reply_subjects_dropped: u64,
    /// Events with more than 65,535 metric samples: the rest left out.
    pub samples_cut: u64,
}

/// A metric sample as stored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleRef<'a> {
    /// `name` or `name{k=v,…}` (tags sorted by key).
    pub series: &'a str,
    /// Interned id of the series.
    pub series_id: u32,
    /// Value.
    pub value: f64,
}

/// A stored event, borrowed from the store.
#[derive(Clone, Copy, Debug)]
pub struct EventRef<'a> {
    store: &'a Store,
    chunk: &'a Chunk,
    entry: &'a Entry,
    /// The event's id.
    pub id: u64,
}

impl<'a> EventRef<'a> {
    /// Received time, Unix ms (monotonic within the store).
    pub fn received_ms(&self) -> i64 {
        self.entry.received_ms
    }
    /// Event time from the payload, else received time.
    pub fn time_ms(&self) -> i64 {
        self.entry.time_ms
    }
    /// Subject.
    pub fn subject(&self) -> &'a str {
        match self.own_subject() {
            Some(s) => s,
            None => self.store.subjects.name(self.entry.subject).unwrap_or(""),
        }
    }
    /// Interned subject id: the subject's own, or for a subject kept in the
    /// event (see [`EventRef::subject_is_own`]) its group's (`_INBOX.>`,
    /// `$JS.ACK.>`) or [`intern::OVERFLOW`].
    pub fn subject_id(&self) -> u32 {
        self.entry.subject
    }
    /// Whether the subject is kept in the event rather than named by
    /// [`EventRef::subject_id`] (a one-off subject, or one that came once
    /// the dictionary was full): match it by its text.
    pub fn subject_is_own(&self) -> bool {
        self.entry.flags & FLAG_SUBJECT != 0
    }
    /// Service, if known.
    pub fn service(&self) -> Option<&'a str> {
        self.store.services.name(self.entry.service)
    }
    /// Interned service id (or [`intern::NONE`]).
    pub fn service_id(&self) -> u32 {
        self.entry.service
    }
    /// Message of a warn-or-worse log event (only those are interned, for
    /// the top-k of error messages).
    pub fn alert_message(&self) -> Option<&'a str> {
        self.store.messages.name(self.entry.message)
    }
    /// Interned id of [`Self::alert_message`] (or [`intern::NONE`]).
    pub fn message_id(&self) -> u32 {
        self.entry.message
    }
    /// Level, if any.
    pub fn level(&self) -> Option<Level> {
        Level::ALL.get(self.entry.level as usize).copied()
    }
    /// Kind.
    pub fn kind(&self) -> Kind {
        match self.entry.kind {
            0 => Kind::Log,
            1 => Kind::Metric,
            _ => Kind::Raw,
        }
    }
    /// How the payload was decoded.
    pub fn format(&self) -> Format {
        FORMATS[self.entry.format as usize]
    }
    /// JetStream stream and sequence, for JetStream events.
    pub fn stream_seq(&self) -> Option<(&'a str, u64)> {
        let stream = self.store.streams.name(u32::from(self.entry.stream))?;
        Some((stream, self.entry.seq))
    }
    /// Whether an earlier event had the same `Nats-Msg-Id`.
    pub fn is_duplicate(&self) -> bool {
        self.entry.flags & FLAG_DUPLICATE != 0
    }
    /// The payload bytes, as received.
    pub fn payload(&self) -> &'a [u8] {
        let start = self.entry.offset as usize;
        &self.chunk.data[start..start + self.entry.payload_len as usize]
    }
    /// Headers, in order.
    pub fn headers(&self) -> Vec<(String, String)> {
        let start = self.entry.offset as usize + self.entry.payload_len as usize;
        decode_headers(&self.chunk.data[start..start + self.entry.headers_len as usize])
    }
    /// The correlation id (from a header or a payload field, see
    /// `ingest::correlation`), if the event had one.
    pub fn correlation(&self) -> Option<&'a str> {
        if self.entry.corr_len == 0 {
            return None;
        }
        let start = self.entry.offset as usize
            + self.entry.payload_len as usize
            + self.entry.headers_len as usize
            + self.entry.samples as usize * SAMPLE_BYTES;
        std::str::from_utf8(&self.chunk.data[start..start + self.entry.corr_len as usize]).ok()
    }
    /// The reply subject the event was published with (a request's inbox),
    /// if any: core NATS only (a JetStream message's reply is its ack).
    pub fn reply(&self) -> Option<&'a str> {
        if self.entry.flags & FLAG_REPLY == 0 {
            return None;
        }
        let start = self.reply_start();
        let len = *self.chunk.data.get(start)? as usize;
        std::str::from_utf8(self.chunk.data.get(start + 1..start + 1 + len)?).ok()
    }
    /// Where the reply subject's length byte is (or would be).
    fn reply_start(&self) -> usize {
        self.entry.offset as usize
            + self.entry.payload_len as usize
            + self.entry.headers_len as usize
            + self.entry.samples as usize * SAMPLE_BYTES
            + self.entry.corr_len as usize
    }
    /// The subject kept in the event (flag [`FLAG_SUBJECT`]).
    fn own_subject(&self) -> Option<&'a str> {
        if self.entry.flags & FLAG_SUBJECT == 0 {
            return None;
        }
        let mut start = self.reply_start();
        if self.entry.flags & FLAG_REPLY != 0 {
            start += 1 + *self.chunk.data.get(start)? as usize;
        }
        let len = self.chunk.data.get(start..start + 2)?;
        let len = u16::from_le_bytes([len[0], len[1]]) as usize;
        std::str::from_utf8(self.chunk.data.get(start + 2..start + 2 + len)?).ok()
    }
    /// Metric samples.
    pub fn samples(&self) -> impl Iterator<Item = SampleRef<'a>> + 'a {
        let start = self.entry.offset as usize
            + self.entry.payload_len as usize
            + self.entry.headers_len as usize;
        let bytes = &self.chunk.data[start..start + self.entry.samples as usize * SAMPLE_BYTES];
        let store = self.store;
        bytes.chunks_exact(SAMPLE_BYTES).map(move |b| {
            let mut id = [0u8; 4];
            id.copy_from_slice(&b[..4]);
            let mut v = [0u8; 8];
            v.copy_from_slice(&b[4..]);
            let series_id = u32::from_le_bytes(id);
            SampleRef {
                series: store.series.name(series_id).unwrap_or(""),
                series_id,
                value: f64::from_le_bytes(v),
            }
        })
    }
}

const FORMATS: [Format; 5] = [
    Format::Json,
    Format::Logfmt,
    Format::Text,
    Format::OtherJson,
    Format::Binary,
];

fn format_code(f: Format) -> u8 {
    FORMATS.iter().position(|x| *x == f).unwrap_or(4) as u8
}

/// Headers as `u16 name len, name, u16 value len, value`, repeated.
fn encode_headers(headers: &[(String, String)], out: &mut Vec<u8>) {
    for (k, v) in headers {
        for s in [k, v] {
            let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
            out.extend_from_slice(&(b.len() as u16).to_le_bytes());
            out.extend_from_slice(b);
        }
    }
}

fn decode_headers(mut bytes: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let take = |bytes: &mut &[u8]| -> Option<String> {
        if bytes.len() < 2 {
            return None;
        }
        let n = u16::from_le_bytes([bytes[0], bytes[1]]) as usize;
        let s = bytes.get(2..2 + n)?;
        *bytes = &bytes[2 + n..];
        Some(String::from_utf8_lossy(s).into_owned())
    };
    while let (Some(k), Some(v)) = (take(&mut bytes), take(&mut bytes)) {
        out.push((k, v));
    }
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `name` or `name{k=v,k2=v2}`.
pub fn series_key(name: &str, tags: &[(String, String)]) -> String {
    if tags.is_empty() {
        return name.to_string();
    }
    let mut key = String::with_capacity(name.len() + 16 * tags.len());
    key.push_str(name);
    key.push('{');
    for (i, (k, v)) in tags.iter().enumerate() {
        if i > 0 {
            key.push(',');
        }
        key.push_str(k);
        key.push('=');
        key.push_str(v);
    }
    key.push('}');
    key
}

/// The event log.
#[derive(Debug)]
pub struct Store {
    cap_bytes: usize,
    chunk_bytes: usize,
    chunks: VecDeque<Chunk>,
    /// Chunks allocated (not reused) since the start.
    chunks_allocated: u64,
    next_id: u64,
    last_received_ms: i64,
    subjects: Interner,
    services: Interner,
    series: Interner,
    messages: Interner,
    streams: Interner,
    /// Recent `Nats-Msg-Id`s, as 128-bit hashes of the id and its scope
    /// (the stream for JetStream, as JetStream scopes them; the subject for
    /// core NATS): a fixed 16 bytes each however long the id. The value is
    /// the event id that carried it.
    recent_msg_ids: HashMap<u128, u64>,
    /// The same hashes, oldest first.
    recent_order: VecDeque<u128>,
    /// The two halves' hashers (random seeds: an id cannot be crafted to
    /// collide with another).
    dedup_hash: (foldhash::fast::RandomState, foldhash::fast::RandomState),
    stats: StoreStats,
    chunk_bytes_total: usize,
    dedup_window: usize,
    scratch: Vec<u8>,
    /// The first held id when the dictionaries were last swept.
    retired_at: u64,
}

impl Store {
    /// The byte cap it was made with.
    pub fn cap_bytes(&self) -> usize {
        self.cap_bytes
    }

    /// An empty store that never holds more than `cap_bytes`.
    pub fn new(cap_bytes: usize) -> Self {
        let chunk_bytes = CHUNK_BYTES.min((cap_bytes / 16).max(4096));
        // Dictionaries and the de-duplication window scale down with small
        // caps, so that they can never crowd out the events themselves.
        let dict = |max: usize| max.min((cap_bytes / 1024).max(64));
        // Each dictionary also holds at most a fortieth of the cap in
        // bytes (all five: an eighth), so no pattern of strings can fill
        // the log with dictionaries until it refuses events.
        let dict_bytes = (cap_bytes / 40).max(4096);
        Store {
            cap_bytes,
            chunk_bytes,
            chunks: VecDeque::new(),
            chunks_allocated: 0,
            next_id: 1,
            last_received_ms: i64::MIN,
            subjects: Interner::new(dict(MAX_SUBJECTS), dict_bytes),
            services: Interner::new(dict(MAX_SERVICES), dict_bytes),
            series: Interner::new(dict(MAX_SERIES), dict_bytes),
            messages: Interner::new(dict(MAX_MESSAGES), dict_bytes),
            streams: Interner::new(dict(MAX_STREAMS), dict_bytes),
            recent_msg_ids: HashMap::default(),
            recent_order: VecDeque::new(),
            dedup_hash: Default::default(),
            stats: StoreStats {
                cap_bytes: cap_bytes as u64,
                ..StoreStats::default()
            },
            chunk_bytes_total: 0,
            dedup_window: DEDUP_WINDOW.min(cap_bytes / 2048),
            scratch: Vec::new(),
            retired_at: 0,
        }
    }

    fn dict_bytes(&self) -> usize {
        self.subjects.bytes()
            + self.services.bytes()
            + self.series.bytes()
            + self.messages.bytes()
            + self.streams.bytes()
            + self.recent_order.len() * DEDUP_ENTRY_BYTES
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.chunk_bytes_total + self.dict_bytes()
    }

    /// Appends an event; returns its id, or `None` if it alone is larger
    /// than the cap (counted in `too_large`).
    pub fn append(&mut self, ev: &NewEvent) -> Option<u64> {
        let d = &ev.decoded;
        // Variable part: payload, headers, samples.
        let mut var = std::mem::take(&mut self.scratch);
        var.clear();
        var.extend_from_slice(&ev.payload);
        let payload_len = var.len();
        encode_headers(&ev.headers, &mut var);
        let headers_len = var.len() - payload_len;
        let samples = d.metrics.len().min(u16::MAX as usize);
        // What this event loses, counted only if it is kept.
        let samples_cut = u64::from(samples < d.metrics.len());
        for m in &d.metrics[..samples] {
            let id = self
                .series
                .intern(&series_key(&m.name, &m.tags), self.next_id);
            var.extend_from_slice(&id.to_le_bytes());
            var.extend_from_slice(&m.value.to_le_bytes());
        }
        let whole = d.correlation_id.as_deref().unwrap_or("");
        let correlation_cut = u64::from(whole.len() > u8::MAX as usize);
        let corr = truncate(whole, u8::MAX as usize);
        var.extend_from_slice(corr.as_bytes());
        // A reply subject too long for its length byte is left out, not cut.
        let reply_dropped = u64::from(
            ev.reply
                .as_deref()
                .is_some_and(|r| r.len() > u8::MAX as usize),
        );
        let reply = ev
            .reply
            .as_deref()
            .filter(|r| !r.is_empty() && r.len() <= u8::MAX as usize);
        if let Some(r) = reply {
            var.push(r.len() as u8);
            var.extend_from_slice(r.as_bytes());
        }
        // A one-off subject is grouped in the dictionary and kept whole in
        // the event; so is any subject once the dictionary is full.
        let (subject, own_subject) = match crate::event::one_off_group(&ev.subject) {
            Some(group) => (self.subjects.intern(group, self.next_id), true),
            None => {
                let id = self.subjects.intern(&ev.subject, self.next_id);
                (id, id == intern::OVERFLOW)
            }
        };
        if own_subject {
            let s = truncate(&ev.subject, u16::MAX as usize);
            var.extend_from_slice(&(s.len() as u16).to_le_bytes());
            var.extend_from_slice(s.as_bytes());
        }
        // A chunk that can hold it must fit under the cap on its own.
        let data_cap = self.chunk_bytes.max(var.len());
        let entries_cap = (data_cap / 256).max(16);
        let new_chunk_bytes = data_cap + entries_cap * std::mem::size_of::<Entry>();
        if new_chunk_bytes + self.dict_bytes() > self.cap_bytes || var.len() > u32::MAX as usize {
            self.stats.too_large += 1;
            self.scratch = var;
            return None;
        }
        self.stats.samples_cut += samples_cut;
        self.stats.correlation_ids_cut += correlation_cut;
        self.stats.reply_subjects_dropped += reply_dropped;

        // Room: a chunk with space for the bytes, under the cap.
        let fits = self.chunks.back().is_some_and(|c| {
            c.data.capacity() - c.data.len() >= var.len() && c.entries.len() < c.entries.capacity()
        });
        if !fits {
            // An evicted chunk of the same size is reused: at the cap, the
            // log then writes into memory it already has instead of
            // freeing a MiB and faulting in a fresh one (zeroed by the
            // kernel page by page) for every MiB of events.
            let mut spare = None;
            while !self.chunks.is_empty() && self.bytes() + new_chunk_bytes > self.cap_bytes {
                if let Some(old) = self.evict_oldest()
                    && old.data.capacity() == data_cap
                    && old.entries.capacity() == entries_cap
                {
                    spare = Some(old);
                }
            }
            let chunk = match spare {
                Some(mut c) => {
                    c.first_id = self.next_id;
                    c.data.clear();
                    c.entries.clear();
                    c
                }
                None => {
                    self.chunks_allocated += 1;
                    Chunk {
                        first_id: self.next_id,
                        data: Vec::with_capacity(data_cap),
                        entries: Vec::with_capacity(entries_cap),
                    }
                }
            };
            self.chunk_bytes_total += chunk.bytes();
            self.chunks.push_back(chunk);
            self.retire_unused();
        }

        let received_ms = ev.received_ms.max(self.last_received_ms);
        self.last_received_ms = received_ms;
        let duplicate = ev.header("Nats-Msg-Id").is_some_and(|msg_id| {
            use std::hash::BuildHasher;
            let scope: &str = match &ev.source {
                Source::JetStream { stream, .. } => stream,
                Source::Core => &ev.subject,
            };
            let key = (u128::from(self.dedup_hash.0.hash_one((scope, msg_id))) << 64)
                | u128::from(self.dedup_hash.1.hash_one((scope, msg_id)));
            let seen = self.recent_msg_ids.contains_key(&key);
            if !seen {
                self.recent_msg_ids.insert(key, self.next_id);
                self.recent_order.push_back(key);
                if self.recent_order.len() > self.dedup_window
                    && let Some(old) = self.recent_order.pop_front()
                {
                    self.recent_msg_ids.remove(&old);
                }
            }
            seen
        });
        let (stream, seq) = match &ev.source {
            Source::Core => (NONE, 0),
            Source::JetStream { stream, seq } => (self.streams.intern(stream, self.next_id), *seq),
        };
        let service = d
            .service
            .as_deref()
            .map_or(NONE, |s| self.services.intern(s, self.next_id));
        let message = match (d.level, &d.message) {
            // A long message is grouped by its start (the event keeps it
            // whole in its payload).
            (Some(l), Some(m)) if l >= Level::Warn && m.len() > intern::MAX_LEN => {
                let mut cut = truncate(m, intern::MAX_LEN - '…'.len_utf8()).to_string();
                cut.push('…');
                self.stats.messages_cut += 1;
                self.messages.intern(&cut, self.next_id)
            }
            (Some(l), Some(m)) if l >= Level::Warn => self.messages.intern(m, self.next_id),
            _ => NONE,
        };
        let Some(chunk) = self.chunks.back_mut() else {
            self.scratch = var;
            return None;
        };
        let entry = Entry {
            received_ms,
            time_ms: d.time_ms.unwrap_or(received_ms),
            seq,
            offset: chunk.data.len() as u32,
            payload_len: payload_len as u32,
            headers_len: headers_len as u32,
            subject,
            service,
            message,
            samples: samples as u16,
            stream: stream.min(u32::from(u8::MAX)) as u8,
            corr_len: corr.len() as u8,
            kind: match d.kind {
                Kind::Log => 0,
                Kind::Metric => 1,
                Kind::Raw => 2,
            },
            format: format_code(d.format),
            level: d.level.map_or(LEVEL_NONE, |l| l as u8),
            flags: if duplicate { FLAG_DUPLICATE } else { 0 }
                | if reply.is_some() { FLAG_REPLY } else { 0 }
                | if own_subject { FLAG_SUBJECT } else { 0 },
        };
        chunk.data.extend_from_slice(&var);
        chunk.entries.push(entry);
        self.scratch = var;

        let id = self.next_id;
        self.next_id += 1;
        self.stats.appended += 1;
        self.stats.events += 1;
        self.stats.payload_bytes += payload_len as u64;
        self.stats.duplicates += u64::from(duplicate);
        self.stats.raw += u64::from(d.kind == Kind::Raw);
        Some(id)
    }

    /// Lets the dictionaries that are nearly full forget the strings no
    /// held event uses (the streams' ids are kept: an event has a byte for
    /// one). At most eight times per turn of the log: each sweep walks a
    /// dictionary.
    fn retire_unused(&mut self) {
        let Some(first) = self.first_id() else { return };
        if first.saturating_sub(self.retired_at) < (self.stats.events / 8).max(1) {
            return;
        }
        self.retired_at = first;
        for d in [
            &mut self.subjects,
            &mut self.services,
            &mut self.series,
            &mut self.messages,
        ] {
            if d.nearly_full() {
                d.retire_before(first);
            }
        }
    }

    /// Evicts the oldest chunk and hands it back (for reuse).
    fn evict_oldest(&mut self) -> Option<Chunk> {
        let chunk = self.chunks.pop_front()?;
        let n = chunk.entries.len() as u64;
        self.chunk_bytes_total -= chunk.bytes();
        self.stats.evicted += n;
        self.stats.events -= n;
        self.stats.payload_bytes -= chunk
            .entries
            .iter()
            .map(|e| u64::from(e.payload_len))
            .sum::<u64>();
        Some(chunk)
    }

    /// Counters, with `bytes` up to date.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            bytes: self.bytes() as u64,
            interner_overflow: self
                .dictionaries()
                .map(|(_, d)| d.overflowed() + d.too_long())
                .sum(),
            ..self.stats.clone()
        }
    }

    /// Events held now (cheaper than [`Store::stats`] on the hot path).
    pub fn held(&self) -> u64 {
        self.stats.events
    }

    /// Id of the oldest event held, if any.
    pub fn first_id(&self) -> Option<u64> {
        self.chunks
            .iter()
            .find(|c| !c.entries.is_empty())
            .map(|c| c.first_id)
    }

    /// Id of the newest event held, if any.
    pub fn last_id(&self) -> Option<u64> {
        (self.stats.events > 0).then(|| self.next_id - 1)
    }

    /// The id the next appended event will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// The event with `id`, if still held.
    pub fn get(&self, id: u64) -> Option<EventRef<'_>> {
        // The newest chunk first: what was just appended is read back.
        let chunk = match self.chunks.back() {
            Some(last) if last.first_id <= id => last,
            _ => {
                let i = self.chunks.partition_point(|c| c.first_id <= id);
                self.chunks.get(i.checked_sub(1)?)?
            }
        };
        let entry = chunk
            .entries
            .get(usize::try_from(id - chunk.first_id).ok()?)?;
        Some(EventRef {
            store: self,
            chunk,
            entry,
            id,
        })
    }

    /// Events with ids in `from..=to` that are still held, oldest first.
    pub fn range(&self, from: u64, to: u64) -> impl Iterator<Item = EventRef<'_>> + '_ {
        let start = self
            .chunks
            .partition_point(|c| c.first_id <= from)
            .saturating_sub(1);
        self.chunks
            .range(start..)
            .take_while(move |c| c.first_id <= to)
            .flat_map(move |chunk| self.events_of(chunk))
            .skip_while(move |e| e.id < from)
            .take_while(move |e| e.id <= to)
    }

    /// Every held event, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = EventRef<'_>> + '_ {
        self.range(0, u64::MAX)
    }

    /// Every held event, newest first.
    pub fn iter_rev(&self) -> impl Iterator<Item = EventRef<'_>> + '_ {
        self.chunks
            .iter()
            .rev()
            .flat_map(move |chunk| self.events_of(chunk).rev())
    }

    /// Held events with ids at most `upto`, newest first: the walk starts
    /// there (a binary search over chunks), not at the newest event, so a
    /// page deep in the log costs what it reads.
    pub fn iter_rev_upto(&self, upto: u64) -> impl Iterator<Item = EventRef<'_>> + '_ {
        let end = self.chunks.partition_point(|c| c.first_id <= upto);
        self.chunks.range(..end).rev().flat_map(move |chunk| {
            let n =
                usize::try_from(upto - chunk.first_id).map_or(usize::MAX, |n| n.saturating_add(1));
            self.events_of(chunk).take(n).rev()
        })
    }

    /// The events of one chunk, oldest first.
    fn events_of<'a>(
        &'a self,
        chunk: &'a Chunk,
    ) -> impl DoubleEndedIterator<Item = EventRef<'a>> + ExactSizeIterator + 'a {
        chunk
            .entries
            .iter()
            .enumerate()
            .map(move |(i, entry)| EventRef {
                store: self,
                chunk,
                entry,
                id: chunk.first_id + i as u64,
            })
    }

    /// Id of the last event received at or before `ms`, if any is held.
    pub fn last_id_at(&self, ms: i64) -> Option<u64> {
        // Received times are monotonic: binary search chunks, then entries.
        let ci = self
            .chunks
            .partition_point(|c| c.entries.first().is_some_and(|e| e.received_ms <= ms));
        let chunk = self.chunks.get(ci.checked_sub(1)?)?;
        let ei = chunk.entries.partition_point(|e| e.received_ms <= ms);
        Some(chunk.first_id + ei.checked_sub(1)? as u64)
    }

    /// Events held per bucket of received time: bucket `k` covers
    /// `[start + k·step, start + (k+1)·step)`. Received times are monotonic
    /// and ids contiguous, so each bucket is a difference of two binary
    /// searches: O(n log events), not a scan of the log.
    pub fn counts_per_bucket(&self, start: i64, step: i64, n: usize) -> Vec<u64> {
        let (Some(first), Some(_)) = (self.first_id(), self.last_id()) else {
            return vec![0; n];
        };
        // The id of the last event received before `ms`, as a count of the
        // held events before it (0: none).
        let before = |ms: i64| {
            self.last_id_at(ms.saturating_sub(1))
                .map_or(0, |id| id + 1 - first)
        };
        let mut out = Vec::with_capacity(n);
        let mut below = before(start);
        for k in 1..=n as i64 {
            let upto = before(start.saturating_add(k.saturating_mul(step)));
            out.push(upto - below);
            below = upto;
        }
        out
    }

    /// Received time of the oldest and newest events held.
    pub fn span_ms(&self) -> Option<(i64, i64)> {
        let first = self.chunks.iter().find_map(|c| c.entries.first())?;
        let last = self.chunks.iter().rev().find_map(|c| c.entries.last())?;
        Some((first.received_ms, last.received_ms))
    }

    /// The dictionaries by name (for `/metrics`).
    pub fn dictionaries(&self) -> impl Iterator<Item = (&'static str, &Interner)> {
        [
            ("subjects", &self.subjects),
            ("services", &self.services),
            ("series", &self.series),
            ("messages", &self.messages),
            ("streams", &self.streams),
        ]
        .into_iter()
    }

    /// The subjects dictionary (for pattern matching in queries).
    pub fn subjects(&self) -> &Interner {
        &self.subjects
    }

    /// The services dictionary.
    pub fn services(&self) -> &Interner {
        &self.services
    }

    /// The alert-messages dictionary (warn-or-worse log messages).
    pub fn messages(&self) -> &Interner {
        &self.messages
    }

    /// The metric-series dictionary.
    pub fn series(&self) -> &Interner {
        &self.series
    }
}

#[cfg(test)]
mod tests;
