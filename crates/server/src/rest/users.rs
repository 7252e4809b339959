//! `/v1/Users` and `/v1/Users/{UserSid}/Conversations` (and under
//! `/v1/Services/{ChatServiceSid}`): the service's chat users, and each
//! user's view of the conversations it participates in.
//!
//! A user is addressed by its `US…` SID or by its identity, as Twilio
//! allows. A User Conversation exists exactly while the user has a chat
//! participant in the conversation: anything else answers 404, so a user
//! SID never reveals conversations it is not in. Its update sets the
//! user's notification level (`UpdateUserConversation`) and read horizon
//! (`UpdateParticipant` on the user's participant); its delete removes
//! that participant (leaving the conversation).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use events::command::{
    ConversationRef, CreateUser, DeleteUser, RemoveParticipant, UpdateParticipant, UpdateUser,
    UpdateUserConversation,
};
use events::{NotificationLevel, RoleSid, UserSid};
use projections::{ConversationRow, UserConversation, UserRow};
use serde_json::{json, Value};

use crate::app::{conversation_ref, AppState, Scope};
use crate::error::ApiError;
use crate::paging::Paging;
use crate::params::{Form, Params, Query};
use crate::render::{enum_str, iso8601, parse_enum, parse_iso8601};
use crate::rest::conversations::{self, path_param};

/// Twilio's User resource. `is_online` and `is_notifiable` are `null`:
/// the server has no reachability indicator and no push notifications.
pub fn render(state: &AppState, scope: &Scope, row: &UserRow) -> Value {
    let url = format!("{}/Users/{}", scope.prefix, row.sid);
    json!({
        "sid": row.sid.to_string(),
        "account_sid": state.account.read().account_sid,
        "chat_service_sid": row.chat_service_sid.to_string(),
        "role_sid": row.role_sid.map(|r| r.to_string()),
        "identity": row.identity,
        "friendly_name": row.friendly_name,
        "attributes": row.attributes,
        "is_online": Value::Null,
        "is_notifiable": Value::Null,
        "date_created": iso8601(row.date_created),
        "date_updated": iso8601(row.date_updated),
        "url": url,
        "links": { "user_conversations": format!("{url}/Conversations") },
    })
}

/// A `{UserSid}` path segment: a `US…` SID, or else an identity.
enum UserRef {
    Sid(UserSid),
    Identity(String),
}

fn user_ref(raw: &str) -> UserRef {
    match raw.parse() {
        Ok(sid) => UserRef::Sid(sid),
        Err(_) => UserRef::Identity(raw.to_owned()),
    }
}

/// The user the path names, or 404.
async fn load(
    state: &AppState,
    scope: &Scope,
    path: &[(String, String)],
) -> Result<UserRow, ApiError> {
    let user = user_ref(&path_param(path, "UserSid")?);
    let service = scope.service;
    Ok(state
        .read(move |q| {
            match &user {
                UserRef::Sid(sid) => q.user(&service, sid),
                UserRef::Identity(identity) => q.user_by_identity(&service, identity),
            }
            .cloned()
        })
        .await??)
}

/// `POST …/Users`: `Identity` (required), `FriendlyName`, `Attributes`,
/// `RoleSid`. 201 with the user. Errors: 409 (50201) for an identity
/// already taken, 400 for bad fields.
pub async fn create(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Form(mut p): Form,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let identity = p.req("Identity")?;
    let friendly_name = p.opt("FriendlyName")?;
    let attributes = p.opt("Attributes")?;
    let role_sid = p.opt_parse::<RoleSid>("RoleSid")?;
    p.finish()?;
    let command = CreateUser {
        service: scope.service,
        identity,
        friendly_name,
        attributes,
        role_sid,
    };
    let sid = state.execute(&headers, command).await?;
    let service = scope.service;
    let row = state
        .read(move |q| q.user(&service, &sid).cloned())
        .await??;
    Ok((StatusCode::CREATED, Json(render(&state, &scope, &row))))
}

/// `GET …/Users`: paged, ordered by SID.
pub async fn list(
    State(state): State<AppState>,
    scope: Scope,
    Query(mut p): Query,
) -> Result<Json<Value>, ApiError> {
    let paging = Paging::take(&mut p)?;
    p.finish()?;
    let request = paging.request();
    let service = scope.service;
    let page = state
        .read(move |q| q.list_users(&service, &request))
        .await??;
    let url = format!("{}/Users", scope.prefix);
    Ok(Json(paging.answer("users", &url, &[], &page, |row| {
        render(&state, &scope, row)
    })))
}

