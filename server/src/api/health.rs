//! `GET /healthz` (the process is up) and `GET /readyz` (NATS is connected
//! and the live hub turning).

use crate::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

/// Always 200 while the process serves HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The live hub ticks ten times a second; this long without a tick, it is
/// stuck (or gone) and the server is not ready.
pub const HUB_STALLED_MS: i64 = 5_000;

/// 200 when the NATS connection is up and the live hub turning; 503 (with
/// the URL, or the hub's silence) when not.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let beat = state.stats.hub_beat_ms.load(Ordering::Relaxed);
    let silent_ms = crate::event::now_ms() - beat;
    if beat == 0 || silent_ms > HUB_STALLED_MS {
        let message = if beat == 0 {
            "the live hub has not started".to_string()
        } else {
            format!(
                "the live hub has not turned for {:.1} s: events are not being folded",
                silent_ms as f64 / 1000.0
            )
        };
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not ready",
                "message": message,
                "nats_url": *state.nats_url,
            })),
        );
    }
    if state.stats.nats_connected.load(Ordering::Relaxed) {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "nats_url": *state.nats_url})),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not ready",
                "message": format!("NATS at {} is not connected yet; retrying", state.nats_url),
                "nats_url": *state.nats_url,
            })),
        )
    }
}
