//! Event counts per subject, with events-per-second over the last second,
//! for the total and for each subject.
//!
//! The subject table is bounded: past `max_subjects` distinct subjects, new
//! subjects are counted under one [`OVERFLOW_SUBJECT`] row, and how many
//! distinct subjects went there is reported in `health.overflow_subjects`.

use app::wire::{Counts, Health, OVERFLOW_SUBJECT, SubjectCount};
use foldhash::{HashMap, HashSet};
use std::collections::VecDeque;

/// Length of the window the rates are measured over.
const RATE_WINDOW_MS: u64 = 1_000;

/// Counter samples over the last [`RATE_WINDOW_MS`], for a rate.
#[derive(Debug, Default)]
struct RateWindow {
    /// `(time_ms, counter)` samples, oldest first; the first one is at or
    /// before `now - RATE_WINDOW_MS` once the window is full.
    samples: VecDeque<(u64, u64)>,
}

impl RateWindow {
    /// A window whose counter was `count` at `now_ms`.
    fn starting_at(now_ms: u64, count: u64) -> Self {
        RateWindow {
            samples: VecDeque::from([(now_ms, count)]),
        }
    }

    /// Records `count` at `now_ms` and returns the rate per second since the
    /// oldest sample still inside the window.
    fn sample(&mut self, now_ms: u64, count: u64) -> f64 {
        self.samples.push_back((now_ms, count));
        // Keep exactly one sample at or before the window's start.
        while self.samples.len() > 2 && self.samples[1].0 + RATE_WINDOW_MS <= now_ms {
            self.samples.pop_front();
        }
        match self.samples.front() {
            Some(&(t0, c0)) if now_ms > t0 => {
                // Divide by the full window even when the oldest sample is
                // younger (just after start): "events in the last second".
                let span = (now_ms - t0).max(RATE_WINDOW_MS);
                count.saturating_sub(c0) as f64 * 1000.0 / span as f64
            }
            _ => 0.0,
        }
    }
}

#[derive(Debug, Default)]
struct Row {
    count: u64,
    rate: f64,
    window: RateWindow,
    /// What the last delta or snapshot said; `None` before the first.
    sent: Option<(u64, f64)>,
}

/// Bytes of subject names the table holds (and as many for the subjects
/// it remembers as overflowed): 10,000 rows of 400 bytes, 1,000 of 4 KiB.
pub const MAX_SUBJECT_BYTES: usize = 4 << 20;

/// Counts per subject: the walking skeleton's projection.
#[derive(Debug)]
pub struct SubjectCounts {
    max_subjects: usize,
    total: u64,
    total_rate: f64,
    total_window: RateWindow,
    rows: HashMap<String, Row>,
    overflowed: HashSet<String>,
    /// Bytes of the subjects in `rows` and in `overflowed`, each held to
    /// [`MAX_SUBJECT_BYTES`] (a subject may be kilobytes long).
    row_bytes: usize,
    overflowed_bytes: usize,
    health: Health,
    nats_connected: bool,
    /// Time of the last `tick`, the start of a new row's rate window.
    last_tick_ms: u64,
    /// The scalar fields as the last delta sent them.
    sent_scalars: Option<(u64, f64, Health, bool)>,
}

impl SubjectCounts {
    /// An empty projection keeping at most `max_subjects` rows (plus the
    /// overflow row).
    pub fn new(max_subjects: usize) -> Self {
        SubjectCounts {
            max_subjects,
            total: 0,
            total_rate: 0.0,
            total_window: RateWindow::starting_at(0, 0),
            rows: HashMap::default(),
            overflowed: HashSet::default(),
            row_bytes: 0,
            overflowed_bytes: 0,
            health: Health::default(),
            nats_connected: false,
            last_tick_ms: 0,
            sent_scalars: None,
        }
    }

