//! `/v1/Conversations/{ConversationSid}/Webhooks` (and under
//! `/v1/Services/{ChatServiceSid}`): conversation-scoped webhooks.
//!
//! A `webhook` target is called for the events of its conversation its
//! `Configuration.Filters` name; a `trigger` is called with
//! `onMessageAdded` when a new message holds one of its
//! `Configuration.Triggers` keywords. The engine's post-event webhook
//! reactor calls both, signed with the service's signing secret, which
//! creating one sets to the account's auth token if it is not already
//! (as Twilio signs every webhook with it). What the engine
//! does not build is refused with a 400 naming it: `Target=studio` (and
//! its `Configuration.FlowSid` / `Configuration.ReplayAfter`). A webhook
//! cannot be changed in place (the engine has no update command): its
//! update answers 405 (Twilio 20004); delete it and create it again.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use events::command::{ConversationRef, CreateConversationWebhook, DeleteConversationWebhook};
use events::{WebhookMethod, WebhookSid, WebhookTarget};
use projections::ConversationWebhookRow;
use serde_json::{json, Value};

use crate::app::{conversation_ref, AppState, Scope};
use crate::error::{ApiError, CODE_METHOD_NOT_ALLOWED};
use crate::paging::Paging;
use crate::params::{Form, Params, Query};
use crate::render::{enum_str, iso8601};
use crate::rest::configuration::sign_service_webhooks;
use crate::rest::conversations::path_param;
use crate::rest::path_sid;

/// Twilio's conversation-scoped Webhook resource. `date_updated` is the
/// creation date: a webhook never changes after it is created.
/// `configuration.flow_sid` is `null` (Studio is not built).
pub fn render(state: &AppState, scope: &Scope, row: &ConversationWebhookRow) -> Value {
    let w = &row.webhook;
    json!({
        "sid": row.sid.to_string(),
        "account_sid": state.account.read().account_sid,
        "chat_service_sid": row.chat_service_sid.to_string(),
        "conversation_sid": row.conversation_sid.to_string(),
        "target": enum_str(&w.target),
        "url": format!(
            "{}/Conversations/{}/Webhooks/{}",
            scope.prefix, row.conversation_sid, row.sid
        ),
        "configuration": {
            "url": w.url,
            "method": method_name(w.method),
            "filters": w.filters.iter().map(|f| f.twilio_name()).collect::<Vec<_>>(),
            "triggers": w.triggers,
            "flow_sid": Value::Null,
        },
        "date_created": iso8601(row.date_created),
        "date_updated": iso8601(row.date_created),
    })
}

/// The conversation-scoped webhook enum's spelling (`get`, `post`).
fn method_name(method: WebhookMethod) -> &'static str {
    match method {
        WebhookMethod::Get => "get",
        WebhookMethod::Post => "post",
    }
}

/// A webhook `Method` parameter named `name`: `GET` or `POST`, in any
/// case (Twilio spells it both ways across its resources). Errors (400):
/// anything else.
pub fn parse_method(name: &str, raw: &str) -> Result<WebhookMethod, ApiError> {
    match raw.to_ascii_uppercase().as_str() {
        "GET" => Ok(WebhookMethod::Get),
        "POST" => Ok(WebhookMethod::Post),
        _ => Err(ApiError::invalid(
            name,
            format!("{raw:?} is not GET or POST"),
        )),
    }
}

/// Refuses the Studio parameters of `p` (400 naming the first given).
fn refuse_studio(p: &mut Params) -> Result<(), ApiError> {
    for name in ["Configuration.FlowSid", "Configuration.ReplayAfter"] {
        if p.opt(name)?.is_some() {
            return Err(ApiError::invalid(
                name,
                "Studio targets are not supported by this server: use a webhook or trigger target",
            ));
        }
    }
    Ok(())
}

fn webhook_sid(path: &[(String, String)]) -> Result<WebhookSid, ApiError> {
    path_sid(path, "Sid")
}

/// The conversation the path names, as a SID (404 if it is not in the
/// scope's service).
async fn conversation_sid(
    state: &AppState,
    scope: &Scope,
    path: &[(String, String)],
) -> Result<events::ConversationSid, ApiError> {
    let named = conversation_ref(&path_param(path, "ConversationSid")?);
    let service = scope.service;
    Ok(state
        .read(move |q| q.get_conversation(&service, &named).map(|c| c.row().sid))
        .await??)
}

