//! `ApiError`: every failure a handler can answer with, mapped to a status and the OGC-style
//! JSON body `{"code": "...", "description": "..."}`. Internal errors are logged in full,
//! with the request id, and answered with a generic body that carries the same id (see
//! [`crate::api::trace`]), so that an operator can find the detail.

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
    /// What the request asks for is no longer there to give (a pack's changes from a
    /// position the change log no longer reaches).
    #[error("{0}")]
    Gone(String),
    /// A request past one of [`crate::limits`]' bounds (a 400 that names the limit).
    #[error(transparent)]
    Limit(#[from] crate::limits::LimitError),
    /// The request lost a race with another writer (in the store) and may be sent again.
    #[error("{0}")]
    Conflict(String),
    /// Overloaded, past the deadline or shutting down: try again after `retry_after_s`.
    #[error("{description}")]
    Unavailable {
        description: String,
        retry_after_s: u32,
    },
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, description) = match self {
            ApiError::BadRequest(d) => (StatusCode::BAD_REQUEST, "InvalidParameterValue", d),
            ApiError::NotFound(d) => (StatusCode::NOT_FOUND, "NotFound", d),
            ApiError::Conflict(d) => (StatusCode::CONFLICT, "Conflict", d),
            ApiError::Gone(d) => (StatusCode::GONE, "Gone", d),
            ApiError::Forbidden(d) => (StatusCode::FORBIDDEN, "Forbidden", d),
            ApiError::PayloadTooLarge(d) => (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge", d),
            ApiError::UnsupportedMediaType(d) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                d,
            ),
            ApiError::Unprocessable(d) => (StatusCode::UNPROCESSABLE_ENTITY, "InvalidFeature", d),
            ApiError::Limit(e) => (StatusCode::BAD_REQUEST, "LimitExceeded", e.to_string()),
            ApiError::Unavailable {
                description,
                retry_after_s,
            } => {
                let body = Json(serde_json::json!({
                    "code": "ServiceUnavailable",
                    "description": description,
                }));
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(axum::http::header::RETRY_AFTER, retry_after_s.to_string())],
                    body,
                )
                    .into_response();
            }
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
                let id = crate::api::trace::current_request_id();
                tracing::error!(request = id.as_deref().unwrap_or("-"), %detail, "internal error");
                let body = Json(serde_json::json!({
                    "code": "InternalError",
                    "description": format!(
                        "the server failed to answer; its log has the detail under request id {}",
                        id.as_deref().unwrap_or("-")
                    ),
                    "request_id": id,
                }));
                return (StatusCode::INTERNAL_SERVER_ERROR, body).into_response();
            }
        };
        (
            status,
            Json(serde_json::json!({ "code": code, "description": description })),
        )
            .into_response()
    }
}

impl From<crate::dataset::live::EditError> for ApiError {
    fn from(e: crate::dataset::live::EditError) -> Self {
        use crate::dataset::live::EditError as E;
        match e {
            E::NotFound { .. } => ApiError::NotFound(e.to_string()),
            E::NotOwner { .. } => ApiError::Forbidden(e.to_string()),
            E::Precondition { ref current, .. } => ApiError::PreconditionFailed {
                etag: current.clone(),
                description: e.to_string(),
            },
            E::Invalid(r) => ApiError::Unprocessable(r.to_string()),
            E::Store(s) => (&s).into(),
            E::Shared(s) => (&*s).into(),
            E::Aborted(detail) => ApiError::Internal(detail),
        }
    }
}

impl From<crate::compute::Refused> for ApiError {
    fn from(e: crate::compute::Refused) -> Self {
        use crate::compute::Refused as R;
        let retry_after_s = match e {
            R::Busy { .. } => 1,
            R::Stopped => 5,
            R::Overrun { .. } => 30,
            R::Panicked => return ApiError::Internal(e.to_string()),
        };
        ApiError::Unavailable {
            description: e.to_string(),
            retry_after_s,
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        (&e).into()
    }
}

/// By [`crate::store::ErrorKind`]: a lost race is 409 (send it again), a database that
/// cannot be reached is 503 with `Retry-After` (the detail is logged, not answered: it may
/// name hosts), data a constraint of the database refuses is 422 with the database's
/// words, anything else 500.
impl From<&crate::store::StoreError> for ApiError {
    fn from(e: &crate::store::StoreError) -> Self {
        use crate::store::ErrorKind;
        match e.kind() {
            ErrorKind::Conflict => ApiError::Conflict(format!(
                "{e}; another request changed the same data at the same time: send it again"
            )),
            ErrorKind::Unavailable => {
                tracing::warn!("store unavailable: {}", crate::model::error_chain(e));
                ApiError::Unavailable {
                    description: "the store is not answering; try again shortly".into(),
                    retry_after_s: 2,
                }
            }
            ErrorKind::Refused => ApiError::Unprocessable(format!(
                "the database refused the feature: {}",
                crate::model::error_chain(e)
            )),
            ErrorKind::Other => ApiError::Internal(crate::model::error_chain(e)),
        }
    }
}