    /// Folds one event, seen on `subject`, into the counts.
    pub fn apply(&mut self, subject: &str) {
        // Every request has its own reply inbox, every acknowledged
        // JetStream message its own ack subject: one row for each kind.
        let subject = crate::event::one_off_group(subject).unwrap_or(subject);
        self.total += 1;
        if let Some(row) = self.rows.get_mut(subject) {
            row.count += 1;
            return;
        }
        let key = if self.rows.len() < self.max_subjects
            && self.row_bytes + subject.len() <= MAX_SUBJECT_BYTES
        {
            self.row_bytes += subject.len();
            subject
        } else {
            // Remember which subjects overflowed, but only as many as the
            // table could have held, so this set is bounded too.
            if self.overflowed.len() < self.max_subjects
                && self.overflowed_bytes + subject.len() <= MAX_SUBJECT_BYTES
                && self.overflowed.insert(subject.into())
            {
                self.overflowed_bytes += subject.len();
                self.health.overflow_subjects += 1;
            }
            OVERFLOW_SUBJECT
        };
        let since = self.last_tick_ms;
        self.rows
            .entry(key.to_string())
            .or_insert_with(|| Row {
                window: RateWindow::starting_at(since, 0),
                ..Row::default()
            })
            .count += 1;
    }

    /// Advances the clock to `now_ms` (milliseconds on any monotonic clock)
    /// and recomputes the rates.
    pub fn tick(&mut self, now_ms: u64) {
        self.last_tick_ms = now_ms;
        self.total_rate = self.total_window.sample(now_ms, self.total);
        for row in self.rows.values_mut() {
            row.rate = row.window.sample(now_ms, row.count);
        }
    }

    /// Sets the counters that come from outside the fold (drops, NATS state).
    pub fn set_status(&mut self, health: Health, nats_connected: bool) {
        self.health = Health {
            overflow_subjects: self.health.overflow_subjects,
            ..health
        };
        self.nats_connected = nats_connected;
    }

    /// The complete current state.
    pub fn snapshot(&self) -> Counts {
        Counts {
            total: self.total,
            rate: self.total_rate,
            subjects: self
                .rows
                .iter()
                .map(|(k, r)| {
                    (
                        k.clone(),
                        SubjectCount {
                            count: r.count,
                            rate: r.rate,
                        },
                    )
                })
                .collect(),
            nats_connected: self.nats_connected,
            health: self.health.clone(),
        }
    }

