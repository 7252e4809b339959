//! REST authentication: HTTP Basic with the account SID and auth token, or
//! an API key SID and secret, exactly as Twilio's helper libraries send
//! them. A request without valid credentials is answered 401 (Twilio code
//! 20003) and reaches no handler.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use crate::app::AppState;
use crate::error::ApiError;

/// Checks the request's Basic credentials against the account.
pub async fn basic(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ok = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .is_some_and(|pair| match pair.split_once(':') {
            Some((user, password)) => state.account.read().authenticates(user, password),
            None => false,
        });
    if ok {
        return next.run(request).await;
    }
    let mut response = ApiError::unauthenticated().into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Colloquy\""),
    );
    response
}
