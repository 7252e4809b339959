//! Twilio-shaped error answers.
//!
//! Every failure a handler returns is an [`ApiError`]: an HTTP status and a
//! body with Twilio's four fields (`code`, `message`, `more_info`, `status`),
//! so Twilio's helper libraries raise their usual exception with the usual
//! code. The mapping from the engine's typed errors to Twilio's codes lives
//! here and nowhere else.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use engine_core::{CommandError, StorageFailure};
use projections::QueryError;

/// Twilio 20001: a parameter is missing, malformed, unknown or over a limit.
pub const CODE_INVALID_PARAMETER: u32 = 20001;
/// Twilio 20003: authentication failed.
pub const CODE_AUTHENTICATE: u32 = 20003;
/// Twilio 20004: the method is not allowed on the resource.
pub const CODE_METHOD_NOT_ALLOWED: u32 = 20004;
/// Twilio 20404: the resource does not exist (or is not visible to you).
pub const CODE_NOT_FOUND: u32 = 20404;
/// Twilio 20409: the request conflicts with the resource's current state.
pub const CODE_CONFLICT: u32 = 20409;
/// Twilio 20429: too many requests.
pub const CODE_TOO_MANY_REQUESTS: u32 = 20429;
/// Twilio 20500: an internal error; retry with the same idempotency token.
pub const CODE_INTERNAL: u32 = 20500;
/// Twilio 20503: the service is unavailable; retry later.
pub const CODE_UNAVAILABLE: u32 = 20503;
/// Twilio 50353: a conversation with this unique name already exists.
pub const CODE_UNIQUE_NAME_CONFLICT: u32 = 50353;
/// Twilio 50416: a participant with this binding is in another conversation.
pub const CODE_BINDING_CONFLICT: u32 = 50416;
/// Twilio 50433: the participant is already in the conversation.
pub const CODE_PARTICIPANT_EXISTS: u32 = 50433;
/// Twilio 50201: a user with this identity already exists.
pub const CODE_USER_EXISTS: u32 = 50201;
/// Twilio 50107: the caller's role does not grant the action.
pub const CODE_PERMISSION_DENIED: u32 = 50107;
/// Twilio 50527: the conversation is closed.
pub const CODE_CONVERSATION_CLOSED: u32 = 50527;
/// Twilio 20101: the access token is invalid.
pub const CODE_ACCESS_TOKEN_INVALID: u32 = 20101;
/// Twilio 20104: the access token has expired (or is not valid yet).
pub const CODE_ACCESS_TOKEN_EXPIRED: u32 = 20104;

/// An error answer: HTTP status, Twilio error code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Twilio's error code (`https://www.twilio.com/docs/errors/{code}`).
    pub code: u32,
    /// What went wrong, for a human.
    pub message: String,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400, code 20001: a bad parameter (`name` is Twilio's parameter name).
    pub fn invalid(name: &str, why: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            CODE_INVALID_PARAMETER,
            format!("Invalid parameter {name}: {why}"),
        )
    }

    /// 404, code 20404. Also the answer for a resource the caller may not
    /// see: a 403 would tell it the SID exists.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            CODE_NOT_FOUND,
            format!("The requested resource {what} was not found"),
        )
    }

    /// 401, code 20003.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            CODE_AUTHENTICATE,
            "Authenticate: send HTTP Basic credentials (account SID and auth token, or API key SID and secret)",
        )
    }

    /// 500, code 20500, logging `why` (which may name internals the
    /// client should not see).
    pub fn internal(why: impl std::fmt::Display) -> Self {
        tracing::error!(%why, "internal error answering a request");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            CODE_INTERNAL,
            "Internal error: retry with the same I-Twilio-Idempotency-Token",
        )
    }

    /// The JSON body Twilio sends.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status.as_u16(),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::NotFound { kind, id } => ApiError::not_found(format!("{kind} {id}")),
            QueryError::PageSize(_) => ApiError::invalid("PageSize", &e),
            QueryError::PageToken { .. } => ApiError::invalid("PageToken", &e),
            QueryError::Storage { .. } => ApiError::internal(e),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        use CommandError as E;
        let (status, code) = match &e {
            E::NotFound { .. } => return ApiError::not_found(e.to_string()),
            E::UniqueNameConflict { .. } => (StatusCode::CONFLICT, CODE_UNIQUE_NAME_CONFLICT),
            E::BindingConflict { .. } => (StatusCode::CONFLICT, CODE_BINDING_CONFLICT),
            E::ParticipantExists { .. } => (StatusCode::CONFLICT, CODE_PARTICIPANT_EXISTS),
            E::UserExists { .. } => (StatusCode::CONFLICT, CODE_USER_EXISTS),
            E::AddressConfigurationExists { .. } | E::RoleInUse { .. } => {
                (StatusCode::CONFLICT, CODE_CONFLICT)
            }
            E::ParticipantLimit { .. }
            | E::TooLong { .. }
            | E::Invalid { .. }
            | E::TimerTooShort { .. }
            | E::UnknownWebhookFilter { .. }
            | E::AttributesNotJson { .. }
            | E::NoRoute { .. } => (StatusCode::BAD_REQUEST, CODE_INVALID_PARAMETER),
            E::ConversationClosed { .. } => (StatusCode::BAD_REQUEST, CODE_CONVERSATION_CLOSED),
            E::PermissionDenied { .. } => (StatusCode::FORBIDDEN, CODE_PERMISSION_DENIED),
            E::VersionConflict { .. } | E::IdempotencyKeyReused { .. } => {
                (StatusCode::CONFLICT, CODE_CONFLICT)
            }
            E::PreEventHook(_) => (StatusCode::UNPROCESSABLE_ENTITY, CODE_INVALID_PARAMETER),
            E::Storage(StorageFailure::Full { .. })
            | E::Storage(StorageFailure::Stalled { .. }) => {
                (StatusCode::SERVICE_UNAVAILABLE, CODE_UNAVAILABLE)
            }
            E::Storage(_) | E::ReadViewHeld => return ApiError::internal(e),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<crate::media::MediaError> for ApiError {
    fn from(e: crate::media::MediaError) -> Self {
        use crate::media::MediaError as E;
        match &e {
            E::NotFound(sid) => ApiError::not_found(format!("media {sid}")),
            E::TooLarge { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                CODE_INVALID_PARAMETER,
                e.to_string(),
            ),
            E::Empty => ApiError::invalid("Content", &e),
            E::ContentType(_) => ApiError::invalid("Content-Type", &e),
            E::Filename(_) => ApiError::invalid("Filename", &e),
            E::Io { .. } | E::Damaged { .. } | E::Corrupt(_) | E::Random(_) => {
                ApiError::internal(e)
            }
        }
    }
}
