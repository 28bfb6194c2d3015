//! Helpers shared by the integration tests: a real nats-server on a free
//! port (killed on drop), the app started on port 0, a WebSocket client.
#![allow(dead_code)] // reason: each test binary uses a different subset

use app::wire::{Body, ClientMsg, Counts, Frame, PROTOCOL_VERSION, View, ViewData, ViewDelta};
use eventscope::demo::managed_nats::{self, ManagedNats};
use futures::{SinkExt, StreamExt};
use std::future::Future;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Every network await in the tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Awaits `fut` or panics with `what` after [`TIMEOUT`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {TIMEOUT:?}: {what}"),
    }
}

/// The nats-server binary for tests.
pub fn nats_bin() -> std::path::PathBuf {
    managed_nats::find_binary(
        std::env::var_os("EVENTSCOPE_NATS_SERVER")
            .map(std::path::PathBuf::from)
            .as_deref(),
    )
    .expect("integration tests need nats-server: run scripts/setup.sh")
}

/// Starts a real nats-server (JetStream on) on `port`, or a free one.
pub async fn nats_server(port: Option<u16>) -> ManagedNats {
    let port = port.unwrap_or_else(|| managed_nats::free_port().expect("free port"));
    ManagedNats::start(&nats_bin(), port)
        .await
        .expect("nats-server starts")
}

pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/ws` on the app at `addr`, subscribed to nothing yet.
pub async fn ws_open(addr: std::net::SocketAddr) -> WsStream {
    let (ws, _) = within(
        "websocket connect",
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws?v={PROTOCOL_VERSION}")),
    )
    .await
    .expect("websocket upgrade");
    ws
}

/// Sends one client message.
pub async fn send(ws: &mut WsStream, msg: &ClientMsg) {
    let text = serde_json::to_string(msg).expect("encode client message");
    within("websocket send", ws.send(Message::Text(text.into())))
        .await
        .expect("send client message");
}

/// Opens `/ws` on the app at `addr` and subscribes to the counts view.
pub async fn ws_connect(addr: std::net::SocketAddr) -> WsStream {
    let mut ws = ws_open(addr).await;
    send(&mut ws, &ClientMsg::Subscribe { view: View::Counts }).await;
    ws
}

/// Reads the next protocol frame (skipping pings), checking its version.
pub async fn next_frame(ws: &mut WsStream) -> Frame {
    next_frame_within(ws, TIMEOUT).await
}

/// [`next_frame`] with its own time limit.
pub async fn next_frame_within(ws: &mut WsStream, limit: Duration) -> Frame {
    loop {
        let msg = tokio::time::timeout(limit, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no websocket frame within {limit:?}"))
            .expect("socket still open")
            .expect("frame");
        if let Message::Text(text) = msg {
            let frame: Frame = serde_json::from_str(&text).expect("frame is protocol JSON");
            assert_eq!(frame.v, PROTOCOL_VERSION);
            return frame;
        }
    }
}

/// A client-side mirror of the server's counts view, built from its frames
/// exactly as the browser builds it (frames of other views are ignored).
#[derive(Debug, Default)]
pub struct Mirror {
    pub state: Counts,
    pub last_seq: Option<u64>,
    pub snapshots: usize,
    pub deltas: usize,
}

impl Mirror {
    /// Applies one frame; checks that each delta follows the frame before
    /// it with no gap.
    pub fn apply(&mut self, frame: Frame) {
        if frame.sub.as_deref() != Some("counts") {
            if let Body::Error { message } = frame.body {
                panic!("server sent an error frame: {message}");
            }
            return;
        }
        match frame.body {
            Body::Snapshot {
                data: ViewData::Counts(s),
            } => {
                self.snapshots += 1;
                self.state = s;
            }
            Body::Delta {
                data: ViewDelta::Counts(d),
            } => {
                assert!(self.snapshots > 0, "a delta came before any snapshot");
                let prev = self.last_seq.expect("a frame before");
                assert_eq!(frame.seq, prev + 1, "a gap in the counts view's frames");
                self.deltas += 1;
                self.state.apply_delta(d);
            }
            Body::Error { message } => panic!("server sent an error frame: {message}"),
            other => panic!("the counts view got a frame of another view: {other:?}"),
        }
        self.last_seq = Some(frame.seq);
    }

    /// Reads frames until `done(state)` holds.
    pub async fn until(&mut self, ws: &mut WsStream, what: &str, done: impl Fn(&Counts) -> bool) {
        self.until_within(ws, what, TIMEOUT, done).await
    }

    /// [`Mirror::until`] with its own time limit.
    pub async fn until_within(
        &mut self,
        ws: &mut WsStream,
        what: &str,
        limit: Duration,
        done: impl Fn(&Counts) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + limit;
        while !done(&self.state) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, next_frame_within(ws, left + Duration::from_secs(1)))
                .await
            {
                Ok(frame) => self.apply(frame),
                Err(_) => panic!(
                    "timed out after {limit:?}: {what}; last state {:?}",
                    self.state
                ),
            }
        }
    }

    /// Count of one subject, 0 when absent.
    pub fn count(&self, subject: &str) -> u64 {
        self.state.subjects.get(subject).map_or(0, |s| s.count)
    }
}

/// A plain NATS client for publishing test traffic.
pub async fn publisher(url: &str) -> async_nats::Client {
    within("publisher connects", async_nats::connect(url))
        .await
        .expect("publisher connects")
}

/// GET `path` on the app; returns status and body.
pub async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let resp = within("http get", reqwest::get(format!("http://{addr}{path}")))
        .await
        .expect("http get");
    let status = resp.status().as_u16();
    (
        status,
        within("http body", resp.text()).await.expect("body"),
    )
}

/// Sends `method path` as written, byte for byte (no client library to
/// encode it: as curl sends a raw `>`), on a connection of its own; returns
/// status and body.
pub async fn raw_http(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    within("raw http", async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(
            format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("send");
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.expect("answer");
        let text = String::from_utf8_lossy(&answer).to_string();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map_or(String::new(), |(_, b)| b.to_string());
        (status, body)
    })
    .await
}

/// Publishes probes on `subject` until the mirror counts one: from then on
/// the server's subscription is known to be live. Returns how many probes
/// the server counted (core NATS is at-most-once: probes published before
/// the subscription was live are lost, as they should be).
pub async fn wait_subscribed(
    client: &async_nats::Client,
    ws: &mut WsStream,
    mirror: &mut Mirror,
    subject: &str,
) -> u64 {
    within("server subscription becomes live", async {
        loop {
            client
                .publish(subject.to_string(), "{}".into())
                .await
                .expect("publish probe");
            client.flush().await.expect("flush probe");
            let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
            while let Ok(frame) = tokio::time::timeout_at(deadline, next_frame(ws)).await {
                mirror.apply(frame);
            }
            if mirror.count(subject) > 0 {
                // Probes still in flight had 300 ms to land; take what is
                // counted once it stops changing.
                loop {
                    let before = mirror.count(subject);
                    let settle = tokio::time::Instant::now() + Duration::from_millis(300);
                    while let Ok(frame) = tokio::time::timeout_at(settle, next_frame(ws)).await {
                        mirror.apply(frame);
                    }
                    if mirror.count(subject) == before {
                        return before;
                    }
                }
            }
        }
    })
    .await
}

/// GET `path` and parse the JSON answer as `T` (panics with the body if it
/// is not that).
pub async fn json<T: serde::de::DeserializeOwned>(
    addr: std::net::SocketAddr,
    path: &str,
) -> (u16, T) {
    let (status, body) = get(addr, path).await;
    let parsed = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("GET {path} answered {status} with {body:?}: {e}"));
    (status, parsed)
}

/// The usual set-up: a real nats-server, the app attached to it with the
/// config `make_config` builds from the NATS URL, a publisher, and a
/// WebSocket mirror that has seen the subscription on `probe` go live.
pub struct Harness {
    pub nats: ManagedNats,
    pub running: eventscope::Running,
    pub client: async_nats::Client,
    pub ws: WsStream,
    pub mirror: Mirror,
    /// Probe events the server counted on the probe subject.
    pub probes: u64,
}

impl Harness {
    pub async fn start(
        make_config: impl FnOnce(String) -> eventscope::config::Config,
        probe: &str,
    ) -> Harness {
        let nats = nats_server(None).await;
        let running = eventscope::start(make_config(nats.url()))
            .await
            .expect("app starts");
        let client = publisher(&nats.url()).await;
        let mut ws = ws_connect(running.addr).await;
        let mut mirror = Mirror::default();
        mirror.apply(next_frame(&mut ws).await);
        assert_eq!(mirror.snapshots, 1, "the first frame is a snapshot");
        let probes = wait_subscribed(&client, &mut ws, &mut mirror, probe).await;
        Harness {
            nats,
            running,
            client,
            ws,
            mirror,
            probes,
        }
    }
}
