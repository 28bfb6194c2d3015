//! JetStream sources (PRODUCT.md F1): a stream attached by name with a
//! start point, read in order through an ephemeral pull consumer (what an
//! ordered consumer is, with a wider window: see [`PULL_WINDOW`]), or a
//! durable one (named by `--durable`, which remembers on the server what
//! was acknowledged, so a restarted Eventscope goes on where the last one
//! stopped; each message is acknowledged only once handed to the hub, so
//! one in flight when a run stops comes again). JetStream is the durable
//! log here, so this source never drops: when the hub's queue is full it
//! waits (JetStream holds the rest). It remembers the last stream sequence
//! it handed on, and whenever the consumer has to be made again (NATS
//! restarted, consumer lost) it resumes right after it: nothing lost,
//! nothing doubled. Sequence gaps (messages removed by the stream's limits
//! before we read them) are counted.

use super::flatten_headers;
use crate::event::{NewEvent, Source, now_ms};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{self};
use futures::StreamExt;
use futures::stream::BoxStream;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Where reading a stream starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartPoint {
    /// Only messages stored from now on.
    New,
    /// Every message the stream holds.
    All,
    /// From this stream sequence.
    Seq(u64),
    /// From this time (Unix ms).
    Time(i64),
}

/// A stream to read: `NAME`, `NAME@new`, `NAME@all`, `NAME@seq:1200` or
/// `NAME@time:2026-11-26T06:00:00Z`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSource {
    /// Stream name.
    pub stream: String,
    /// Start point (default `new`).
    pub start: StartPoint,
}

impl FromStr for StreamSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, start) = s.split_once('@').unwrap_or((s, "new"));
        if name.is_empty() || name.contains(['.', '*', '>', ' ']) {
            return Err(format!(
                "{name:?} is not a stream name (names have no dots, spaces or wildcards)"
            ));
        }
        let start = match start {
            "new" => StartPoint::New,
            "all" => StartPoint::All,
            other => {
                if let Some(seq) = other.strip_prefix("seq:") {
                    StartPoint::Seq(seq.parse().map_err(|_| {
                        format!("{seq:?} is not a stream sequence (a whole number)")
                    })?)
                } else if let Some(t) = other.strip_prefix("time:") {
                    StartPoint::Time(
                        chrono::DateTime::parse_from_rfc3339(t)
                            .map_err(|_| format!("{t:?} is not an RFC 3339 time"))?
                            .timestamp_millis(),
                    )
                } else {
                    return Err(format!(
                        "{other:?} is not a start point; use new, all, seq:N or time:RFC3339"
                    ));
                }
            }
        };
        Ok(StreamSource {
            stream: name.to_string(),
            start,
        })
    }
}

fn deliver_policy(start: StartPoint, resume_after: Option<u64>) -> DeliverPolicy {
    if let Some(seq) = resume_after {
        return DeliverPolicy::ByStartSequence {
            start_sequence: seq + 1,
        };
    }
    match start {
        StartPoint::New => DeliverPolicy::New,
        StartPoint::All => DeliverPolicy::All,
        StartPoint::Seq(s) => DeliverPolicy::ByStartSequence {
            start_sequence: s.max(1),
        },
        StartPoint::Time(ms) => DeliverPolicy::ByStartTime {
            start_time: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        },
    }
}

/// Messages from either kind of consumer.
pub type Messages = BoxStream<'static, Result<jetstream::Message, async_nats::Error>>;

/// Messages asked for at once: a pull asks for this many (or
/// [`PULL_WINDOW_BYTES`], whichever is reached first) and the next one
/// goes out when half have arrived. async-nats's ordered consumer asks for
/// 500, which leaves a reader that does real work per message idle while
/// it waits for the next pull: reading a stored stream went from 378k to
/// about 560k events/s with this window (docs/PERFORMANCE.md).
pub const PULL_WINDOW: usize = 8_192;

/// Bytes asked for at once, at most: what bounds the messages in flight
/// (received but not yet read) when payloads are large.
pub const PULL_WINDOW_BYTES: usize = 16 << 20;

/// Idle heartbeat of a pull: two missed ones end the messages with an
/// error, and the source attaches again.
const PULL_HEARTBEAT: Duration = Duration::from_secs(15);

