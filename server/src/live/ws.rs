//! `GET /ws`: one WebSocket per browser tab, multiplexing subscriptions
//! (`docs/PROTOCOL.md`). For each view the client subscribes to it sends the
//! hub's snapshot, then every delta frame of that view, exactly as the hub
//! encoded it once for all its watchers; a view whose frames the client has
//! fallen more than the hub's buffer behind on is resynced with a fresh
//! snapshot.

use super::hub::{HubHandle, HubStopped, SharedFrame};
use crate::AppState;
use crate::stats::Stats;
use app::api::ApiError;
use app::wire::{ClientMsg, Frame, PROTOCOL_VERSION, View};
use axum::Json;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use futures::{Sink, SinkExt, Stream, StreamExt};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio_stream::StreamMap;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;

/// The upgrade handler.
///
/// The gate (`crate::access::gate`) has checked the `Origin` (another
/// site's page cannot read the live data) and the client's role. A client may say which
/// protocol version it speaks with `?v=`; a different one gets an error
/// frame saying so, then the socket closes.
pub async fn handler(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<crate::api::lenient::Peer>>>,
    Query(query): Query<WsQuery>,
    lens: Option<axum::Extension<crate::access::Lens>>,
    session_end: Option<axum::Extension<crate::access::SessionEnd>>,
) -> Response {
    // The gate decides what every client sees: without its decision,
    // nothing is served.
    let Some(axum::Extension(lens)) = lens else {
        return (
            StatusCode::FORBIDDEN,
            Json(ApiError {
                error: "no access decision for this connection".to_string(),
            }),
        )
            .into_response();
    };
    let until = session_end.map(|e| {
        let left = e.0.0.saturating_sub(crate::event::now_ms() / 1000).max(0);
        tokio::time::Instant::now() + std::time::Duration::from_secs(left as u64)
    });
    let ip = peer.map(|p| p.0.0.0.ip());
    if !state.ws_quotas.admit(ip) {
        state.stats.ws_refused.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            Json(ApiError {
                error: format!(
                    "this address opens live connections too fast (at most \
                     {CONNECTIONS_PER_SECOND}/s, --ws-per-address); wait a moment"
                ),
            }),
        )
            .into_response();
    }
    let guard = match ClientGuard::admit(&state.stats, state.ws_max_clients) {
        Ok(guard) => guard,
        Err(clients) => {
            state.stats.ws_refused.fetch_add(1, Ordering::Relaxed);
            return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(ApiError {
                error: format!(
                    "{clients} live connections are open, the most this server takes; try again later"
                ),
            }),
        )
            .into_response();
        }
    };
    // A client message is a subscribe or an unsubscribe: small.
    ws.max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket: WebSocket| async move {
            let (mut sink, stream) = socket.split();
            if let Some(v) = query.v.filter(|v| *v != PROTOCOL_VERSION) {
                let msg = error(
                    None,
                    format!(
                        "this server speaks live protocol v{PROTOCOL_VERSION}, the client v{v}: \
                     reload the page (or update the client)"
                    ),
                );
                let _ = sink.send(msg).await;
                let _ = sink.send(Message::Close(None)).await;
                return;
            }
            let quota = state.ws_quotas.client(ip);
            let viewer = Viewer {
                hub: state.hub,
                lens,
                until,
            };
            serve(sink, stream, viewer, state.stats, quota, state.shutdown).await;
            drop(guard);
        })
}

/// Whom a live connection serves: the hub, seen through the client's
/// [`crate::access::Lens`] (their scope and masks).
#[derive(Clone, Debug)]
pub struct Viewer {
    /// The hub.
    pub hub: HubHandle,
    /// What the client may see.
    pub lens: crate::access::Lens,
    /// When the session that opened the connection ends: it is closed
    /// then (the client reconnects, and is asked to sign in again).
    pub until: Option<tokio::time::Instant>,
}

