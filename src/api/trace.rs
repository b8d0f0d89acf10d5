//! Every request's span and id, and the bounds on its URI.
//!
//! Each request gets an id: the caller's `X-Request-Id` when it is a short token (a proxy in
//! front sets one), else one made here. The id goes back in the answer's `X-Request-Id`
//! header and names the request's span (`request{id, method, route}`), which records the
//! status and latency when the answer is ready. Whatever is logged while the request is
//! answered is inside that span.
//!
//! The span is at `debug` level (`RUST_LOG=urbantile=debug` turns it on, with a line per
//! answer): a span that is recorded costs microseconds, as much as a whole cached tile.
//! Server errors are logged at `warn` and internal errors at `error` whatever the level,
//! each with the request id as a field, so that the id in a generic 500 body always finds
//! its detail in the log.
//!
//! The URI is checked against [`crate::limits`] before anything else reads it.
//!
//! The answer is counted here too, in [`crate::metrics::http`]: by route template (never
//! the raw path) and status, with its latency; a few atomic additions, no lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::api::ApiError;
use crate::limits::{LimitError, MAX_PARAMS, MAX_PATH_BYTES, MAX_QUERY_BYTES};
use crate::metrics::http::{HttpMetrics, UNMATCHED};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT: HeaderValue;
}

/// The id of the request being answered on this task, if any.
pub fn current_request_id() -> Option<String> {
    CURRENT
        .try_with(|id| id.to_str().ok().map(str::to_owned))
        .ok()
        .flatten()
}

/// Ids made here: a per-process prefix (so that ids from two servers, or two runs, do not
/// collide) and a counter.
fn new_id() -> HeaderValue {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        nanos ^ std::process::id().rotate_left(16)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    HeaderValue::from_str(&format!("{prefix:08x}-{n:x}")).unwrap_or(HeaderValue::from_static("-"))
}

/// The caller's id when it is a short token of letters, digits, `-`, `_`, `.`, `:`.
fn given_id(request: &Request) -> Option<HeaderValue> {
    let v = request.headers().get(&REQUEST_ID)?;
    let ok = (1..=64).contains(&v.len())
        && v.as_bytes()
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b));
    ok.then(|| v.clone())
}

/// The URI's path and query within [`crate::limits`].
pub fn check_uri(uri: &Uri) -> Result<(), LimitError> {
    if uri.path().len() > MAX_PATH_BYTES {
        return Err(LimitError::new("the URI path", MAX_PATH_BYTES, "bytes"));
    }
    let query = uri.query().unwrap_or_default();
    if query.len() > MAX_QUERY_BYTES {
        return Err(LimitError::new(
            "the query string",
            MAX_QUERY_BYTES,
            "bytes",
        ));
    }
    if query.split('&').count() > MAX_PARAMS {
        return Err(LimitError::new(
            "the number of query parameters",
            MAX_PARAMS,
            "parameters",
        ));
    }
    Ok(())
}

/// The middleware: id, span, URI bounds, then the route; the answer is counted in the
/// request metrics (when on) by its route template and status.
pub async fn layer(
    State(metrics): State<Option<Arc<HttpMetrics>>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = given_id(&request).unwrap_or_else(new_id);
    let matched = request.extensions().get::<MatchedPath>();
    // The template, not the path: a bounded label set.
    let template = metrics.as_ref().and(matched.cloned());
    let route = matched.map_or("-", |p| p.as_str());
    let span = tracing::debug_span!(
        "request",
        id = id.to_str().unwrap_or("-"),
        method = %request.method(),
        route,
        status = tracing::field::Empty,
        ms = tracing::field::Empty,
    );
    let mut response = match check_uri(request.uri()) {
        Err(e) => {
            let _in = span.enter();
            ApiError::from(e).into_response()
        }
        Ok(()) => {
            CURRENT
                .scope(id.clone(), next.run(request).instrument(span.clone()))
                .await
        }
    };
    let status = response.status();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if !span.is_disabled() {
        span.record("status", status.as_u16());
        span.record("ms", ms);
    }
    if status.is_server_error() {
        tracing::warn!(parent: &span, id = id.to_str().unwrap_or("-"), ms, "answered {status}");
    } else {
        tracing::debug!(parent: &span, "answered {status}");
    }
    response.headers_mut().insert(REQUEST_ID, id);
    if let Some(metrics) = metrics {
        let route = template.as_ref().map_or(UNMATCHED, |p| p.as_str());
        metrics.record(route, status.as_u16(), started.elapsed());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_past_the_limits_are_refused_with_the_limit_named() {
        assert!(check_uri(&"/tiles/roads/1/2/3.mvt?v=1".parse().unwrap()).is_ok());
        let long_path: Uri = format!("/{}", "a".repeat(MAX_PATH_BYTES)).parse().unwrap();
        assert_eq!(
            check_uri(&long_path).unwrap_err().to_string(),
            "the URI path is over the limit of 4096 bytes"
        );
        let long_query: Uri = format!("/x?filter={}", "a".repeat(MAX_QUERY_BYTES))
            .parse()
            .unwrap();
        assert!(
            check_uri(&long_query)
                .unwrap_err()
                .to_string()
                .contains("32768 bytes")
        );
        let many: Uri = format!("/x?{}", "a=1&".repeat(MAX_PARAMS + 1))
            .parse()
            .unwrap();
        assert!(
            check_uri(&many)
                .unwrap_err()
                .to_string()
                .contains("parameters")
        );
    }

    #[test]
    fn ids_are_new_unless_the_caller_gives_a_short_token() {
        assert_ne!(new_id(), new_id());
        let with = |v: &str| {
            let mut r = Request::new(axum::body::Body::empty());
            r.headers_mut()
                .insert(REQUEST_ID, HeaderValue::from_str(v).unwrap());
            given_id(&r)
        };
        assert_eq!(with("abc-123").unwrap(), "abc-123");
        assert!(with("has space").is_none());
        assert!(with(&"x".repeat(65)).is_none());
    }
}