/// Reads `stream` in order from `deliver`, through an ephemeral pull
/// consumer that needs no acknowledgements and that the server removes
/// 30 s after we are gone (what an ordered consumer is), asking for
/// [`PULL_WINDOW`] messages at a time. Messages are not lost in between (the
/// window is far below the client's buffer); the reader still checks the
/// consumer sequence and attaches again if one is missing.
pub async fn read_ephemeral(
    stream: &jetstream::stream::Stream,
    deliver_policy: DeliverPolicy,
) -> Result<Messages, async_nats::Error> {
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy,
            description: Some(super::consumers::OWN_CONSUMER.to_string()),
            ack_policy: AckPolicy::None,
            max_deliver: 1,
            inactive_threshold: Duration::from_secs(30),
            num_replicas: 1,
            memory_storage: true,
            ..pull::Config::default()
        })
        .await?;
    pull_messages(&consumer).await
}

/// The messages of a pull consumer, [`PULL_WINDOW`] at a time.
async fn pull_messages(
    consumer: &jetstream::consumer::PullConsumer,
) -> Result<Messages, async_nats::Error> {
    Ok(consumer
        .stream()
        .max_messages_per_batch(PULL_WINDOW)
        .max_bytes_per_batch(PULL_WINDOW_BYTES)
        .heartbeat(PULL_HEARTBEAT)
        .messages()
        .await?
        .map(|m| m.map_err(Into::into))
        .boxed())
}