impl From<HubHandle> for Viewer {
    /// Seeing everything (no sign-in, or a test).
    fn from(hub: HubHandle) -> Viewer {
        Viewer {
            hub,
            lens: crate::access::Lens {
                role: crate::access::Role::Admin,
                ..Default::default()
            },
            until: None,
        }
    }
}

/// The `/ws` query string.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// Protocol version the client speaks.
    v: Option<u32>,
}

/// Subscriptions the clients of one address may hold together, by default
/// (`--ws-per-address`): a quarter of the hub's shared views
/// ([`super::hub::MAX_TOPICS`]), so one address cannot take them all.
pub const SUBSCRIPTIONS_PER_ADDRESS: u32 = 256;

/// New subscriptions one address may make per second, on average (the
/// rest of its burst allowance is [`SUBSCRIPTIONS_PER_ADDRESS`]): a storm
/// of subscribe-and-leave costs the live hub a command each.
pub const SUBSCRIBES_PER_SECOND: f64 = 100.0;

/// New live connections one address may open per second, on average, with
/// a burst of [`CONNECTIONS_BURST`]: a browser opens one per tab (and
/// reconnects with a back-off); a loop of connect-and-leave is refused
/// with 429 before the WebSocket handshake.
pub const CONNECTIONS_PER_SECOND: f64 = 10.0;
/// See [`CONNECTIONS_PER_SECOND`].
pub const CONNECTIONS_BURST: f64 = 64.0;

/// Addresses remembered at most; past it, those holding nothing with a
/// full allowance are forgotten, and if all are busy a new address goes
/// uncounted (as many addresses would get past per-address limits anyway).
const ADDRESSES: usize = 4_096;

/// What a client is counted under: its IPv4 address, or the /64 network of
/// its IPv6 one (what one host or site is usually given).
fn counted_as(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                std::net::IpAddr::V6(bits.into())
            }
        },
        v4 => v4,
    }
}

/// Subscriptions held per client address, against a maximum (0: none),
/// and each address's allowance of new ones (a token bucket).
#[derive(Debug)]
pub struct AddressQuotas {
    max: u32,
    held: parking_lot::Mutex<HashMap<std::net::IpAddr, AddressUse>>,
}

#[derive(Debug)]
struct AddressUse {
    held: u32,
    /// New subscriptions it may make now.
    allowance: f64,
    /// New connections it may open now.
    connections: f64,
    at: std::time::Instant,
}

impl AddressUse {
    fn new(max: u32, now: std::time::Instant) -> Self {
        AddressUse {
            held: 0,
            allowance: f64::from(max),
            connections: CONNECTIONS_BURST,
            at: now,
        }
    }

    fn refill(&mut self, max: u32, now: std::time::Instant) {
        let secs = now.duration_since(self.at).as_secs_f64();
        self.allowance = (self.allowance + secs * SUBSCRIBES_PER_SECOND).min(f64::from(max));
        self.connections =
            (self.connections + secs * CONNECTIONS_PER_SECOND).min(CONNECTIONS_BURST);
        self.at = now;
    }

    fn idle(&self, max: u32) -> bool {
        self.held == 0 && self.allowance >= f64::from(max) && self.connections >= CONNECTIONS_BURST
    }
}

impl AddressQuotas {
    /// A table allowing `max` subscriptions per address (0: no limit).
    pub fn new(max: u32) -> Arc<Self> {
        Arc::new(AddressQuotas {
            max,
            held: Default::default(),
        })
    }

    /// `f` on the entry of `ip`, refilled to now, making room among the
    /// addresses remembered if need be; `None` when every one is busy.
    fn with_use<T>(&self, ip: std::net::IpAddr, f: impl FnOnce(&mut AddressUse) -> T) -> Option<T> {
        let now = std::time::Instant::now();
        let mut uses = self.held.lock();
        if uses.len() >= ADDRESSES && !uses.contains_key(&ip) {
            uses.retain(|_, u| {
                u.refill(self.max, now);
                !u.idle(self.max)
            });
            if uses.len() >= ADDRESSES {
                return None;
            }
        }
        let u = uses
            .entry(ip)
            .or_insert_with(|| AddressUse::new(self.max, now));
        u.refill(self.max, now);
        Some(f(u))
    }

