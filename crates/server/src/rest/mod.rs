//! The REST API: Twilio Conversations v1, path for path.
//!
//! Every service-scoped resource is mounted twice, as Twilio does: under
//! `/v1/Services/{ChatServiceSid}` and under `/v1` for the account's
//! default service ([`crate::app::Scope`] tells them apart). Path
//! parameters use one name per position (`{ConversationSid}` for both a
//! conversation and its sub-resources), which the router requires.
//! The media store's routes ([`crate::media::routes`]) exist only under
//! `/v1/Services/{ChatServiceSid}/Media`, as in Twilio's Media Content
//! Service, with their own body limit.
//! Handlers follow one shape: take the parameters ([`crate::params`]),
//! `finish()` (unknown parameters are a 400 before anything is written),
//! execute one command or run one read, render Twilio's JSON.

use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{middleware, Router};

use crate::app::AppState;
use crate::error::{ApiError, CODE_METHOD_NOT_ALLOWED, CODE_NOT_FOUND};
use crate::params::REQUEST_BODY_BYTES_MAX;

pub mod configuration;
pub mod conversation_with_participants;
pub mod conversations;
pub mod messages;
pub mod participant_conversations;
pub mod participants;
pub mod receipts;
pub mod roles;
pub mod services;
pub mod users;
pub mod webhooks;

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
        .route(
            "/Conversations/{ConversationSid}/Participants",
            post(participants::create).get(participants::list),
        )
        .route(
            "/Conversations/{ConversationSid}/Participants/{ParticipantSid}",
            get(participants::fetch)
                .post(participants::update)
                .delete(participants::delete),
        )
        .route(
            "/Conversations/{ConversationSid}/Messages",
            post(messages::create).get(messages::list),
        )
        .route(
            "/Conversations/{ConversationSid}/Messages/{MessageSid}",
            get(messages::fetch)
                .post(messages::update)
                .delete(messages::delete),
        )
        .route(
            "/Conversations/{ConversationSid}/Messages/{MessageSid}/Receipts",
            get(receipts::list),
        )
        .route(
            "/Conversations/{ConversationSid}/Messages/{MessageSid}/Receipts/{Sid}",
            get(receipts::fetch),
        )
        .route(
            "/ConversationWithParticipants",
            post(conversation_with_participants::create),
        )
        .route(
            "/ParticipantConversations",
            get(participant_conversations::list),
        )
        .route(
            "/Conversations/{ConversationSid}/Webhooks",
            post(webhooks::create).get(webhooks::list),
        )
        .route(
            "/Conversations/{ConversationSid}/Webhooks/{Sid}",
            get(webhooks::fetch)
                .post(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/Users", post(users::create).get(users::list))
        .route(
            "/Users/{UserSid}",
            get(users::fetch).post(users::update).delete(users::delete),
        )
        .route(
            "/Users/{UserSid}/Conversations",
            get(users::list_conversations),
        )
        .route(
            "/Users/{UserSid}/Conversations/{ConversationSid}",
            get(users::fetch_conversation)
                .post(users::update_conversation)
                .delete(users::delete_conversation),
        )
        .route("/Roles", post(roles::create).get(roles::list))
        .route(
            "/Roles/{Sid}",
            get(roles::fetch).post(roles::update).delete(roles::delete),
        )
        .route("/Channels/{Channel}/Inbound", post(crate::inbound::receive))
        .route(
            "/Channels/{Channel}/Status/{ConversationSid}/{MessageSid}/{ParticipantSid}",
            post(crate::inbound::status),
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
        .route(
            "/v1/Services/{ChatServiceSid}/Configuration",
            get(configuration::fetch_service).post(configuration::update_service),
        )
        .route(
            "/v1/Services/{ChatServiceSid}/Configuration/Notifications",
            get(configuration::fetch_notifications).post(configuration::update_notifications),
        )
        .route(
            "/v1/Services/{ChatServiceSid}/Configuration/Webhooks",
            get(configuration::fetch_service_webhooks).post(configuration::update_service_webhooks),
        )
        .route(
            "/v1/Configuration",
            get(configuration::fetch_account).post(configuration::update_account),
        )
        .route(
            "/v1/Configuration/Webhooks",
            get(configuration::fetch_account_webhooks).post(configuration::update_account_webhooks),
        )
        .route(
            "/v1/Configuration/Addresses",
            post(configuration::create_address).get(configuration::list_addresses),
        )
        .route(
            "/v1/Configuration/Addresses/{Sid}",
            get(configuration::fetch_address)
                .post(configuration::update_address)
                .delete(configuration::delete_address),
        )
        .route("/v1/Tokens", post(crate::token::create))
        .nest("/v1/Services/{ChatServiceSid}", service_scoped())
        .nest("/v1", service_scoped())
        .nest("/v1", crate::media::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
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

/// The path parameter `name` parsed as a SID of type `T` (any `FromStr`
/// whose error explains the expected form). Errors: 400 naming the
/// parameter for a malformed one; 500 if the route has no such parameter.
pub fn path_sid<T>(path: &[(String, String)], name: &str) -> Result<T, ApiError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    conversations::path_param(path, name)?
        .parse()
        .map_err(|e| ApiError::invalid(name, e))
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        CODE_NOT_FOUND,
        format!("The requested resource {} was not found", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        CODE_METHOD_NOT_ALLOWED,
        format!("Method {method} is not allowed on {}", uri.path()),
    )
}

async fn index(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    format!(
        "Colloquy server\nREST API: {0}/v1 (HTTP Basic: account SID and auth token)\nWebSocket: {0}/v1/Realtime (access token; see docs/REALTIME.md)\nDemo: {0}/demo\n",
        state.base_url
    )
}
