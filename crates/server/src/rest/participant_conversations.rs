//! `GET /v1/ParticipantConversations?Identity=…|Address=…` (and under
//! `/v1/Services/{ChatServiceSid}`): every conversation a chat identity or
//! a messaging address takes part in, one entry per participant.

use axum::extract::State;
use axum::Json;
use events::command::ConversationRef;
use projections::{ConversationRow, ParticipantRow, QueryError};
use serde_json::{json, Value};

use crate::app::{AppState, Scope};
use crate::error::ApiError;
use crate::paging::Paging;
use crate::params::Query;
use crate::render::{enum_str, iso8601};
use crate::rest::conversations;
use crate::rest::participants::messaging_binding;

/// One entry: the conversation, the participant, and the conversation's
/// last activity (µs; it dates the timers).
type Entry = (ConversationRow, ParticipantRow, u64);

/// Twilio's ParticipantConversation resource. `conversation_created_by` is
/// `null`: the engine does not record who created a conversation.
pub fn render(state: &AppState, scope: &Scope, (c, p, last): &Entry) -> Value {
    let conversation = conversations::render(state, scope, c, *last);
    let url = format!("{}/Conversations/{}", scope.prefix, c.sid);
    json!({
        "account_sid": state.account.read().account_sid,
        "chat_service_sid": c.chat_service_sid.to_string(),
        "participant_sid": p.sid.to_string(),
        "participant_user_sid": p.user_sid.map(|u| u.to_string()),
        "participant_identity": p.kind.identity(),
        "participant_messaging_binding": messaging_binding(&p.kind),
        "conversation_sid": c.sid.to_string(),
        "conversation_unique_name": c.unique_name,
        "conversation_friendly_name": c.friendly_name,
        "conversation_attributes": c.attributes,
        "conversation_date_created": iso8601(c.date_created),
        "conversation_date_updated": iso8601(c.date_updated),
        "conversation_created_by": Value::Null,
        "conversation_state": enum_str(&c.state),
        "conversation_timers": conversation["timers"],
        "links": {
            "participant": format!("{url}/Participants/{}", p.sid),
            "conversation": url,
        },
    })
}

/// `GET …/ParticipantConversations`: exactly one of `Identity` (a chat
/// user) or `Address` (a messaging binding's address); paged, by
/// conversation SID then participant SID. Errors (400): neither or both
/// given, bad paging.
pub async fn list(
    State(state): State<AppState>,
    scope: Scope,
    Query(mut p): Query,
) -> Result<Json<Value>, ApiError> {
    let identity = p.opt("Identity")?;
    let address = p.opt("Address")?;
    let paging = Paging::take(&mut p)?;
    p.finish()?;
    let filter = match (identity, address) {
        (Some(i), None) => ("Identity", i),
        (None, Some(a)) => ("Address", a),
        _ => {
            return Err(ApiError::invalid(
                "Identity",
                "give exactly one of Identity or Address",
            ))
        }
    };
    let request = paging.request();
    let service = scope.service;
    let (key, value) = filter.clone();
    let page = state
        .read(move |q| {
            let page = if key == "Identity" {
                q.participant_conversations_by_identity(&service, &value, &request)?
            } else {
                q.participant_conversations_by_address(&service, &value, &request)?
            };
            let items = page
                .items
                .into_iter()
                .map(|(c, p)| {
                    let last = q
                        .get_conversation(&service, &ConversationRef::Sid(c.sid))
                        .map(|conv| conv.last_activity())
                        .unwrap_or(c.date_updated);
                    (c, p, last)
                })
                .collect();
            Ok::<_, QueryError>(projections::Page {
                items,
                next_page_token: page.next_page_token,
            })
        })
        .await??;
    let url = format!("{}/ParticipantConversations", scope.prefix);
    Ok(Json(paging.answer(
        "conversations",
        &url,
        &[(filter.0, filter.1)],
        &page,
        |entry| render(&state, &scope, entry),
    )))
}