    /// Whether `ip` may open another live connection now (always, with no
    /// limit set or no address known).
    pub fn admit(&self, ip: Option<std::net::IpAddr>) -> bool {
        match ip.filter(|_| self.max > 0) {
            None => true,
            Some(ip) => self
                .with_use(counted_as(ip), |u| {
                    if u.connections < 1.0 {
                        return false;
                    }
                    u.connections -= 1.0;
                    true
                })
                .unwrap_or(true),
        }
    }

    /// A client's share: counted against its address, if known.
    pub fn client(self: &Arc<Self>, ip: Option<std::net::IpAddr>) -> Quota {
        Quota {
            table: ip
                .filter(|_| self.max > 0)
                .map(|ip| (Arc::clone(self), counted_as(ip))),
            held: 0,
        }
    }
}

/// One client's subscriptions, counted against its address; given back
/// when it is dropped (the client left).
#[derive(Debug)]
pub struct Quota {
    table: Option<(Arc<AddressQuotas>, std::net::IpAddr)>,
    held: u32,
}

impl Quota {
    /// No limit (a client of no known address, and tests).
    pub fn unlimited() -> Quota {
        Quota {
            table: None,
            held: 0,
        }
    }

    /// Takes one subscription; `false` when the address holds its most,
    /// or has made too many too fast.
    fn take(&mut self) -> bool {
        if let Some((table, ip)) = &self.table {
            let taken = table.with_use(*ip, |u| {
                if u.held >= table.max || u.allowance < 1.0 {
                    return false;
                }
                u.held += 1;
                u.allowance -= 1.0;
                true
            });
            // (`None`: every address remembered is busy; this one goes
            // uncounted, and what it gives back later only leaves room.)
            if taken == Some(false) {
                return false;
            }
        }
        self.held += 1;
        true
    }

    /// Gives one subscription back.
    fn give(&mut self) {
        self.give_n(1);
    }

    fn give_n(&mut self, n: u32) {
        let n = n.min(self.held);
        self.held -= n;
        if let Some((table, ip)) = &self.table
            && let Some(u) = table.held.lock().get_mut(ip)
        {
            // Kept when it holds nothing: its allowance must outlive its
            // connections (a storm closes them).
            u.held = u.held.saturating_sub(n);
        }
    }
}

impl Drop for Quota {
    fn drop(&mut self) {
        self.give_n(self.held);
    }
}

/// How long one frame may take to send before the client is dropped.
pub const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Counts a connected client, from its upgrade request on, for as long
/// as it lives.
struct ClientGuard(Arc<Stats>);

impl ClientGuard {
    /// A place among at most `max` clients, taken at once (so that a
    /// burst of upgrades cannot all pass the check before any is counted);
    /// `Err` with the number connected when there is none.
    fn admit(stats: &Arc<Stats>, max: u32) -> Result<Self, u64> {
        let before = stats.ws_clients.fetch_add(1, Ordering::AcqRel);
        let guard = ClientGuard(Arc::clone(stats));
        if before >= u64::from(max) {
            return Err(before);
        }
        Ok(guard)
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.ws_clients.fetch_sub(1, Ordering::Relaxed);
    }
}

fn text(frame: &SharedFrame) -> Message {
    Message::Text(frame.as_ref().into())
}

fn error(sub: Option<String>, message: impl Into<String>) -> Message {
    Message::Text(Frame::error(sub, message).to_json().into())
}

/// Subscriptions one client may hold at once.
pub const MAX_SUBSCRIPTIONS: usize = 64;
/// The largest message a client may send (larger: the socket is closed).
pub const MAX_CLIENT_MESSAGE: usize = 64 << 10;
/// The longest view key (its kind and filter) a client may subscribe to.
pub const MAX_VIEW_KEY: usize = 2 << 10;
/// Messages the server could not read that a client may send before its
/// socket is closed.
pub const MAX_BAD_MESSAGES: u32 = 20;
/// Live connections the server takes at once.
pub const MAX_CLIENTS: u32 = 4_096;