/// Pause before attaching again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// Reads `source` until `shutdown`, forwarding every message to `tx`.
pub async fn run(
    client: async_nats::Client,
    source: StreamSource,
    durable: Option<String>,
    pipe: super::Pipe,
) {
    let super::Pipe {
        tx,
        stats,
        decoders,
        shutdown,
        own_audit,
    } = pipe;
    let js = jetstream::new(client);
    let stream_name: std::sync::Arc<str> = source.stream.as_str().into();
    let mut last_seq: Option<u64> = None;
    // When the stream attached to was made: another time on a later attach
    // means it was deleted and made again, its sequences restarted.
    let mut created: Option<time::OffsetDateTime> = None;
    let mut warned = false;
    'attach: loop {
        // Attach only on a live connection, and remember which one: a later
        // (re)connection means the consumer must be made again.
        while !stats.nats_connected.load(Ordering::Relaxed) {
            tokio::select! {
                _ = shutdown.cancelled() => break 'attach,
                _ = stats.reconnected.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
        let generation = stats.nats_connects.load(Ordering::Relaxed);
        let opened = async {
            let stream = js.get_stream(&source.stream).await?;
            let born = stream.cached_info().created;
            // Made again since we last read it: its sequences restarted, so
            // the last one handed on means nothing in it. Read it all.
            let recreated = created.is_some_and(|c| c != born);
            let (start, last_seq) = if recreated {
                (StartPoint::All, None)
            } else {
                (source.start, last_seq)
            };
            // With the messages: whether one ack acknowledges every
            // message before it too.
            let opened: (Messages, bool) = match &durable {
                None => (
                    read_ephemeral(&stream, deliver_policy(start, last_seq)).await?,
                    false,
                ),
                Some(name) => {
                    // The start point applies when the consumer is first
                    // made; after that the server's ack floor decides.
                    let mut consumer: jetstream::consumer::PullConsumer = stream
                        .get_or_create_consumer(
                            name,
                            pull::Config {
                                durable_name: Some(name.clone()),
                                description: Some(super::consumers::OWN_CONSUMER.to_string()),
                                deliver_policy: deliver_policy(start, None),
                                // Each message acknowledged once handed on:
                                // one that was delivered but not handed on
                                // (in flight when Eventscope stopped) comes
                                // again, to this run or the next. (With
                                // "all", the next run's first ack covered
                                // it: issue 16 found such gaps.)
                                ack_policy: AckPolicy::Explicit,
                                // Unacknowledged messages (in flight when
                                // NATS went away) come again after this.
                                ack_wait: Duration::from_secs(10),
                                max_ack_pending: 2 * PULL_WINDOW as i64,
                                ..pull::Config::default()
                            },
                        )
                        .await?;
                    // A durable made by an earlier version keeps its policy.
                    let ack_all = consumer.info().await?.config.ack_policy == AckPolicy::All;
                    if ack_all {
                        tracing::warn!(
                            stream = %source.stream,
                            durable = %name,
                            "this durable consumer acknowledges all before each ack: messages in flight when Eventscope stops can be skipped by the next run; delete it (nats consumer rm) and Eventscope makes it again with explicit acks"
                        );
                    }
                    (pull_messages(&consumer).await?, ack_all)
                }
            };
            Ok::<_, async_nats::Error>((opened, born, recreated))
        };
        let (messages, ack_all) = tokio::select! {
            _ = shutdown.cancelled() => break,
            opened = opened => match opened {
                Ok((m, born, recreated)) => {
                    if recreated {
                        tracing::warn!(
                            stream = %source.stream,
                            last_seq = ?last_seq,
                            "jetstream stream was deleted and made again (its sequences restarted): reading it from its start"
                        );
                        stats.js_recreated.fetch_add(1, Ordering::Relaxed);
                        last_seq = None;
                    }
                    created = Some(born);
                    tracing::info!(stream = %source.stream, resume_after = ?last_seq, "jetstream source attached");
                    warned = false;
                    m
                }
                Err(e) => {
                    if !warned {
                        tracing::warn!(stream = %source.stream, error = %e, "cannot attach to jetstream stream; retrying");
                        warned = true;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(RETRY) => continue,
                    }
                }
            },
        };
        // Every message already received, at once (one hand-over to the
        // hub per batch, as core ingest does).
        let mut messages = messages.ready_chunks(super::RECV_CHUNK);
        // The ephemeral consumer's sequence of the last message: one
        // missing means a message was lost on the way, so attach again.
        let mut last_delivery: Option<u64> = None;
        loop {
            let next = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break 'attach,
                // NATS came back: the consumer is gone with the old server,
                // make it again now rather than after missed heartbeats.
                _ = stats.reconnected.notified() => continue 'attach,
                next = messages.next() => next,
            };
            if stats.nats_connects.load(Ordering::Relaxed) != generation {
                continue 'attach;
            }
            let Some(msgs) = next else { continue 'attach };
            let mut batch = Vec::with_capacity(msgs.len());
            let mut ackers = Vec::new();
            let mut failed = None;
            // Received together: one clock read for the batch.
            let received_ms = now_ms();
            for msg in msgs {
                let msg = match msg {
                    Ok(msg) => msg,
                    Err(e) => {
                        // Hand on what came before it, then attach again
                        // after the last sequence handed on.
                        failed = Some(e);
                        break;
                    }
                };
                let Some(AckInfo {
                    stream_seq: seq,
                    consumer_seq,
                    published_ms,
                    delivered,
                }) = msg.reply.as_deref().and_then(ack_info)
                else {
                    // Not a stream message we can place (no stream
                    // sequence): lost, and counted.
                    stats.js_ack_unreadable.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                if durable.is_none() {
                    if last_delivery.is_some_and(|d| consumer_seq != d + 1) {
                        failed = Some(
                            format!("consumer sequence {consumer_seq} after {last_delivery:?}")
                                .into(),
                        );
                        break;
                    }
                    last_delivery = Some(consumer_seq);
                }
                let (message, acker) = msg.split();
                if durable.is_some() {
                    ackers.push((seq, acker));
                }
                // A durable's redelivery was never acknowledged: handed on
                // by nobody (or by a run whose ack was lost), so it is
                // handed on now, wherever it falls in the order.
                let redelivered = durable.is_some() && delivered > 1;
                if redelivered {
                    stats.js_redelivered.fetch_add(1, Ordering::Relaxed);
                } else if let Some(last) = last_seq {
                    if seq <= last {
                        // Redelivered after a re-attach: already handed on
                        // (acknowledged again, so it does not come back).
                        continue;
                    }
                    if seq > last + 1 {
                        stats
                            .js_seq_gaps
                            .fetch_add(seq - last - 1, Ordering::Relaxed);
                    }
                }
                if !redelivered {
                    last_seq = Some(seq);
                }
                // Our own audit records, kept by a stream: in the log already.
                if super::is_own_audit(
                    own_audit.as_deref(),
                    message.subject.as_str(),
                    message.headers.as_ref(),
                ) {
                    continue;
                }
                let headers = flatten_headers(message.headers.as_ref());
                let mut decoded =
                    decoders.decode_message(message.subject.as_str(), &message.payload, &headers);
                decoded.time_ms = decoded.time_ms.or(Some(published_ms));
                batch.push(NewEvent {
                    received_ms,
                    headers,
                    subject: message.subject,
                    // Its reply subject is the ack, not a request's inbox.
                    reply: None,
                    payload: message.payload,
                    source: Source::JetStream {
                        stream: std::sync::Arc::clone(&stream_name),
                        seq,
                    },
                    decoded,
                });
            }
            if !batch.is_empty() {
                super::count_not_utf8(&batch, &stats);
                stats
                    .ingested_jetstream
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                // Wait rather than drop: JetStream keeps what we cannot
                // take yet.
                tokio::select! {
                    _ = shutdown.cancelled() => break 'attach,
                    sent = tx.send(batch) => if sent.is_err() { break 'attach },
                }
            }
            // Only once handed on. Acknowledging the last acknowledges the
            // batch when the consumer acks all.
            let skip = if ack_all {
                ackers.len().saturating_sub(1)
            } else {
                0
            };
            for (seq, acker) in ackers.into_iter().skip(skip) {
                if let Err(e) = acker.ack().await {
                    tracing::debug!(stream = %source.stream, seq, error = %e, "ack failed; the message may come again");
                }
            }
            if let Some(e) = failed {
                tracing::warn!(stream = %source.stream, error = %e, "jetstream source error; re-attaching");
                continue 'attach;
            }
        }
    }
    tracing::info!(stream = %source.stream, last_seq, "jetstream source stopped");
}

/// What the ack subject of a JetStream message says that we use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckInfo {
    /// Its sequence in the stream.
    pub stream_seq: u64,
    /// Its sequence among the consumer's deliveries.
    pub consumer_seq: u64,
    /// When the stream stored it, Unix ms.
    pub published_ms: i64,
    /// Times it was delivered (more than 1: a redelivery).
    pub delivered: u64,
}

/// Reads the `$JS.ACK.` reply subject of a JetStream message, in either
/// form of ADR-15: `$JS.ACK.<stream>.<consumer>.<delivered>.<stream
/// seq>.<consumer seq>.<nanos>.<pending>`, or the same after
/// `<domain>.<account hash>` (with optional tokens after). `None` if it is
/// not one.
///
/// async-nats's `Message::info` reads every token (the time into a date
/// type, through `i128`): at a few hundred thousand messages a second that
/// was 9% of Eventscope's CPU, for three numbers.
pub fn ack_info(reply: &str) -> Option<AckInfo> {
    let rest = reply.strip_prefix("$JS.ACK.")?.as_bytes();
    // Token starts, up to the 10th token.
    let mut starts = [0usize; 10];
    let mut n = 1;
    for (i, b) in rest.iter().enumerate() {
        if *b == b'.' {
            if n == starts.len() {
                break;
            }
            starts[n] = i + 1;
            n += 1;
        }
    }
    let first = match n {
        7 => 0,
        9.. => 2,
        _ => return None,
    };
    let token = |k: usize| {
        let start = starts[first + k];
        let end = rest[start..]
            .iter()
            .position(|b| *b == b'.')
            .map_or(rest.len(), |e| start + e);
        digits(&rest[start..end])
    };
    Some(AckInfo {
        stream_seq: token(3)?,
        consumer_seq: token(4)?,
        published_ms: i64::try_from(token(5)? / 1_000_000).ok()?,
        delivered: token(2)?,
    })
}

/// A whole decimal number (no sign, at most 19 digits), or `None`.
fn digits(token: &[u8]) -> Option<u64> {
    if token.is_empty() || token.len() > 19 {
        return None;
    }
    token.iter().try_fold(0u64, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_forms_of_the_ack_subject() {
        let ack = |stream_seq, consumer_seq, delivered| {
            Some(AckInfo {
                stream_seq,
                consumer_seq,
                published_ms: 1_795_672_800_123,
                delivered,
            })
        };
        // 2026-11-26T06:00:00.123456789Z in nanoseconds.
        let v1 = "$JS.ACK.ORDERS.es-1.1.4200.17.1795672800123456789.3";
        assert_eq!(ack_info(v1), ack(4200, 17, 1));
        let v2 = "$JS.ACK.hub.ACCHASH.ORDERS.es-1.2.4201.18.1795672800123456789.0.rand0m";
        assert_eq!(ack_info(v2), ack(4201, 18, 2));
        let v2_no_token = "$JS.ACK._.ACCHASH.ORDERS.es-1.2.9.18.1795672800123456789.0";
        assert_eq!(ack_info(v2_no_token), ack(9, 18, 2));
        // Tokens past the tenth are ignored.
        assert_eq!(ack_info(&format!("{v2}.x.y")), ack(4201, 18, 2));
        // Not an ack subject, too few tokens, or not a number.
        assert_eq!(ack_info("_INBOX.abc.1"), None);
        assert_eq!(ack_info("$JS.ACK.ORDERS.es-1.1.4200.17"), None);
        assert_eq!(ack_info(&format!("{v1}.8th")), None);
        assert_eq!(
            ack_info("$JS.ACK.ORDERS.es-1.1.42x0.17.1795672800123456789.3"),
            None
        );
        assert_eq!(
            ack_info("$JS.ACK.ORDERS.es-1.1..17.1795672800123456789.3"),
            None
        );
        assert_eq!(
            ack_info("$JS.ACK.ORDERS.es-1.1.-4.17.1795672800123456789.3"),
            None
        );
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(crate::fuzz_cases(2_000)))]

            /// Any reply subject: read or refused, never a panic.
            #[test]
            fn fuzz_ack_subjects_are_read_or_refused(
                tail in "[a-zA-Z0-9._$-]{0,120}",
                raw in ".{0,80}",
            ) {
                let _ = ack_info(&format!("$JS.ACK.{tail}"));
                let _ = ack_info(&raw);
            }

            /// Every well-formed ack subject, in either form, reads back
            /// the numbers it was made of.
            #[test]
            fn fuzz_well_formed_ack_subjects_read_back(
                stream in "[A-Z][A-Z0-9_-]{0,20}",
                consumer in "[a-z][a-z0-9-]{0,20}",
                delivered in 1u64..1_000_000,
                stream_seq in 0u64..10_000_000_000_000_000_000,
                consumer_seq in 0u64..10_000_000_000_000_000_000,
                ns in 0u64..=i64::MAX as u64,
                pending in 0u64..1_000_000,
                v2 in any::<bool>(),
            ) {
                let subject = if v2 {
                    format!("$JS.ACK.hub.ACC.{stream}.{consumer}.{delivered}.{stream_seq}.{consumer_seq}.{ns}.{pending}.r4nd")
                } else {
                    format!("$JS.ACK.{stream}.{consumer}.{delivered}.{stream_seq}.{consumer_seq}.{ns}.{pending}")
                };
                prop_assert_eq!(
                    ack_info(&subject),
                    Some(AckInfo {
                        stream_seq,
                        consumer_seq,
                        published_ms: (ns / 1_000_000) as i64,
                        delivered,
                    })
                );
            }
        }
    }

    #[test]
    fn parses_start_points() {
        let p = |s: &str| s.parse::<StreamSource>();
        assert_eq!(p("ORDERS").map(|s| s.start), Ok(StartPoint::New));
        assert_eq!(p("ORDERS@all").map(|s| s.start), Ok(StartPoint::All));
        assert_eq!(p("ORDERS@seq:42").map(|s| s.start), Ok(StartPoint::Seq(42)));
        assert_eq!(
            p("ORDERS@time:2026-11-26T06:00:00Z").map(|s| s.start),
            Ok(StartPoint::Time(1_795_672_800_000))
        );
        assert!(
            p("ORDERS@yesterday")
                .expect_err("refused")
                .contains("new, all, seq:N")
        );
        assert!(
            p("logs.>")
                .expect_err("refused")
                .contains("not a stream name")
        );
        assert!(
            p("ORDERS@seq:x")
                .expect_err("refused")
                .contains("whole number")
        );
    }

    #[test]
    fn resuming_starts_after_the_last_sequence() {
        assert_eq!(
            deliver_policy(StartPoint::New, Some(41)),
            DeliverPolicy::ByStartSequence { start_sequence: 42 }
        );
        assert_eq!(deliver_policy(StartPoint::All, None), DeliverPolicy::All);
    }
}