async fn load(
    state: &AppState,
    scope: &Scope,
    path: &[(String, String)],
) -> Result<ConversationWebhookRow, ApiError> {
    let named = conversation_ref(&path_param(path, "ConversationSid")?);
    let sid = webhook_sid(path)?;
    let service = scope.service;
    state
        .read(move |q| {
            q.get_conversation(&service, &named)
                .map(|c| c.webhooks().get(&sid).cloned())
        })
        .await??
        .ok_or_else(|| ApiError::not_found(format!("webhook {sid}")))
}

/// `POST …/Conversations/{ConversationSid}/Webhooks`: `Target`
/// (`webhook`|`trigger`; required), `Configuration.Url`,
/// `Configuration.Method`, `Configuration.Filters` (repeated, for a
/// webhook), `Configuration.Triggers` (repeated, for a trigger). 201 with
/// the webhook. Errors (400): `studio` or its parameters, a missing URL,
/// unknown filter names, a webhook without filters or a trigger without
/// keywords.
pub async fn create(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
    Form(mut p): Form,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let target = match p.req("Target")?.as_str() {
        "webhook" => WebhookTarget::Webhook,
        "trigger" => WebhookTarget::Trigger,
        "studio" => {
            return Err(ApiError::invalid(
                "Target",
                "studio is not supported by this server: use webhook or trigger",
            ))
        }
        other => {
            return Err(ApiError::invalid(
                "Target",
                format!("{other:?} is not webhook, trigger or studio"),
            ))
        }
    };
    let url = p.opt("Configuration.Url")?.ok_or_else(|| {
        ApiError::invalid("Configuration.Url", "is required for a webhook or trigger")
    })?;
    let method = p
        .opt("Configuration.Method")?
        .map(|m| parse_method("Configuration.Method", &m))
        .transpose()?
        .unwrap_or_default();
    let filters = p.all("Configuration.Filters");
    let triggers = p.all("Configuration.Triggers");
    refuse_studio(&mut p)?;
    p.finish()?;
    let conversation = conversation_sid(&state, &scope, &path).await?;
    sign_service_webhooks(&state, &headers, "signing-secret", scope.service).await?;
    let command = CreateConversationWebhook::new(scope.service, conversation, target, url)
        .method(method)
        .filters(filters)
        .triggers(triggers);
    let sid = state.execute(&headers, command).await?;
    let service = scope.service;
    let row = state
        .read(move |q| {
            q.get_conversation(&service, &ConversationRef::Sid(conversation))
                .map(|c| c.webhooks().get(&sid).cloned())
        })
        .await??
        .ok_or_else(|| ApiError::internal(format!("webhook {sid} missing after its creation")))?;
    Ok((StatusCode::CREATED, Json(render(&state, &scope, &row))))
}

/// `GET …/Conversations/{ConversationSid}/Webhooks`: paged, ordered by
/// SID.
pub async fn list(
    State(state): State<AppState>,
    scope: Scope,
    Path(path): Path<Vec<(String, String)>>,
    Query(mut p): Query,
) -> Result<Json<Value>, ApiError> {
    let paging = Paging::take(&mut p)?;
    p.finish()?;
    let named = conversation_ref(&path_param(&path, "ConversationSid")?);
    let service = scope.service;
    let (conversation, rows) = state
        .read(move |q| {
            q.get_conversation(&service, &named).map(|c| {
                let rows: Vec<(WebhookSid, ConversationWebhookRow)> =
                    c.webhooks().iter().map(|(k, v)| (*k, v.clone())).collect();
                (c.row().sid, rows)
            })
        })
        .await??;
    let page = paging.page_by_key(rows)?;
    let url = format!("{}/Conversations/{conversation}/Webhooks", scope.prefix);
    Ok(Json(paging.answer("webhooks", &url, &[], &page, |row| {
        render(&state, &scope, row)
    })))
}

/// `GET …/Conversations/{ConversationSid}/Webhooks/{Sid}`.
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

/// `POST …/Conversations/{ConversationSid}/Webhooks/{Sid}`: refused with
/// 405 (Twilio 20004) after the webhook is found (404 otherwise): the
/// engine keeps a webhook as created. Delete it and create it again.
pub async fn update(
    State(state): State<AppState>,
    scope: Scope,
    Path(path): Path<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let row = load(&state, &scope, &path).await?;
    Err(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        CODE_METHOD_NOT_ALLOWED,
        format!(
            "webhook {} cannot be changed in place on this server: delete it and create it again",
            row.sid
        ),
    ))
}

/// `DELETE …/Conversations/{ConversationSid}/Webhooks/{Sid}`: 204.
pub async fn delete(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    let sid = webhook_sid(&path)?;
    let conversation = conversation_sid(&state, &scope, &path).await?;
    state
        .execute(
            &headers,
            DeleteConversationWebhook::new(scope.service, conversation, sid),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