/// `GET …/Users/{UserSid}` (a SID or an identity).
pub async fn fetch(
    State(state): State<AppState>,
    scope: Scope,
    Path(path): Path<Vec<(String, String)>>,
    Query(p): Query,
) -> Result<Json<Value>, ApiError> {
    p.finish()?;
    let row = load(&state, &scope, &path).await?;
    Ok(Json(render(&state, &scope, &row)))
}

/// `POST …/Users/{UserSid}`: `FriendlyName`, `Attributes`, `RoleSid`;
/// absent ones are left unchanged. 200 with the user.
pub async fn update(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
    Form(mut p): Form,
) -> Result<Json<Value>, ApiError> {
    let friendly_name = p.opt("FriendlyName")?;
    let attributes = p.opt("Attributes")?;
    let role_sid = p.opt_parse::<RoleSid>("RoleSid")?;
    p.finish()?;
    let sid = load(&state, &scope, &path).await?.sid;
    let command = UpdateUser {
        service: scope.service,
        user: sid,
        friendly_name,
        attributes,
        role_sid,
    };
    state.execute(&headers, command).await?;
    let service = scope.service;
    let row = state
        .read(move |q| q.user(&service, &sid).cloned())
        .await??;
    Ok(Json(render(&state, &scope, &row)))
}

