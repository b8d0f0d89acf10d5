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
    /// A valid key without the scope the request needs.
    #[error("{0}")]
    Forbidden(String),
    /// An unknown layer, feature or route.
    #[error("{0}")]
    NotFound(String),
    /// `If-Match` names a state the feature is no longer in; carries its current ETag.
    #[error("{description}")]
    PreconditionFailed { description: String, etag: String },
    /// A request body above the server's limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed, but its content does not fit the layer (names feature and field).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, description) = match self {
            ApiError::BadRequest(d) => (StatusCode::BAD_REQUEST, "InvalidParameterValue", d),
            ApiError::NotFound(d) => (StatusCode::NOT_FOUND, "NotFound", d),
            ApiError::Forbidden(d) => (StatusCode::FORBIDDEN, "Forbidden", d),
            ApiError::PayloadTooLarge(d) => (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge", d),
            ApiError::UnsupportedMediaType(d) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                d,
            ),
            ApiError::Unprocessable(d) => (StatusCode::UNPROCESSABLE_ENTITY, "InvalidFeature", d),
            ApiError::PreconditionFailed { description, etag } => {
                let body = Json(serde_json::json!({
                    "code": "PreconditionFailed",
                    "description": description,
                }));
                return (
                    StatusCode::PRECONDITION_FAILED,
                    [(axum::http::header::ETAG, etag)],
                    body,
                )
                    .into_response();
            }
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

impl From<crate::live::EditError> for ApiError {
    fn from(e: crate::live::EditError) -> Self {
        use crate::live::EditError as E;
        match e {
            E::NotFound { .. } => ApiError::NotFound(e.to_string()),
            E::Precondition { ref current, .. } => ApiError::PreconditionFailed {
                etag: current.clone(),
                description: e.to_string(),
            },
            E::Invalid(r) => ApiError::Unprocessable(r.to_string()),
            E::Store(s) => s.into(),
            E::Aborted(detail) => ApiError::Internal(detail),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}
