//! `POST /v1/ConversationWithParticipants` (and under
//! `/v1/Services/{ChatServiceSid}`): a conversation and up to
//! [`CONVERSATION_WITH_PARTICIPANTS_MAX`] participants in one command, so
//! either all exist or none.
//!
//! Each `Participant` is a JSON object string, as Twilio takes it:
//! `{"identity": "alice"}` or `{"messaging_binding": {"address": "+1…",
//! "proxy_address": "+1…"}}`, optionally with `attributes`, `role_sid` and
//! `messaging_binding.projected_address`. Not supported, each answered 400
//! naming the parameter: `DateCreated`/`DateUpdated` (the engine stamps
//! every record) and `Bindings.Email.*` (no email channel).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use events::command::{ConversationRef, CreateConversationWithParticipants};
use events::limits::CONVERSATION_WITH_PARTICIPANTS_MAX;
use serde::Deserialize;
use serde_json::Value;

use crate::app::{AppState, Scope};
use crate::error::ApiError;
use crate::params::Form;
use crate::rest::conversations;
use crate::rest::participants::{NewParticipant, NO_BACKDATING};

/// A `Participant` parameter's JSON object.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParticipantJson {
    identity: Option<String>,
    messaging_binding: Option<BindingJson>,
    attributes: Option<String>,
    role_sid: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingJson {
    address: Option<String>,
    proxy_address: Option<String>,
    projected_address: Option<String>,
}

fn parse_participant(i: usize, raw: &str) -> Result<events::ParticipantSpec, ApiError> {
    let name = format!("Participant[{i}]");
    let p: ParticipantJson = serde_json::from_str(raw).map_err(|e| ApiError::invalid(&name, e))?;
    let binding = p.messaging_binding.unwrap_or_default();
    NewParticipant {
        identity: p.identity,
        address: binding.address,
        proxy_address: binding.proxy_address,
        projected_address: binding.projected_address,
        attributes: p.attributes,
        role_sid: p.role_sid,
    }
    .spec(&format!("{name}."))
}

/// `POST …/ConversationWithParticipants`: the Conversation create
/// parameters plus `Participant` (repeated). 201 with the conversation.
/// Errors: 400 for bad or unsupported parameters, a malformed
/// `Participant` object or more than
/// [`CONVERSATION_WITH_PARTICIPANTS_MAX`] of them; 409 for a unique-name
/// or binding conflict. Nothing is written on any error.
pub async fn create(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Form(mut p): Form,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    p.refuse(&["DateCreated", "DateUpdated"], NO_BACKDATING)?;
    p.refuse(
        &["Bindings.Email.Address", "Bindings.Email.Name"],
        "not supported: this server has no email channel",
    )?;
    let spec = conversations::take_spec(&mut p, &state)?;
    let raw = p.all("Participant");
    p.finish()?;
    if raw.len() > CONVERSATION_WITH_PARTICIPANTS_MAX {
        return Err(ApiError::invalid(
            "Participant",
            format!(
                "{} given, at most {CONVERSATION_WITH_PARTICIPANTS_MAX}",
                raw.len()
            ),
        ));
    }
    let mut command = CreateConversationWithParticipants::new(scope.service, spec);
    for (i, r) in raw.iter().enumerate() {
        command = command.participant(parse_participant(i, r)?);
    }
    let created = state.execute(&headers, command).await?;
    let (row, last) = conversations::load(
        &state,
        &scope,
        ConversationRef::Sid(created.conversation_sid),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(conversations::render(&state, &scope, &row, last)),
    ))
}