/// Serves one client until it leaves, the hub stops or the server shuts
/// down. Generic over the socket halves so it can be tested without HTTP.
///
/// The client's state is its views and one broadcast receiver per view
/// (each bounded by the hub's buffer): memory per client is bounded
/// whatever it does.
pub async fn serve<Tx, Rx, E>(
    mut sink: Tx,
    mut incoming: Rx,
    viewer: Viewer,
    stats: Arc<Stats>,
    mut quota: Quota,
    shutdown: CancellationToken,
) where
    Tx: Sink<Message> + Unpin,
    Rx: Stream<Item = Result<Message, E>> + Unpin,
{
    let Viewer { hub, lens, until } = viewer;
    let session_over = async move {
        match until {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(session_over);
    // A send that cannot complete within SEND_TIMEOUT means the client
    // stopped reading (its TCP window is shut): drop it and count it.
    let send = async |sink: &mut Tx, msg: Message| -> bool {
        match tokio::time::timeout(SEND_TIMEOUT, sink.send(msg)).await {
            Ok(Ok(())) => true,
            Ok(Err(_)) => false,
            Err(_) => {
                stats.ws_dropped_slow.fetch_add(1, Ordering::Relaxed);
                tracing::info!("ws client stopped reading; dropped");
                false
            }
        }
    };
    let mut views: HashMap<String, View> = HashMap::new();
    let mut bad: u32 = 0;
    let mut streams: StreamMap<String, BroadcastStream<SharedFrame>> = StreamMap::new();
    loop {
        // What to send next, if anything.
        let reply: Option<Message> = tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
            () = &mut session_over => {
                let _ = sink
                    .send(error(None, "your session has ended: sign in again"))
                    .await;
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
            Some((key, frame)) = streams.next(), if !streams.is_empty() => match frame {
                Ok(frame) => Some(text(&frame)),
                Err(BroadcastStreamRecvError::Lagged(missed)) => {
                    // Fallen behind this view's buffer: a fresh snapshot
                    // replaces the frames it missed.
                    stats.ws_resyncs.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%key, missed, "ws client behind, resyncing");
                    let Some(view) = views.get(&key).cloned() else { continue };
                    match subscribe(&hub, &lens, view, &mut streams).await {
                        Ok((msg, _)) => Some(msg),
                        Err(HubStopped) => break,
                    }
                }
            },
            msg = incoming.next() => match msg {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<ClientMsg>(&t) {
                    Ok(ClientMsg::Subscribe { view }) => {
                        let key = view.key();
                        if key.len() > MAX_VIEW_KEY {
                            bad += 1;
                            Some(error(
                                None,
                                format!(
                                    "a view's filter may be {MAX_VIEW_KEY} bytes long; this one is {}",
                                    key.len()
                                ),
                            ))
                        } else if views.len() >= MAX_SUBSCRIPTIONS && !views.contains_key(&key) {
                            Some(error(
                                Some(key),
                                format!(
                                    "a client may hold {MAX_SUBSCRIPTIONS} subscriptions; \
                                     unsubscribe from one first"
                                ),
                            ))
                        } else if !views.contains_key(&key) && !quota.take() {
                            stats.ws_quota_refused.fetch_add(1, Ordering::Relaxed);
                            Some(error(
                                Some(key),
                                "the live connections from this address hold the most \
                                 subscriptions one address may, or made too many too fast \
                                 (--ws-per-address); close some views or tabs, or wait",
                            ))
                        } else {
                            views.insert(key.clone(), view.clone());
                            match subscribe(&hub, &lens, view, &mut streams).await {
                                Ok((msg, held)) => {
                                    // A view the server cannot serve is not held.
                                    if !held && views.remove(&key).is_some() {
                                        quota.give();
                                    }
                                    Some(msg)
                                }
                                Err(HubStopped) => break,
                            }
                        }
                    }
                    Ok(ClientMsg::Unsubscribe { sub }) => {
                        if views.remove(&sub).is_some() {
                            quota.give();
                        }
                        streams.remove(&sub);
                        None
                    }
                    Err(e) => {
                        bad += 1;
                        // (The serde message quotes at most a little of it.)
                        Some(error(
                            None,
                            format!("not a live protocol v{PROTOCOL_VERSION} message: {e}"),
                        ))
                    }
                },
                // Pings are answered by axum itself; binary is not spoken.
                Some(Ok(Message::Binary(_))) => {
                    bad += 1;
                    Some(error(
                        None,
                        "the live protocol is JSON text; binary messages are ignored",
                    ))
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => None,
            },
        };
        if let Some(msg) = reply
            && !send(&mut sink, msg).await
        {
            break;
        }
        if bad >= MAX_BAD_MESSAGES {
            stats.ws_closed_bad.fetch_add(1, Ordering::Relaxed);
            let _ = send(
                &mut sink,
                error(
                    None,
                    format!("{bad} messages this server could not read: closing"),
                ),
            )
            .await;
            let _ = sink.send(Message::Close(None)).await;
            break;
        }
    }
}

/// Subscribes to `view` (replacing any earlier subscription to it) and
/// returns the snapshot to send and `true`, or an error frame saying why
/// the view cannot be served and `false`.
async fn subscribe(
    hub: &HubHandle,
    lens: &crate::access::Lens,
    view: View,
    streams: &mut StreamMap<String, BroadcastStream<SharedFrame>>,
) -> Result<(Message, bool), HubStopped> {
    let key = view.key();
    Ok(match hub.subscribe(view, lens.clone()).await? {
        Ok(sub) => {
            streams.insert(sub.key, BroadcastStream::new(sub.deltas));
            (text(&sub.snapshot), true)
        }
        Err(message) => {
            streams.remove(&key);
            (error(Some(key), message), false)
        }
    })
}

#[cfg(test)]
mod tests {
    /// A running hub for the tests below (it must be called inside a
    /// runtime): its handle, its stats, the stop that ends it, and its
    /// ingest queue (kept open for its lifetime).
    fn running_hub(
        tick: std::time::Duration,
    ) -> (
        crate::live::hub::HubHandle,
        std::sync::Arc<crate::stats::Stats>,
        tokio_util::sync::CancellationToken,
        crate::ingest::queue::Sender,
    ) {
        use std::sync::Arc;
        let stats = Arc::new(crate::stats::Stats::default());
        let shutdown = tokio_util::sync::CancellationToken::new();
        let (tx, rx) = crate::ingest::queue::queue();
        let (hub, handle) = crate::live::Hub::new(
            rx,
            Arc::clone(&stats),
            Arc::new(parking_lot::RwLock::new(crate::store::Store::new(64 << 20))),
            Arc::new(parking_lot::Mutex::new(
                crate::projection::timetravel::Checkpoints::new(1_000_000, i64::MAX, 8),
            )),
            crate::projection::partition::Folds::new(Default::default(), 1),
            Arc::new(crate::ingest::decode::Decoders::new(Default::default())),
            tick,
        );
        tokio::spawn(hub.run(shutdown.clone()));
        (handle, stats, shutdown, tx)
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_network() {
        use super::counted_as;
        let a: std::net::IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: std::net::IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        let c: std::net::IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(counted_as(a), counted_as(b), "one /64");
        assert_ne!(counted_as(a), counted_as(c));
        let mapped: std::net::IpAddr = "::ffff:10.0.0.7".parse().expect("ip");
        assert_eq!(
            counted_as(mapped),
            "10.0.0.7".parse::<std::net::IpAddr>().expect("ip")
        );
    }

    #[test]
    fn the_table_of_addresses_is_bounded() {
        use super::{ADDRESSES, AddressQuotas};
        let table = AddressQuotas::new(1);
        // Every address remembered holds a subscription: none can go.
        let mut held: Vec<_> = (0..ADDRESSES as u32)
            .map(|i| {
                let mut q = table.client(Some(std::net::Ipv4Addr::from(i).into()));
                assert!(q.take());
                q
            })
            .collect();
        assert_eq!(table.held.lock().len(), ADDRESSES);
        // A new address is let in uncounted, and the table does not grow.
        let newcomer = Some(std::net::Ipv4Addr::new(203, 0, 113, 1).into());
        assert!(table.admit(newcomer));
        assert!(table.client(newcomer).take());
        assert_eq!(table.held.lock().len(), ADDRESSES);
        // A counted address is still held to its quota.
        assert!(!held[0].take(), "1 subscription per address");
        held.clear();
    }

    /// The hub serves 1,024 distinct views over all clients: the next one
    /// gets an error frame; a view let go by its last client is dropped on
    /// the next tick, and the room is there again.
    #[test]
    fn the_hub_watches_1024_distinct_views_and_lets_go_of_unwatched_ones() {
        use super::*;
        use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
        use std::time::Duration;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let (handle, stats, shutdown, tx) = running_hub(Duration::from_millis(20));
            type Client = (
                UnboundedSender<Result<Message, ()>>,
                UnboundedReceiver<Message>,
            );
            let connect = || -> Client {
                let (client, incoming) = unbounded();
                let (sink, answers) = unbounded();
                tokio::spawn(serve(
                    sink,
                    incoming,
                    handle.clone().into(),
                    Arc::clone(&stats),
                    Quota::unlimited(),
                    shutdown.clone(),
                ));
                (client, answers)
            };
            let view = |i: usize| View::Tail {
                filter: format!("subject=v.s{i}"),
                limit: 1,
            };
            let send = |c: &Client, msg: ClientMsg| {
                let text = serde_json::to_string(&msg).expect("json");
                c.0.unbounded_send(Ok(Message::Text(text.into())))
                    .expect("sent");
            };
            // The next snapshot or error a client gets.
            async fn answer(c: &mut Client) -> Result<(), String> {
                loop {
                    let Some(Message::Text(t)) = c.1.next().await else {
                        panic!("the client was closed")
                    };
                    match serde_json::from_str::<Frame>(&t).expect("a frame").body {
                        app::wire::Body::Snapshot { .. } => return Ok(()),
                        app::wire::Body::Error { message } => return Err(message),
                        _ => {}
                    }
                }
            }
            // 16 clients of 64 views each: 1,024 distinct views.
            let mut clients: Vec<Client> = (0..16).map(|_| connect()).collect();
            for (c, client) in clients.iter_mut().enumerate() {
                for i in 0..MAX_SUBSCRIPTIONS {
                    send(
                        client,
                        ClientMsg::Subscribe {
                            view: view(c * MAX_SUBSCRIPTIONS + i),
                        },
                    );
                }
                for _ in 0..MAX_SUBSCRIPTIONS {
                    assert_eq!(answer(client).await, Ok(()));
                }
            }
            // A 17th client: the 1,025th view is refused, an existing one
            // is shared.
            let mut late = connect();
            send(&late, ClientMsg::Subscribe { view: view(5_000) });
            let refused = answer(&mut late).await.expect_err("refused");
            assert!(refused.contains("1024 distinct views"), "{refused}");
            send(&late, ClientMsg::Subscribe { view: view(3) });
            assert_eq!(answer(&mut late).await, Ok(()), "a view already watched");
            // The first client lets go of its view 0, watched by nobody
            // else: at a tick the hub drops it, and the new view fits.
            send(&clients[0], ClientMsg::Unsubscribe { sub: view(0).key() });
            tokio::time::sleep(Duration::from_millis(100)).await;
            send(&late, ClientMsg::Subscribe { view: view(5_000) });
            assert_eq!(
                answer(&mut late).await,
                Ok(()),
                "room after a view was let go"
            );
            shutdown.cancel();
            std::mem::forget(tx);
        });
    }

    /// A client that stops reading falls more than a view's 64 frames
    /// behind: when it reads again it gets a fresh snapshot in place of
    /// what it missed, counted once in `ws_resyncs`.
    #[test]
    fn a_client_far_behind_is_resynced_with_a_snapshot_and_counted() {
        use super::*;
        use crate::event::NewEvent;
        use std::time::Duration;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            // A tick every 5 ms: 64 frames in a third of a second.
            let (handle, stats, shutdown, tx) = running_hub(Duration::from_millis(5));
            let (client, incoming) = futures::channel::mpsc::unbounded::<Result<Message, ()>>();
            // No room: each frame waits until the test reads it.
            let (sink, mut frames) = futures::channel::mpsc::channel::<Message>(0);
            let serving = tokio::spawn(serve(
                sink,
                incoming,
                handle.into(),
                Arc::clone(&stats),
                Quota::unlimited(),
                shutdown.clone(),
            ));
            let subscribe = ClientMsg::Subscribe { view: View::Counts };
            client
                .unbounded_send(Ok(Message::Text(
                    serde_json::to_string(&subscribe).expect("json").into(),
                )))
                .expect("sent");
            let body = |m: Message| match m {
                Message::Text(t) => serde_json::from_str::<Frame>(&t).expect("a frame").body,
                other => panic!("{other:?}"),
            };
            let first = body(frames.next().await.expect("a frame"));
            assert!(
                matches!(first, app::wire::Body::Snapshot { .. }),
                "{first:?}"
            );
            // Events every 2 ms for 1.5 s (about 300 ticks that change the
            // counts) while the client reads nothing.
            for i in 0..750 {
                tx.send(vec![NewEvent::core("lag.s", "{}", 1_000 + i)])
                    .await
                    .expect("hub takes events");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            assert_eq!(
                stats.ws_resyncs.load(Ordering::Relaxed),
                0,
                "nothing read yet"
            );
            // Reading again: the frame it was sending, then a snapshot.
            let resynced = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    if let app::wire::Body::Snapshot { .. } =
                        body(frames.next().await.expect("a frame"))
                    {
                        return;
                    }
                }
            })
            .await;
            assert!(resynced.is_ok(), "no snapshot after falling behind");
            assert_eq!(stats.ws_resyncs.load(Ordering::Relaxed), 1);
            shutdown.cancel();
            drop(client);
            drop(frames);
            let _ = serving.await;
            std::mem::forget(tx);
        });
    }

    mod fuzz {
        use super::super::*;
        use crate::event::NewEvent;
        use proptest::prelude::*;
        use std::time::Duration;

        /// A message a client might send: protocol messages with odd
        /// fields, broken JSON, anything.
        fn message() -> impl Strategy<Value = String> {
            let filter = prop_oneof![
                "[a-z=&.>*,]{0,30}",
                "(subject|level|q|field|kind|service|limit|cursor)=[a-z0-9.>=,]{0,12}(&(level|q|field)=[a-z0-9=.]{0,8}){0,4}",
                ".{0,40}",
            ];
            let name = prop_oneof!["[a-z_]{0,12}", ".{0,10}"];
            let window = prop::sample::select(vec!["1s", "10s", "1m", "15m", "1h", "2d", ""]);
            prop_oneof![
                (filter.clone(), 0u32..2_000).prop_map(|(f, l)| {
                    format!(r#"{{"op":"subscribe","view":{{"kind":"tail","filter":{f:?},"limit":{l}}}}}"#)
                }),
                (name.clone(), window.clone()).prop_map(|(n, w)| {
                    format!(r#"{{"op":"subscribe","view":{{"kind":"projection","name":{n:?},"window":{w:?}}}}}"#)
                }),
                (name, window, filter).prop_map(|(n, w, f)| {
                    format!(r#"{{"op":"subscribe","view":{{"kind":"chart","name":{n:?},"window":{w:?},"filter":{f:?}}}}}"#)
                }),
                (0u32..5_000).prop_map(|b| {
                    format!(r#"{{"op":"subscribe","view":{{"kind":"timeline","buckets":{b}}}}}"#)
                }),
                Just(r#"{"op":"subscribe","view":{"kind":"counts"}}"#.to_string()),
                ".{0,30}".prop_map(|s| format!(r#"{{"op":"unsubscribe","sub":{s:?}}}"#)),
                ".{0,60}",
                "[{}\\[\\]\":,a-z0-9 ]{0,60}",
            ]
        }

        /// Any sequence of client messages: the server never panics, its
        /// answers are bounded, and it stops serving when the client
        /// leaves.
        #[test]
        fn fuzz_client_messages_get_bounded_answers() {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let (hub, stats, shutdown, tx) =
                runtime.block_on(async { super::running_hub(Duration::from_millis(20)) });
            runtime.block_on(async {
                let events: Vec<NewEvent> = (0..200)
                    .map(|i| {
                        NewEvent::core(
                            &format!("fz.s{}", i % 7),
                            format!(r#"{{"level":"error","msg":"m{i}","user":{{"id":{i}}}}}"#),
                            1_000 + i,
                        )
                    })
                    .collect();
                tx.send(events).await.expect("hub takes events");
                // Keep the queue open for the hub's lifetime.
                std::mem::forget(tx);
            });
            let config = ProptestConfig::with_cases(crate::fuzz_cases(200));
            let answered = std::sync::atomic::AtomicUsize::new(0);
            proptest!(config, |(msgs in prop::collection::vec(message(), 1..25))| {
                let resyncs = stats.ws_resyncs.load(Ordering::Relaxed);
                let answers: Vec<Message> = runtime.block_on(async {
                    let (client, incoming) = futures::channel::mpsc::unbounded::<Result<Message, ()>>();
                    let (sink, answers) = futures::channel::mpsc::unbounded::<Message>();
                    for m in &msgs {
                        client.unbounded_send(Ok(Message::Text(m.clone().into()))).expect("queued");
                    }
                    drop(client);
                    tokio::time::timeout(
                        Duration::from_secs(20),
                        serve(sink, incoming, hub.clone().into(), Arc::clone(&stats), Quota::unlimited(), shutdown.clone()),
                    )
                    .await
                    .expect("serving ends when the client leaves");
                    answers.collect().await
                });
                // What the protocol says the answers are: one (a snapshot
                // or an error) to each subscribe and to each message the
                // server cannot read, none to an unsubscribe; closed, with
                // an error saying so, at the 20th unreadable one.
                let (mut expected, mut bad, mut closes) = (0usize, 0u32, false);
                for m in &msgs {
                    match serde_json::from_str::<ClientMsg>(m) {
                        Ok(ClientMsg::Subscribe { view }) => {
                            expected += 1;
                            bad += u32::from(view.key().len() > MAX_VIEW_KEY);
                        }
                        Ok(ClientMsg::Unsubscribe { .. }) => {}
                        Err(_) => {
                            expected += 1;
                            bad += 1;
                        }
                    }
                    if bad >= MAX_BAD_MESSAGES {
                        expected += 1;
                        closes = true;
                        break;
                    }
                }
                let (mut direct, mut closed) = (0usize, false);
                for answer in answers {
                    match answer {
                        Message::Text(text) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                            // At most a tail of 1,000 summaries of 500-character
                            // messages and 240-character previews.
                            prop_assert!(text.len() < 4 << 20, "{} bytes", text.len());
                            let frame: app::wire::Frame = serde_json::from_str(&text)
                                .map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
                            prop_assert!(!closed, "a frame after the close");
                            match frame.body {
                                app::wire::Body::Snapshot { .. } | app::wire::Body::Error { .. } => {
                                    direct += 1;
                                }
                                _ => {}
                            }
                        }
                        Message::Close(_) => closed = true,
                        other => prop_assert!(false, "{other:?}"),
                    }
                }
                // (A resync's snapshot is an answer too.)
                let resynced = (stats.ws_resyncs.load(Ordering::Relaxed) - resyncs) as usize;
                prop_assert_eq!(direct, expected + resynced, "{:?}", msgs);
                prop_assert_eq!(closed, closes);
            });
            shutdown.cancel();
            assert!(answered.into_inner() > 0, "the server answered nothing");
        }
    }
}
