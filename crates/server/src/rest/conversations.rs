//! `/v1/Conversations` (and under `/v1/Services/{ChatServiceSid}`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use events::command::{
    ConversationRef, ConversationSpec, CreateConversation, DeleteConversation, UpdateConversation,
};
use events::{timers_from_iso8601, ConversationState, Timers};
use projections::ConversationRow;
use serde_json::{json, Value};

use crate::app::{conversation_ref, AppState, Scope};
use crate::error::ApiError;
use crate::paging::Paging;
use crate::params::{Form, Params, Query};
use crate::render::{enum_str, iso8601, parse_enum};

/// Twilio's Conversation resource. `last_activity` (µs) dates the timers.
pub fn render(state: &AppState, scope: &Scope, row: &ConversationRow, last_activity: u64) -> Value {
    let url = format!("{}/Conversations/{}", scope.prefix, row.sid);
    let due = |after: Option<u64>| {
        after
            .filter(|_| row.state != ConversationState::Closed)
            .map(|d| iso8601(last_activity.saturating_add(d)))
    };
    json!({
        "account_sid": state.account.read().account_sid,
        "chat_service_sid": row.chat_service_sid.to_string(),
        "messaging_service_sid": row.messaging_service_sid,
        "sid": row.sid.to_string(),
        "friendly_name": row.friendly_name,
        "unique_name": row.unique_name,
        "attributes": row.attributes,
        "state": enum_str(&row.state),
        "date_created": iso8601(row.date_created),
        "date_updated": iso8601(row.date_updated),
        "timers": {
            "date_inactive": if row.state == ConversationState::Active {
                due(row.timers.inactive_micros)
            } else {
                None
            },
            "date_closed": due(row.timers.closed_micros),
        },
        "bindings": Value::Null,
        "url": url,
        "links": {
            "participants": format!("{url}/Participants"),
            "messages": format!("{url}/Messages"),
            "webhooks": format!("{url}/Webhooks"),
        },
    })
}

/// The row and last activity of a conversation, or 404.
pub async fn load(
    state: &AppState,
    scope: &Scope,
    conversation: ConversationRef,
) -> Result<(ConversationRow, u64), ApiError> {
    let service = scope.service;
    Ok(state
        .read(move |q| {
            q.get_conversation(&service, &conversation)
                .map(|c| (c.row().clone(), c.last_activity()))
        })
        .await??)
}

/// The fields create and update share.
struct Fields {
    friendly_name: Option<String>,
    unique_name: Option<String>,
    attributes: Option<String>,
    state: Option<ConversationState>,
    messaging_service_sid: Option<String>,
    timers: Option<Timers>,
}

fn take_fields(p: &mut Params) -> Result<Fields, ApiError> {
    let state = p
        .opt("State")?
        .map(|s| parse_enum("State", &s))
        .transpose()?;
    let inactive = p.opt("Timers.Inactive")?;
    let closed = p.opt("Timers.Closed")?;
    let timers = if inactive.is_some() || closed.is_some() {
        Some(
            timers_from_iso8601(inactive.as_deref(), closed.as_deref())
                .map_err(|e| ApiError::invalid("Timers", e))?,
        )
    } else {
        None
    };
    Ok(Fields {
        friendly_name: p.opt("FriendlyName")?,
        unique_name: p.opt("UniqueName")?,
        attributes: p.opt("Attributes")?,
        state,
        messaging_service_sid: p.opt("MessagingServiceSid")?,
        timers,
    })
}

/// The create fields as a new conversation's spec (Conversations and
/// ConversationWithParticipants take the same ones), with the account's
/// default timers for the timers the request leaves out. Errors (400): a
/// bad `State` or timer.
pub(crate) fn take_spec(p: &mut Params, state: &AppState) -> Result<ConversationSpec, ApiError> {
    let f = take_fields(p)?;
    // A timer the request does not set takes the account's default
    // (Twilio's `DefaultInactiveTimer` / `DefaultClosedTimer`), which
    // `POST /v1/Configuration` validated when it stored it.
    let defaults = {
        let account = state.account.read();
        timers_from_iso8601(
            account.default_inactive_timer.as_deref(),
            account.default_closed_timer.as_deref(),
        )
        .map_err(|e| ApiError::internal(format!("a stored default timer is invalid: {e}")))?
    };
    let mut timers = f.timers.unwrap_or_default();
    timers.inactive_micros = timers.inactive_micros.or(defaults.inactive_micros);
    timers.closed_micros = timers.closed_micros.or(defaults.closed_micros);
    Ok(ConversationSpec {
        friendly_name: f.friendly_name,
        unique_name: f.unique_name,
        attributes: f.attributes,
        state: f.state,
        timers,
        messaging_service_sid: f.messaging_service_sid,
    })
}

