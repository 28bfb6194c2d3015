//! The API's error type: a status and a message a person can act on,
//! answered as JSON `{"error": "..."}`.

use app::api::ApiError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request was malformed: 400.
    #[error("{0}")]
    BadRequest(String),
    /// The thing asked for does not exist: 404.
    #[error("{0}")]
    NotFound(String),
    /// It existed but is no longer kept (evicted from the log): 410.
    #[error("{0}")]
    Gone(String),
    /// The request conflicts with how the server runs: 409.
    #[error("{0}")]
    Conflict(String),
    /// The server cannot answer now (shutting down): 503.
    #[error("{0}")]
    Unavailable(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Gone(_) => StatusCode::GONE,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        (
            status,
            Json(ApiError {
                error: self.to_string(),
            }),
        )
            .into_response()
    }
}

/// Makes every error the API answers JSON, the framework's own rejections
/// included (a path segment that is not UTF-8, a wrong method, a query the
/// extractor refuses): an error answer that is not JSON becomes
/// `{"error": <its text>}` with the same status.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // The framework's texts are short; anything longer is cut.
    let text = axum::body::to_bytes(body, 16 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let error = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_string()
    } else {
        text
    };
    let mut out = (status, Json(ApiError { error })).into_response();
    // Keep what the framework said besides (an `Allow` on a 405).
    if let Some(allow) = parts.headers.get(axum::http::header::ALLOW) {
        out.headers_mut()
            .insert(axum::http::header::ALLOW, allow.clone());
    }
    out
}

/// Answers a path under the API that names nothing.
pub async fn not_found(uri: axum::http::Uri) -> AppError {
    AppError::NotFound(format!("no such API path: {}; see docs/API.md", uri.path()))
}
