//! `ApiError`: every failure a handler can answer with, mapped to a status and the OGC-style
//! JSON body `{"code": "...", "description": "..."}`. Internal errors are logged in full and
//! answered with a generic body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A malformed or unknown parameter, or a tile outside the scheme.
    #[error("{0}")]
    BadRequest(String),
    /// No key, or a key the server does not know (or has revoked).
    #[error("{0}")]
    Unauthorized(String),
    /// An unknown layer, feature or route.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, description) = match self {
            ApiError::BadRequest(d) => (StatusCode::BAD_REQUEST, "InvalidParameterValue", d),
            ApiError::NotFound(d) => (StatusCode::NOT_FOUND, "NotFound", d),
            ApiError::Unauthorized(d) => {
                let body = Json(serde_json::json!({ "code": "Unauthorized", "description": d }));
                return (
                    StatusCode::UNAUTHORIZED,
                    [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
                    body,
                )
                    .into_response();
            }
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "the server failed to answer; the error is in its log".to_owned(),
                )
            }
        };
        (
            status,
            Json(serde_json::json!({ "code": code, "description": description })),
        )
            .into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}
