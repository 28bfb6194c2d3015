//! Ingest: NATS in. Connects to NATS (retrying for as long as it takes),
//! subscribes to the configured core subjects and hands each message to the
//! live hub through a bounded queue. The receive loop never waits: when the
//! queue is full the event is dropped and counted, so a slow consumer
//! downstream cannot back-pressure NATS into disconnecting us.

pub mod consumers;
pub mod decode;
pub mod jetstream;
pub mod queue;

use crate::config::NatsAuth;
use crate::event::{NewEvent, Source, now_ms};
use crate::stats::Stats;
use async_nats::{Client, ConnectOptions, Event};
use futures::StreamExt;
use futures::stream::{BoxStream, SelectAll};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Errors of the ingest stage.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The URL could not be understood as a NATS address.
    #[error("invalid NATS URL {url:?}: {source}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        source: async_nats::ConnectError,
    },
    /// The `.creds` file could not be read.
    #[error("cannot read NATS credentials file {path}: {source}")]
    Creds {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A subscription could not be made.
    #[error("cannot subscribe to {subject:?}: {source}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// What NATS said.
        source: async_nats::SubscribeError,
    },
}

/// Messages the NATS client holds for a subscription between reading them
/// off the socket and the receive loop taking them, by default
/// (`--nats-buffer`; async-nats's own default is 65,536). Past it the
/// client drops them: a slow consumer, counted per message as `eventscope_events_dropped{reason="nats_slow_consumer"}`
/// (a counter our patched async-nats keeps: vendor/async-nats). The
/// receive loop only moves chunks to decoding, so this fills only while
/// every core is busy; measured on two cores shared with nats-server and
/// a publisher, 65,536 (a third of a second at 200k events/s) overflowed
/// in the first seconds of a fresh instance at rates it then sustained, and
/// 262,144 did not. It is about 120 MiB at 300-byte payloads; in bytes,
/// see [`SUBSCRIPTION_BYTES`].
pub const SUBSCRIPTION_CAPACITY: usize = 262_144;

/// Bytes the NATS client holds for all subscriptions together (each
/// message weighed as its subject, reply, headers and payload and the
/// client's own record of it, about 200 bytes): 1 MiB payloads fill it
/// at 128 messages, 300-byte ones at about the message bound. A bound our
/// patched async-nats adds (vendor/async-nats, `subscription_bytes`); what
/// it drops is counted as for a full buffer.
pub const SUBSCRIPTION_BYTES: u64 = 128 << 20;

/// What the NATS client holds for its subscriptions while ingest is busy
/// (`--nats-buffer`, `--nats-buffer-bytes`): whichever bound comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientBuffer {
    /// Messages per subscription.
    pub messages: usize,
    /// Bytes for all subscriptions together (0: no byte bound).
    pub bytes: u64,
}

impl Default for ClientBuffer {
    fn default() -> Self {
        ClientBuffer {
            messages: SUBSCRIPTION_CAPACITY,
            bytes: SUBSCRIPTION_BYTES,
        }
    }
}

/// How often to repeat the "still unreachable" warning.
const UNREACHABLE_WARN_EVERY: Duration = Duration::from_secs(10);

/// Applies authentication and TLS settings to connect options.
/// The credentials a URL carries (`nats://user:pass@host`, or
/// `nats://token@host`), percent-decoded, from the first URL of a list
/// that has any: async-nats connects to such a URL but does not send them.
fn url_credentials(url: &str) -> Option<(String, Option<String>)> {
    url.split(',').find_map(|one| {
        let userinfo = &one[userinfo_span(one)?];
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        Some(match userinfo.split_once(':') {
            Some((user, pass)) => (decode(user), Some(decode(pass))),
            None => (decode(userinfo), None),
        })
    })
}

