//! `GET /healthz` (the process is up) and `GET /readyz` (NATS is connected).

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

/// 200 when the NATS connection is up, 503 (with the URL) when it is not.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
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
