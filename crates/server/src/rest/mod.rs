//! The REST API: Twilio Conversations v1, path for path.
//!
//! Every service-scoped resource is mounted twice, as Twilio does: under
//! `/v1/Services/{ChatServiceSid}` and under `/v1` for the account's
//! default service ([`crate::app::Scope`] tells them apart). Path
//! parameters use one name per position (`{ConversationSid}` for both a
//! conversation and its sub-resources), which the router requires.
//! Handlers follow one shape: take the parameters ([`crate::params`]),
//! `finish()` (unknown parameters are a 400 before anything is written),
//! execute one command or run one read, render Twilio's JSON.

use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{middleware, Router};

use crate::app::AppState;
use crate::error::{ApiError, CODE_NOT_FOUND};
use crate::params::REQUEST_BODY_BYTES_MAX;

pub mod conversations;
pub mod services;

/// The resources of one service, mounted under both prefixes.
fn service_scoped() -> Router<AppState> {
    Router::new()
        .route(
            "/Conversations",
            post(conversations::create).get(conversations::list),
        )
        .route(
            "/Conversations/{ConversationSid}",
            get(conversations::fetch)
                .post(conversations::update)
                .delete(conversations::delete),
        )
}

/// The whole HTTP application over `state`.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/Services", post(services::create).get(services::list))
        .route(
            "/v1/Services/{ChatServiceSid}",
            get(services::fetch).delete(services::delete),
        )
        .route("/v1/Tokens", post(crate::token::create))
        .nest("/v1/Services/{ChatServiceSid}", service_scoped())
        .nest("/v1", service_scoped())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::basic,
        ))
        .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX));
    Router::new()
        .route("/", get(index))
        // Authenticated by an access token, not Basic: outside the layer.
        .route(crate::ws::WS_PATH, get(crate::ws::upgrade))
        .route(crate::demo::DEMO_PATH, get(crate::demo::page))
        .merge(api)
        .with_state(state)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        CODE_NOT_FOUND,
        format!("The requested resource {} was not found", uri.path()),
    )
}

async fn index(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    format!(
        "Colloquy server\nREST API: {0}/v1 (HTTP Basic: account SID and auth token)\nWebSocket: {0}/v1/Realtime (access token; see docs/REALTIME.md)\nDemo: {0}/demo\n",
        state.base_url
    )
}
