//! The queue between the sources and the hub, bounded in events *and*
//! bytes (not in batches: a queue of 16 batches held 16 events when the
//! batches were small, so a pause of the hub of a few tens of milliseconds
//! lost events at 120k events/s). A batch holds its share of the budget
//! until the hub has folded it, so what is between NATS and the log is at
//! most [`QUEUE_EVENTS`] events and [`QUEUE_BYTES`] bytes, however it is
//! cut into batches.

use crate::event::NewEvent;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Events the queue holds at most: about half a second at 120k events/s.
pub const QUEUE_EVENTS: usize = 65_536;
/// Bytes the queue holds at most (see [`weight`]).
pub const QUEUE_BYTES: usize = 64 << 20;

/// What an event weighs in the queue: its payload, subject, reply and
/// headers, and the event itself.
pub fn weight(e: &NewEvent) -> usize {
    std::mem::size_of::<NewEvent>()
        + e.payload.len()
        + e.subject.len()
        + e.reply.as_ref().map_or(0, String::len)
        + e.headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
}

/// A batch on its way to the hub, with its room in the queue (given back
/// when the batch is dropped, after folding).
#[derive(Debug)]
pub struct Batch {
    /// The events, in the order they were received.
    pub events: Vec<NewEvent>,
    _room: Room,
}

/// Room in the queue for some events and bytes.
#[derive(Debug)]
pub struct Room {
    _events: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

/// The queue was closed: the hub has stopped.
#[derive(Debug, thiserror::Error)]
#[error("the hub's queue is closed")]
pub struct Closed;

/// The sending side (cloned by every source).
#[derive(Clone, Debug)]
pub struct Sender {
    tx: mpsc::UnboundedSender<Batch>,
    events: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    /// The budget: events, bytes.
    cap: (u32, u32),
}

/// The room a batch needs: events, bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need(u32, u32);

/// The hub's side.
#[derive(Debug)]
pub struct Receiver {
    rx: mpsc::UnboundedReceiver<Batch>,
}

/// A queue of at most [`QUEUE_EVENTS`] events and [`QUEUE_BYTES`] bytes.
pub fn queue() -> (Sender, Receiver) {
    bounded(QUEUE_EVENTS, QUEUE_BYTES)
}

/// A queue of at most `events` events and `bytes` bytes.
pub fn bounded(events: usize, bytes: usize) -> (Sender, Receiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Sender {
            tx,
            events: Arc::new(Semaphore::new(events)),
            bytes: Arc::new(Semaphore::new(bytes)),
            cap: (permits(events), permits(bytes)),
        },
        Receiver { rx },
    )
}