    /// What changed since the previous call (or since the start): `None`
    /// when nothing did. Subjects carry absolute values.
    pub fn take_delta(&mut self) -> Option<Counts> {
        let mut delta = Counts {
            total: self.total,
            rate: self.total_rate,
            nats_connected: self.nats_connected,
            health: self.health.clone(),
            ..Counts::default()
        };
        for (subject, row) in &mut self.rows {
            let now = (row.count, row.rate);
            if row.sent != Some(now) {
                row.sent = Some(now);
                delta.subjects.insert(
                    subject.clone(),
                    SubjectCount {
                        count: row.count,
                        rate: row.rate,
                    },
                );
            }
        }
        let scalars = (
            self.total,
            self.total_rate,
            self.health.clone(),
            self.nats_connected,
        );
        let scalars_changed = self.sent_scalars.as_ref() != Some(&scalars);
        self.sent_scalars = Some(scalars);
        (scalars_changed || !delta.subjects.is_empty()).then_some(delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_event_per_subject() {
        let mut p = SubjectCounts::new(10);
        for _ in 0..3 {
            p.apply("a");
        }
        p.apply("b");
        let s = p.snapshot();
        assert_eq!(s.total, 4);
        assert_eq!(s.subjects["a"].count, 3);
        assert_eq!(s.subjects["b"].count, 1);
    }

    #[test]
    fn reply_inboxes_and_acks_share_a_row_each() {
        let mut p = SubjectCounts::new(10);
        for i in 0..50 {
            p.apply(&format!("_INBOX.payments.{i}"));
        }
        p.apply("orders.placed");
        p.apply("$JS.ACK.ACCOUNTS.statements.1.5.5.1795672800000000000.0");
        p.apply("$JS.ACK.ACCOUNTS.statements.1.6.6.1795672800000000001.0");
        let c = p.snapshot();
        assert_eq!(c.subjects.len(), 3);
        assert_eq!(c.subjects[crate::event::INBOX_GROUP].count, 50);
        assert_eq!(c.subjects[crate::event::ACK_GROUP].count, 2);
        assert_eq!(c.health.overflow_subjects, 0);
    }

    #[test]
    fn delta_carries_only_changed_subjects_and_snapshot_plus_deltas_equals_state() {
        let mut p = SubjectCounts::new(10);
        let mut client = p.snapshot();
        p.apply("a");
        p.apply("b");
        p.tick(100);
        client.apply_delta(p.take_delta().expect("changed"));
        p.apply("b");
        p.tick(200);
        let d = p.take_delta().expect("changed");
        assert!(d.subjects.contains_key("b"));
        // "a" changed only by its rate window, which still holds its event.
        assert!(!d.subjects.contains_key("a"), "{d:?}");
        client.apply_delta(d);
        assert_eq!(client, p.snapshot());
        assert!(p.take_delta().is_none(), "nothing changed since");
    }

    #[test]
    fn rate_is_events_in_the_last_second_and_decays_to_zero() {
        let mut p = SubjectCounts::new(10);
        p.tick(0);
        for t in 1..=20u64 {
            for _ in 0..10 {
                p.apply("a");
            }
            p.tick(t * 100); // 100 events per second for 2 s
        }
        let s = p.snapshot();
        assert!((s.rate - 100.0).abs() < 1e-9, "rate {}", s.rate);
        assert!((s.subjects["a"].rate - 100.0).abs() < 1e-9);
        p.tick(3_100);
        p.tick(3_200);
        assert_eq!(p.snapshot().rate, 0.0);
        assert_eq!(p.snapshot().subjects["a"].rate, 0.0);
    }

    #[test]
    fn startup_burst_is_not_inflated() {
        let mut p = SubjectCounts::new(10);
        p.tick(0);
        for _ in 0..50 {
            p.apply("a");
        }
        p.tick(100);
        // 50 events in the first 100 ms: 50 in the last second.
        assert!(
            (p.snapshot().rate - 50.0).abs() < 1e-9,
            "{}",
            p.snapshot().rate
        );
        assert!((p.snapshot().subjects["a"].rate - 50.0).abs() < 1e-9);
    }

    #[test]
    fn subject_table_is_bounded_and_overflow_is_counted() {
        let mut p = SubjectCounts::new(2);
        for s in ["a", "b", "c", "d", "c"] {
            p.apply(s);
        }
        let s = p.snapshot();
        assert_eq!(s.total, 5);
        assert_eq!(s.subjects.len(), 3, "{:?}", s.subjects.keys());
        assert_eq!(s.subjects[OVERFLOW_SUBJECT].count, 3);
        assert_eq!(s.health.overflow_subjects, 2, "c and d, each once");
    }

    #[test]
    fn subject_table_is_bounded_in_bytes_too() {
        let mut p = SubjectCounts::new(10_000);
        let long = |i: usize| format!("{i:04}.{}", "x".repeat(4_000));
        for i in 0..3_000 {
            p.apply(&long(i));
        }
        let s = p.snapshot();
        let held: usize = s.subjects.keys().map(String::len).sum();
        assert!(held <= MAX_SUBJECT_BYTES + OVERFLOW_SUBJECT.len(), "{held}");
        assert!(s.subjects.len() > 1_000, "{}", s.subjects.len());
        assert!(s.subjects[OVERFLOW_SUBJECT].count > 1_000);
        assert!(p.overflowed_bytes <= MAX_SUBJECT_BYTES);
        assert_eq!(s.total, 3_000);
        // A short subject still fits where a long one did not.
        p.apply("short.one");
        assert_eq!(p.snapshot().subjects["short.one"].count, 1);
    }

    #[test]
    fn status_changes_alone_make_a_delta() {
        let mut p = SubjectCounts::new(2);
        let _ = p.take_delta();
        assert!(p.take_delta().is_none());
        p.set_status(
            Health {
                dropped_ingest: 3,
                ..Health::default()
            },
            true,
        );
        let d = p.take_delta().expect("status changed");
        assert!(d.nats_connected);
        assert_eq!(d.health.dropped_ingest, 3);
        assert!(d.subjects.is_empty());
    }
}