/// `DELETE …/Users/{UserSid}`: 204. The user's participants stay, as in
/// Twilio.
pub async fn delete(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    let sid = load(&state, &scope, &path).await?.sid;
    state
        .execute(&headers, DeleteUser::new(scope.service, sid))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Twilio's User Conversation resource: `uc` with its conversation's row
/// (dates, timers) and `last_activity` (µs). `created_by` is `null`: the
/// engine does not record who created a conversation.
fn render_user_conversation(
    state: &AppState,
    scope: &Scope,
    user: &UserRow,
    uc: &UserConversation,
    conversation: &ConversationRow,
    last_activity: u64,
) -> Value {
    let conversation_url = format!("{}/Conversations/{}", scope.prefix, uc.conversation_sid);
    let timers = conversations::render(state, scope, conversation, last_activity)["timers"].take();
    json!({
        "account_sid": state.account.read().account_sid,
        "chat_service_sid": user.chat_service_sid.to_string(),
        "conversation_sid": uc.conversation_sid.to_string(),
        "unread_messages_count": uc.unread_messages_count,
        "last_read_message_index": uc.last_read_message_index,
        "participant_sid": uc.participant_sid.to_string(),
        "user_sid": user.sid.to_string(),
        "friendly_name": uc.friendly_name,
        "conversation_state": enum_str(&uc.conversation_state),
        "timers": timers,
        "attributes": uc.attributes,
        "date_created": iso8601(conversation.date_created),
        "date_updated": iso8601(conversation.date_updated),
        "created_by": Value::Null,
        "notification_level": enum_str(&uc.notification_level),
        "unique_name": uc.unique_name,
        "url": format!("{}/Users/{}/Conversations/{}", scope.prefix, user.sid, uc.conversation_sid),
        "links": {
            "participant": format!("{conversation_url}/Participants/{}", uc.participant_sid),
            "conversation": conversation_url,
        },
    })
}

/// A user conversation with what renders it: the conversation's row and
/// last activity.
type Entry = (UserConversation, ConversationRow, u64);

/// `user`'s view of `conversation`, or 404 when it is not a participant.
async fn load_user_conversation(
    state: &AppState,
    scope: &Scope,
    user: &UserRow,
    conversation: ConversationRef,
) -> Result<Entry, ApiError> {
    let (service, identity) = (scope.service, user.identity.clone());
    Ok(state
        .read(move |q| {
            let uc = q.user_conversation(&service, &identity, &conversation)?;
            let conv = q.get_conversation(&service, &ConversationRef::Sid(uc.conversation_sid))?;
            Ok::<_, projections::QueryError>((uc, conv.row().clone(), conv.last_activity()))
        })
        .await??)
}

/// `GET …/Users/{UserSid}/Conversations`: the conversations the user is
/// a participant in, newest activity first, paged.
pub async fn list_conversations(
    State(state): State<AppState>,
    scope: Scope,
    Path(path): Path<Vec<(String, String)>>,
    Query(mut p): Query,
) -> Result<Json<Value>, ApiError> {
    let paging = Paging::take(&mut p)?;
    p.finish()?;
    let user = load(&state, &scope, &path).await?;
    let request = paging.request();
    let (service, identity) = (scope.service, user.identity.clone());
    let page = state
        .read(move |q| {
            let page = q.user_conversations(&service, &identity, &request)?;
            let items = page
                .items
                .into_iter()
                .map(|uc| {
                    let conv =
                        q.get_conversation(&service, &ConversationRef::Sid(uc.conversation_sid))?;
                    Ok((uc, conv.row().clone(), conv.last_activity()))
                })
                .collect::<Result<Vec<Entry>, projections::QueryError>>()?;
            Ok::<_, projections::QueryError>(projections::Page {
                items,
                next_page_token: page.next_page_token,
            })
        })
        .await??;
    let url = format!("{}/Users/{}/Conversations", scope.prefix, user.sid);
    Ok(Json(paging.answer(
        "conversations",
        &url,
        &[],
        &page,
        |(uc, conv, last)| render_user_conversation(&state, &scope, &user, uc, conv, *last),
    )))
}

/// `GET …/Users/{UserSid}/Conversations/{ConversationSid}` (a SID or a
/// unique name). 404 unless the user is a participant.
pub async fn fetch_conversation(
    State(state): State<AppState>,
    scope: Scope,
    Path(path): Path<Vec<(String, String)>>,
    Query(p): Query,
) -> Result<Json<Value>, ApiError> {
    p.finish()?;
    let user = load(&state, &scope, &path).await?;
    let conversation = conversation_ref(&path_param(&path, "ConversationSid")?);
    let (uc, conv, last) = load_user_conversation(&state, &scope, &user, conversation).await?;
    Ok(Json(render_user_conversation(
        &state, &scope, &user, &uc, &conv, last,
    )))
}

/// The fields of a User Conversation update.
struct ConversationFields {
    notification_level: Option<NotificationLevel>,
    last_read_timestamp: Option<u64>,
    last_read_message_index: Option<u64>,
}

fn take_conversation_fields(p: &mut Params) -> Result<ConversationFields, ApiError> {
    let notification_level = p
        .opt("NotificationLevel")?
        .map(|s| parse_enum("NotificationLevel", &s))
        .transpose()?;
    let last_read_timestamp = p
        .opt("LastReadTimestamp")?
        .map(|s| parse_iso8601("LastReadTimestamp", &s))
        .transpose()?;
    let last_read_message_index = p.opt_parse::<u64>("LastReadMessageIndex")?;
    Ok(ConversationFields {
        notification_level,
        last_read_timestamp,
        last_read_message_index,
    })
}

/// `POST …/Users/{UserSid}/Conversations/{ConversationSid}`:
/// `NotificationLevel` (`default`|`muted`), `LastReadTimestamp` (ISO
/// 8601), `LastReadMessageIndex` (set, clamped to the last message).
/// 200 with the user conversation; 404 unless the user is a participant.
///
/// The read horizon and the notification level are two engine commands
/// (the participant's, then the user's), each keyed by the request's
/// idempotency token and its step, so a retry after a failure between
/// them completes the request without applying either twice.
pub async fn update_conversation(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
    Form(mut p): Form,
) -> Result<Json<Value>, ApiError> {
    let f = take_conversation_fields(&mut p)?;
    p.finish()?;
    let user = load(&state, &scope, &path).await?;
    let named = conversation_ref(&path_param(&path, "ConversationSid")?);
    let (uc, _, _) = load_user_conversation(&state, &scope, &user, named).await?;
    let conversation = ConversationRef::Sid(uc.conversation_sid);
    if f.last_read_message_index.is_some() || f.last_read_timestamp.is_some() {
        let mut command =
            UpdateParticipant::new(scope.service, conversation.clone(), uc.participant_sid);
        command.last_read_message_index = f.last_read_message_index;
        command.last_read_timestamp = f.last_read_timestamp;
        state
            .execute_step(&headers, "read-horizon", command)
            .await?;
    }
    if let Some(level) = f.notification_level {
        let command =
            UpdateUserConversation::new(scope.service, user.sid, conversation.clone(), level);
        state
            .execute_step(&headers, "notification-level", command)
            .await?;
    }
    let (uc, conv, last) = load_user_conversation(&state, &scope, &user, conversation).await?;
    Ok(Json(render_user_conversation(
        &state, &scope, &user, &uc, &conv, last,
    )))
}

/// `DELETE …/Users/{UserSid}/Conversations/{ConversationSid}`: the user
/// leaves the conversation (its participant is removed). 204; 404 unless
/// the user is a participant.
pub async fn delete_conversation(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    let user = load(&state, &scope, &path).await?;
    let named = conversation_ref(&path_param(&path, "ConversationSid")?);
    let (uc, _, _) = load_user_conversation(&state, &scope, &user, named).await?;
    let command = RemoveParticipant::new(scope.service, uc.conversation_sid, uc.participant_sid);
    state.execute(&headers, command).await?;
    Ok(StatusCode::NO_CONTENT)
}