/// `POST …/Conversations`: `FriendlyName`, `UniqueName`, `Attributes`,
/// `State`, `MessagingServiceSid`, `Timers.Inactive`, `Timers.Closed`.
/// 201 with the conversation.
pub async fn create(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Form(mut p): Form,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let spec = take_spec(&mut p, &state)?;
    p.finish()?;
    let sid = state
        .execute(&headers, CreateConversation::with_spec(scope.service, spec))
        .await?;
    let (row, last) = load(&state, &scope, ConversationRef::Sid(sid)).await?;
    Ok((
        StatusCode::CREATED,
        Json(render(&state, &scope, &row, last)),
    ))
}

/// `GET …/Conversations`: paged, oldest first; `State` filters.
pub async fn list(
    State(state): State<AppState>,
    scope: Scope,
    Query(mut p): Query,
) -> Result<Json<Value>, ApiError> {
    let filter_raw = p.opt("State")?;
    let filter: Option<ConversationState> = filter_raw
        .as_deref()
        .map(|s| parse_enum("State", s))
        .transpose()?;
    let paging = Paging::take(&mut p)?;
    p.finish()?;
    let request = paging.request();
    let service = scope.service;
    let page = state
        .read(move |q| {
            let page = q.list_conversations(&service, filter, &request)?;
            let items = page
                .items
                .into_iter()
                .map(|row| {
                    let last = q
                        .get_conversation(&service, &ConversationRef::Sid(row.sid))
                        .map(|c| c.last_activity())
                        .unwrap_or(row.date_updated);
                    (row, last)
                })
                .collect();
            Ok::<_, projections::QueryError>(projections::Page {
                items,
                next_page_token: page.next_page_token,
            })
        })
        .await??;
    let filters: Vec<(&str, String)> = filter_raw.into_iter().map(|s| ("State", s)).collect();
    let url = format!("{}/Conversations", scope.prefix);
    Ok(Json(paging.answer(
        "conversations",
        &url,
        &filters,
        &page,
        |(row, last)| render(&state, &scope, row, *last),
    )))
}

/// `GET …/Conversations/{ConversationSid}` (a SID or unique name).
pub async fn fetch(
    State(state): State<AppState>,
    scope: Scope,
    Path(path): Path<Vec<(String, String)>>,
    Query(p): Query,
) -> Result<Json<Value>, ApiError> {
    p.finish()?;
    let conversation = conversation_ref(&path_param(&path, "ConversationSid")?);
    let (row, last) = load(&state, &scope, conversation).await?;
    Ok(Json(render(&state, &scope, &row, last)))
}

/// `POST …/Conversations/{ConversationSid}`: the create fields; absent
/// ones are left unchanged. 200 with the conversation.
pub async fn update(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
    Form(mut p): Form,
) -> Result<Json<Value>, ApiError> {
    let f = take_fields(&mut p)?;
    p.finish()?;
    if f.messaging_service_sid.is_some() {
        return Err(ApiError::invalid(
            "MessagingServiceSid",
            "is set when the conversation is created and cannot change",
        ));
    }
    // Address it by SID: the update may change the unique name that
    // addressed it.
    let named = conversation_ref(&path_param(&path, "ConversationSid")?);
    let sid = load(&state, &scope, named).await?.0.sid;
    let mut command = UpdateConversation::new(scope.service, ConversationRef::Sid(sid));
    command.friendly_name = f.friendly_name;
    command.unique_name = f.unique_name;
    command.attributes = f.attributes;
    command.state = f.state;
    command.timers = f.timers;
    state.execute(&headers, command).await?;
    let (row, last) = load(&state, &scope, ConversationRef::Sid(sid)).await?;
    Ok(Json(render(&state, &scope, &row, last)))
}

/// `DELETE …/Conversations/{ConversationSid}`: 204.
pub async fn delete(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    let conversation = conversation_ref(&path_param(&path, "ConversationSid")?);
    state
        .execute(
            &headers,
            DeleteConversation::new(scope.service, conversation),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The path parameter `name`; nested routers hand every segment's
/// parameters to the handler, so they are looked up by name.
pub fn path_param(path: &[(String, String)], name: &str) -> Result<String, ApiError> {
    path.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| ApiError::internal(format!("route without the {name} parameter")))
}
