//! `GET /ws`: one WebSocket per browser tab. Sends the hub's snapshot, then
//! every delta frame; resyncs with a fresh snapshot when the client has
//! fallen more than the hub's buffer behind. The per-client state is one
//! broadcast receiver: memory per client is bounded whatever it does.

use super::hub::{HubHandle, SharedFrame};
use crate::AppState;
use crate::stats::Stats;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{Sink, SinkExt, Stream, StreamExt};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// The upgrade handler.
pub async fn handler(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    ws.on_upgrade(move |socket: WebSocket| async move {
        let (sink, stream) = socket.split();
        serve(sink, stream, state.hub, state.stats, state.shutdown).await;
    })
}

/// Counts a connected client for as long as it lives.
struct ClientGuard(Arc<Stats>);

impl ClientGuard {
    fn new(stats: Arc<Stats>) -> Self {
        stats.ws_clients.fetch_add(1, Ordering::Relaxed);
        ClientGuard(stats)
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

/// Serves one client until it leaves, the hub stops or the server shuts
/// down. Generic over the socket halves so it can be tested without HTTP.
pub async fn serve<Tx, Rx, E>(
    mut sink: Tx,
    mut incoming: Rx,
    hub: HubHandle,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
) where
    Tx: Sink<Message> + Unpin,
    Rx: Stream<Item = Result<Message, E>> + Unpin,
{
    let _guard = ClientGuard::new(Arc::clone(&stats));
    let Ok(mut sub) = hub.subscribe().await else {
        return;
    };
    if sink.send(text(&sub.snapshot)).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
            frame = sub.deltas.recv() => match frame {
                Ok(frame) => {
                    if sink.send(text(&frame)).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    stats.ws_resyncs.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(missed, "ws client behind, resyncing");
                    let Ok(fresh) = hub.subscribe().await else { break };
                    sub = fresh;
                    if sink.send(text(&sub.snapshot)).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Closed) => break,
            },
            msg = incoming.next() => match msg {
                // Clients say nothing in protocol v1 but pings, which axum
                // answers itself; anything else is ignored.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
}