async fn with_auth(
    mut opts: ConnectOptions,
    url: &str,
    auth: &NatsAuth,
) -> Result<ConnectOptions, IngestError> {
    // Credentials in the URL, unless given on their own (those win).
    if auth.nats_user.is_none() && auth.nats_token.is_none() {
        match url_credentials(url) {
            Some((user, Some(pass))) => opts = opts.user_and_password(user, pass),
            Some((token, None)) => opts = opts.token(token),
            None => {}
        }
    }
    if let Some(user) = &auth.nats_user {
        let password = auth.nats_password.as_ref().map_or("", |p| p.expose());
        opts = opts.user_and_password(user.clone(), password.to_string());
    }
    if let Some(token) = &auth.nats_token {
        opts = opts.token(token.expose().to_string());
    }
    if let Some(seed) = &auth.nats_nkey {
        opts = opts.nkey(seed.expose().to_string());
    }
    if let Some(path) = &auth.nats_creds {
        opts = opts
            .credentials_file(path)
            .await
            .map_err(|source| IngestError::Creds {
                path: path.clone(),
                source,
            })?;
    }
    if let Some(ca) = &auth.nats_tls_ca {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&auth.nats_tls_cert, &auth.nats_tls_key) {
        opts = opts.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(opts)
}

/// `url` (one NATS URL, or several separated by commas) without the
/// credentials it may carry: `nats://user:pass@host:4222` reads
/// `nats://***@host:4222`. What logs, pages and health answers show.
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|one| match userinfo_span(one) {
            Some(span) => format!("{}***{}", &one[..span.start], &one[span.end..]),
            None => one.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `url` with the credentials cut out altogether (`nats://host:4222`): what
/// the NATS client is given, once they are in its options.
fn without_credentials(url: &str) -> String {
    url.split(',')
        .map(|one| match userinfo_span(one) {
            Some(span) => format!("{}{}", &one[..span.start], &one[span.end + 1..]),
            None => one.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Where the credentials (`user:pass` or a token, before the last `@` of
/// the authority) are in one URL, if it has any.
fn userinfo_span(one: &str) -> Option<std::ops::Range<usize>> {
    let start = one.find("://").map_or(0, |i| i + 3);
    let rest = &one[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    Some(start..start + at)
}

/// Creates a NATS client for `url` that connects in the background and keeps
/// retrying, recording connection state and slow-consumer notices in `stats`;
/// its subscriptions hold what `buffer` allows.
pub async fn connect(
    url: &str,
    name: &str,
    auth: &NatsAuth,
    buffer: ClientBuffer,
    stats: Arc<Stats>,
) -> Result<Client, IngestError> {
    let events_stats = Arc::clone(&stats);
    let log_url = redact_url(url);
    let client = with_auth(ConnectOptions::new(), url, auth)
        .await?
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .subscription_capacity(buffer.messages)
        .subscription_bytes(buffer.bytes)
        .event_callback(move |event| {
            let stats = Arc::clone(&events_stats);
            let url = log_url.clone();
            async move {
                match event {
                    Event::Connected => {
                        stats.nats_connected.store(true, Ordering::Relaxed);
                        stats.nats_connects.fetch_add(1, Ordering::Relaxed);
                        stats.reconnected.notify_waiters();
                        tracing::info!(%url, "nats connected");
                    }
                    Event::Disconnected => {
                        stats.nats_connected.store(false, Ordering::Relaxed);
                        tracing::warn!(%url, "nats disconnected, reconnecting");
                    }
                    Event::SlowConsumer(sid) => {
                        let n = stats.nats_slow_consumer.fetch_add(1, Ordering::Relaxed) + 1;
                        // One line per 10 s at most, however many notices
                        // (under a flood there is one per dropped batch).
                        let now = crate::event::now_ms();
                        let last = stats.slow_consumer_logged_ms.load(Ordering::Relaxed);
                        if now - last >= 10_000
                            && stats
                                .slow_consumer_logged_ms
                                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                                .is_ok()
                        {
                            tracing::warn!(
                                %url,
                                sid,
                                notices = n,
                                "nats slow consumer: messages were dropped (eventscope_events_dropped_total{{reason=\"nats_slow_consumer\"}} counts them)"
                            );
                        }
                    }
                    // Failed attempts while unreachable; `watch_reachability`
                    // reports those plainly, without one line per attempt.
                    Event::ClientError(e) => tracing::debug!(%url, error = %e, "nats client error"),
                    Event::ServerError(e) => {
                        tracing::error!(%url, error = %e, "nats server refused us: check the credentials");
                    }
                    other => tracing::info!(%url, event = %other, "nats event"),
                }
            }
        })
        // The credentials are in the options (`with_auth`); the client
        // would log a URL carrying them in full at debug level.
        .connect(without_credentials(url))
        .await
        .map_err(|source| IngestError::BadUrl {
            url: redact_url(url),
            source,
        })?;
    let _ = stats.nats_client.set(client.statistics());
    Ok(client)
}

/// Warns, plainly and with the URL, while NATS stays unreachable.
pub async fn watch_reachability(url: String, stats: Arc<Stats>, shutdown: CancellationToken) {
    let url = redact_url(&url);
    let started = tokio::time::Instant::now();
    let mut every = tokio::time::interval(UNREACHABLE_WARN_EVERY);
    every.tick().await; // the first tick is immediate: give it time first
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        if !stats.nats_connected.load(Ordering::Relaxed) {
            tracing::warn!(
                %url,
                waited_s = started.elapsed().as_secs(),
                "nats unreachable: is a nats-server running at this URL? retrying"
            );
        }
    }
}

/// Messages taken from the subscriptions at once, at most: every message
/// already received when the receive loop looks.
pub(crate) const RECV_CHUNK: usize = 256;

/// Events waiting in the receive loop, at most, while the hub's queue is
/// full (it holds [`queue::QUEUE_EVENTS`]); past this they are dropped and
/// counted. So at most `QUEUE_EVENTS + MAX_BATCH` events are between NATS
/// and the hub before one is dropped.
pub const MAX_BATCH: usize = 4_096;

/// What every source hands its events to, and what it needs to make them.
#[derive(Clone, Debug)]
pub struct Pipe {
    /// The hub's queue, bounded in events and bytes.
    pub tx: queue::Sender,
    /// Counters.
    pub stats: Arc<Stats>,
    /// The decoder, with the config file's overrides.
    pub decoders: Arc<decode::Decoders>,
    /// Fires on shutdown.
    pub shutdown: CancellationToken,
    /// This instance's id on the audit records it publishes to NATS
    /// (`--audit-to-nats`): those are in the log already, and are not
    /// taken in again.
    pub own_audit: Option<Arc<str>>,
}

/// Whether a message is an audit record this instance published (its
/// [`crate::access::audit::ORIGIN_HEADER`] names `own`).
pub fn is_own_audit(
    own: Option<&str>,
    subject: &str,
    headers: Option<&async_nats::HeaderMap>,
) -> bool {
    match own {
        Some(own) if subject.starts_with(crate::access::audit::SUBJECT_PREFIX) => headers
            .and_then(|h| h.get(crate::access::audit::ORIGIN_HEADER))
            .is_some_and(|v| v.as_str() == own),
        _ => false,
    }
}

/// Chunks being decoded at once, at most, per core available: decoding
/// runs on the runtime's workers, off the receive loop, so the loop only
/// moves messages and NATS's buffer for the subscription never fills while
/// cores are idle. Past this (every worker busy decoding), the receive
/// loop decodes the chunk itself, which slows it to what the cores can do.
const DECODING_PER_CORE: usize = 2;

/// NATS's own subjects: system events, the JetStream API, key-value and
/// object-store buckets. A wildcard subscription (the default `>`)
/// receives them, but they are the server's traffic, not the users', and
/// `$KV` values may be secrets: ingest leaves them out (counted in
/// `eventscope_internal_skipped_total`) unless a subject names them, e.g.
/// `--subject '$KV.>'`.
pub const INTERNAL_PREFIXES: [&str; 4] = ["$SYS.", "$JS.API.", "$KV.", "$O."];

/// Which of [`INTERNAL_PREFIXES`] ingest leaves out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Internal {
    skip: Vec<&'static str>,
}

impl Internal {
    /// Those no subject of `subjects` names: a subject names a prefix when
    /// its first token is the prefix's own (`$KV.orders.>` names `$KV.`,
    /// `$JS.>` names `$JS.API.`), not a wildcard.
    pub fn for_subjects(subjects: &[String]) -> Internal {
        Internal {
            skip: INTERNAL_PREFIXES
                .into_iter()
                .filter(|prefix| {
                    let first = prefix.split('.').next().unwrap_or(prefix);
                    !subjects.iter().any(|s| s.split('.').next() == Some(first))
                })
                .collect(),
        }
    }

    /// Whether ingest leaves `subject` out.
    pub fn skips(&self, subject: &str) -> bool {
        subject.starts_with('$') && self.skip.iter().any(|p| subject.starts_with(p))
    }
}

/// A chunk's events being decoded: in order of receipt, whoever decodes
/// them.
type Decoding = futures::future::BoxFuture<'static, Vec<NewEvent>>;

/// Subscribes to `subjects` and forwards every message to the pipe until
/// shutdown or the client closes: the messages already received, in one
/// chunk, decoded on a worker of the pool (in order: events keep the order
/// NATS delivered them in); decoded events wait in one batch of at most
/// [`MAX_BATCH`] events while the queue is full, and what does not fit is
/// dropped and counted. The loop never waits for the hub, so it always
/// drains the subscriptions.
pub async fn run(client: Client, subjects: Vec<String>, pipe: Pipe) -> Result<(), IngestError> {
    let Pipe {
        tx,
        stats,
        decoders,
        shutdown,
        own_audit,
    } = pipe;
    let mut subs = Vec::with_capacity(subjects.len());
    for subject in &subjects {
        let sub =
            client
                .subscribe(subject.clone())
                .await
                .map_err(|source| IngestError::Subscribe {
                    subject: subject.clone(),
                    source,
                })?;
        subs.push(sub);
    }
    tracing::info!(?subjects, "ingest subscribed");
    let internal = Internal::for_subjects(&subjects);
    // One subscription is read directly: merging through `SelectAll` costs
    // an allocation per message.
    let merged: BoxStream<'static, async_nats::Message> = if subs.len() == 1 {
        subs.pop().expect("one").boxed()
    } else {
        subs.into_iter().collect::<SelectAll<_>>().boxed()
    };
    let mut received = merged.ready_chunks(RECV_CHUNK);
    let max_decoding = DECODING_PER_CORE
        * std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let mut decoding: futures::stream::FuturesOrdered<Decoding> = Default::default();
    // Events decoded but not yet taken by the hub's queue, and the room
    // they need there.
    let mut waiting: Vec<NewEvent> = Vec::new();
    let mut need = tx.need(&waiting);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            // The queue has room again: hand over what waited.
            room = tx.room(need), if !waiting.is_empty() => match room {
                Ok(room) => {
                    if tx.send_in(room, std::mem::take(&mut waiting)).is_err() {
                        break;
                    }
                }
                Err(queue::Closed) => break,
            },
            Some(events) = decoding.next(), if !decoding.is_empty() => {
                let room = MAX_BATCH.saturating_sub(waiting.len());
                if events.len() > room {
                    stats
                        .dropped_ingest
                        .fetch_add((events.len() - room) as u64, Ordering::Relaxed);
                }
                waiting.extend(events.into_iter().take(room));
                if tx.send_what_fits(&mut waiting).is_err() {
                    break;
                }
                need = tx.need(&waiting);
            }
            msgs = received.next() => {
                let Some(mut msgs) = msgs else { break };
                let received = msgs.len();
                msgs.retain(|m| !internal.skips(m.subject.as_str()));
                if msgs.len() < received {
                    stats
                        .internal_skipped
                        .fetch_add((received - msgs.len()) as u64, Ordering::Relaxed);
                    if msgs.is_empty() {
                        continue;
                    }
                }
                // Our own audit records (--audit-to-nats): in the log already.
                if own_audit.is_some() {
                    msgs.retain(|m| {
                        !is_own_audit(own_audit.as_deref(), m.subject.as_str(), m.headers.as_ref())
                    });
                    if msgs.is_empty() {
                        continue;
                    }
                }
                let n = msgs.len() as u64;
                stats.ingested_core.fetch_add(n, Ordering::Relaxed);
                // Received together: one clock read for the chunk.
                let received_ms = now_ms();
                let decoders = Arc::clone(&decoders);
                let counters = Arc::clone(&stats);
                let decode = move || -> Vec<NewEvent> {
                    let events: Vec<NewEvent> = msgs
                        .into_iter()
                        .map(|msg| from_core_message(msg, received_ms, &decoders))
                        .collect();
                    count_not_utf8(&events, &counters);
                    events
                };
                if decoding.len() < max_decoding {
                    let task = tokio::spawn(async move { decode() });
                    let stats = Arc::clone(&stats);
                    decoding.push_back(Box::pin(async move {
                        task.await.unwrap_or_else(|e| {
                            // Decoding never panics; if it did, the chunk
                            // is lost, and counted.
                            tracing::error!(error = %e, "decoding a chunk failed");
                            stats.dropped_ingest.fetch_add(n, Ordering::Relaxed);
                            Vec::new()
                        })
                    }));
                } else {
                    let events = decode();
                    decoding.push_back(Box::pin(std::future::ready(events)));
                }
            }
        }
    }
    tracing::info!("ingest stopped");
    Ok(())
}

/// Turns a core NATS message received at `received_ms` into an event:
/// decoded, headers flattened (sorted by name, repeated values kept in
/// order).
pub fn from_core_message(
    msg: async_nats::Message,
    received_ms: i64,
    decoders: &decode::Decoders,
) -> NewEvent {
    let headers = flatten_headers(msg.headers.as_ref());
    let decoded = decoders.decode_message(msg.subject.as_str(), &msg.payload, &headers);
    NewEvent {
        received_ms,
        headers,
        subject: msg.subject,
        reply: msg.reply.map(|r| r.to_string()),
        payload: msg.payload,
        source: Source::Core,
        decoded,
    }
}

/// Counts the events whose subject or headers held bytes that were not
/// UTF-8: the client reads those lossily (U+FFFD; vendor/async-nats), so
/// the event is kept and shown, and the count says how many were read so.
pub fn count_not_utf8(events: &[NewEvent], stats: &Stats) {
    const LOST: char = char::REPLACEMENT_CHARACTER;
    let n = events
        .iter()
        .filter(|e| {
            e.subject.contains(LOST)
                || e.headers
                    .iter()
                    .any(|(k, v)| k.contains(LOST) || v.contains(LOST))
        })
        .count();
    if n > 0 {
        stats.not_utf8.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// NATS headers as `(name, value)` pairs, sorted by name.
pub fn flatten_headers(headers: Option<&async_nats::HeaderMap>) -> Vec<(String, String)> {
    let Some(headers) = headers else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = headers
        .iter()
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |v| (name.to_string(), v.as_str().to_string()))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::{Internal, redact_url};

    #[test]
    fn internal_subjects_are_left_out_unless_named() {
        let all = Internal::for_subjects(&[">".to_string()]);
        for internal in [
            "$SYS.ACCOUNT.x.CONNECT",
            "$JS.API.STREAM.INFO.ORDERS",
            "$KV.secrets.db_password",
            "$O.files.M.abc",
        ] {
            assert!(all.skips(internal), "{internal}");
        }
        for kept in [
            "orders.created",
            "$JS.ACK.ORDERS.c.1.2.3.4.5",
            "$JS.EVENT.ADVISORY.x",
            "_INBOX.a",
        ] {
            assert!(!all.skips(kept), "{kept}");
        }
        let kv = Internal::for_subjects(&["logs.>".to_string(), "$KV.config.>".to_string()]);
        assert!(!kv.skips("$KV.config.limit") && kv.skips("$JS.API.INFO"));
        let js = Internal::for_subjects(&["$JS.>".to_string()]);
        assert!(!js.skips("$JS.API.INFO") && js.skips("$SYS.SERVER.PING"));
        assert!(Internal::for_subjects(&["*.>".to_string()]).skips("$KV.a.b"));
    }

    #[test]
    fn the_client_is_given_urls_without_credentials() {
        assert_eq!(
            super::without_credentials("nats://u:p%40ss@h:4222,tls://tok@h2,nats://h3"),
            "nats://h:4222,tls://h2,nats://h3"
        );
    }

    #[test]
    fn credentials_are_cut_from_urls() {
        for (url, shown) in [
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
            ("nats://u:p@h:4222", "nats://***@h:4222"),
            ("tls://tok3n@h", "tls://***@h"),
            (
                "nats://u:p@a:1,nats://u:p@b:2",
                "nats://***@a:1,nats://***@b:2",
            ),
            ("u:p@h:4222", "***@h:4222"),
            ("nats://h:4222/x@y", "nats://h:4222/x@y"),
            ("nats://us@r:p@ss@h:1", "nats://***@h:1"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn credentials_are_read_from_urls() {
        use super::url_credentials;
        let both = |u: &str, p: &str| Some((u.to_string(), Some(p.to_string())));
        assert_eq!(url_credentials("nats://a:b@h:1"), both("a", "b"));
        assert_eq!(
            url_credentials("nats://h:1,nats://a:p%40ss@h:2"),
            both("a", "p@ss")
        );
        assert_eq!(
            url_credentials("tls://t0ken@h"),
            Some(("t0ken".to_string(), None))
        );
        assert_eq!(url_credentials("nats://h:1/x@y"), None);
    }
}
