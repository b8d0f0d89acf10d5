//! CORS for browsers, without hiding `OPTIONS` from other clients.
//!
//! tower-http's CORS layer answers every `OPTIONS` request itself, as a preflight. A CORS
//! preflight is an `OPTIONS` request that carries `Access-Control-Request-Method`; one
//! without it (QGIS asking which methods a collection allows before it offers to edit)
//! must reach the route, which answers `Allow`. [`CorsExceptPlainOptions`] sends each
//! request one way or the other, at the cost of one comparison: no extra middleware.

use std::task::{Context, Poll};

use axum::http::{Method, Request, Response, header};
use futures_util::future::Either;
use tower::{Layer, Service};
use tower_http::cors::{Cors, CorsLayer};

/// Wraps routes in CORS, except plain `OPTIONS` requests.
#[derive(Clone)]
pub struct CorsExceptPlainOptions(pub CorsLayer);

impl<S: Clone> Layer<S> for CorsExceptPlainOptions {
    type Service = Routed<S>;

    fn layer(&self, inner: S) -> Routed<S> {
        Routed {
            cors: self.0.layer(inner.clone()),
            plain: inner,
        }
    }
}

/// The routes, with and without CORS.
#[derive(Clone)]
pub struct Routed<S> {
    cors: Cors<S>,
    plain: S,
}

impl<S, B, R> Service<Request<B>> for Routed<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone,
    R: Default,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Either<S::Future, <Cors<S> as Service<Request<B>>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Both wrap clones of one router, which is always ready; both are asked anyway.
        match self.cors.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.plain.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.method() == Method::OPTIONS
            && !request
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            Either::Left(self.plain.call(request))
        } else {
            Either::Right(self.cors.call(request))
        }
    }
}