fn permits(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Sender {
    /// What `events` needs, capped at the whole budget (a batch bigger
    /// than the queue still goes through, alone).
    pub fn need(&self, events: &[NewEvent]) -> Need {
        let bytes: usize = events.iter().map(weight).sum();
        Need(
            permits(events.len()).min(self.cap.0),
            permits(bytes).min(self.cap.1),
        )
    }

    /// Waits until the queue has room for `events` as they are now.
    pub async fn room_for(&self, events: &[NewEvent]) -> Result<Room, Closed> {
        self.room(self.need(events)).await
    }

    /// Waits until the queue has room for what [`Sender::need`] said.
    pub async fn room(&self, need: Need) -> Result<Room, Closed> {
        let Need(n, bytes) = need;
        let events = Arc::clone(&self.events)
            .acquire_many_owned(n)
            .await
            .map_err(|_| Closed)?;
        let bytes = Arc::clone(&self.bytes)
            .acquire_many_owned(bytes)
            .await
            .map_err(|_| Closed)?;
        Ok(Room {
            _events: events,
            _bytes: bytes,
        })
    }

    /// Sends `events` in `room` (made by [`Sender::room_for`] for them).
    pub fn send_in(&self, room: Room, events: Vec<NewEvent>) -> Result<(), Closed> {
        self.tx
            .send(Batch {
                events,
                _room: room,
            })
            .map_err(|_| Closed)
    }

    /// Waits for room, then sends.
    pub async fn send(&self, events: Vec<NewEvent>) -> Result<(), Closed> {
        let room = self.room_for(&events).await?;
        self.send_in(room, events)
    }

    /// Sends as many of `events` (from the front) as the queue has room
    /// for now; the rest stay in `events`.
    pub fn send_what_fits(&self, events: &mut Vec<NewEvent>) -> Result<(), Closed> {
        if self.tx.is_closed() {
            return Err(Closed);
        }
        let (mut n, mut bytes) = (0usize, 0usize);
        let (free_events, free_bytes) = (
            self.events.available_permits(),
            self.bytes.available_permits(),
        );
        for e in events.iter() {
            let w = weight(e);
            if n + 1 > free_events || bytes + w > free_bytes {
                break;
            }
            n += 1;
            bytes += w;
        }
        if n == 0 {
            return Ok(());
        }
        // Only this sender takes room without waiting, and others only
        // wait: what was available is still there.
        let (Ok(e), Ok(b)) = (
            Arc::clone(&self.events).try_acquire_many_owned(permits(n)),
            Arc::clone(&self.bytes).try_acquire_many_owned(permits(bytes)),
        ) else {
            return Ok(());
        };
        let rest = events.split_off(n);
        let batch = std::mem::replace(events, rest);
        self.send_in(
            Room {
                _events: e,
                _bytes: b,
            },
            batch,
        )
    }
}

impl Receiver {
    /// Takes up to `limit` batches, waiting for the first; 0 when every
    /// sender is gone.
    pub async fn recv_many(&mut self, buf: &mut Vec<Batch>, limit: usize) -> usize {
        self.rx.recv_many(buf, limit).await
    }

    /// Refuses every batch sent from now on (their senders are told, and a
    /// JetStream source then does not acknowledge them); those already
    /// queued can still be taken.
    pub fn close(&mut self) {
        self.rx.close();
    }

    /// Takes up to `limit` batches already waiting, without waiting.
    pub fn try_recv_many(&mut self, buf: &mut Vec<Batch>, limit: usize) -> usize {
        let mut n = 0;
        while n < limit {
            let Ok(batch) = self.rx.try_recv() else { break };
            buf.push(batch);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(n: usize, payload: usize) -> Vec<NewEvent> {
        (0..n)
            .map(|i| NewEvent::core("q.t", "x".repeat(payload), i as i64))
            .collect()
    }

    #[tokio::test]
    async fn holds_at_most_its_budget_of_events_whatever_the_batches() {
        let (tx, mut rx) = bounded(100, 1 << 30);
        // 1-event batches: 100 fit, not 100 batches of anything.
        let mut sent = 0;
        for _ in 0..150 {
            let mut one = events(1, 10);
            tx.send_what_fits(&mut one).expect("open");
            sent += usize::from(one.is_empty());
        }
        assert_eq!(sent, 100);
        // A batch of 30 with 0 room: nothing goes, all stay.
        let mut more = events(30, 10);
        tx.send_what_fits(&mut more).expect("open");
        assert_eq!(more.len(), 30);
        // The hub folds 25 batches (dropping them): 25 of the 30 go.
        let mut got = Vec::new();
        rx.recv_many(&mut got, 25).await;
        drop(got);
        tx.send_what_fits(&mut more).expect("open");
        assert_eq!(more.len(), 5);
    }

    #[tokio::test]
    async fn holds_at_most_its_budget_of_bytes() {
        let one = weight(&events(1, 1_000)[0]);
        let (tx, _rx) = bounded(1_000, one * 3 + one / 2);
        let mut batch = events(10, 1_000);
        tx.send_what_fits(&mut batch).expect("open");
        assert_eq!(batch.len(), 7, "three events' bytes fit");
    }

    #[tokio::test]
    async fn a_waiting_sender_goes_once_the_hub_has_folded() {
        let (tx, mut rx) = bounded(10, 1 << 30);
        tx.send(events(10, 1)).await.expect("fits");
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(events(5, 1)).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "no room yet");
        let mut got = Vec::new();
        rx.recv_many(&mut got, 1).await;
        assert_eq!(got[0].events.len(), 10);
        drop(got);
        waiting.await.expect("task").expect("sent");
        let mut got = Vec::new();
        rx.recv_many(&mut got, 1).await;
        assert_eq!(got[0].events.len(), 5);
    }

    #[tokio::test]
    async fn a_batch_bigger_than_the_queue_still_goes_alone() {
        let (tx, mut rx) = bounded(4, 1 << 30);
        tx.send(events(9, 1)).await.expect("goes");
        let mut got = Vec::new();
        rx.recv_many(&mut got, 1).await;
        assert_eq!(got[0].events.len(), 9);
    }
}
