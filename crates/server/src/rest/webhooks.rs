//! `/v1/Conversations/{ConversationSid}/Webhooks` (and under
//! `/v1/Services/{ChatServiceSid}`): conversation-scoped webhooks.
//!
//! A `webhook` target is called for the events of its conversation its
//! `Configuration.Filters` name; a `trigger` is called with
//! `onMessageAdded` when a new message holds one of its
//! `Configuration.Triggers` keywords. The engine's post-event webhook
//! reactor calls both, signed with the account's auth token as Twilio
//! signs them (the server hands the token to the reactor at start; it is
//! never written to the log). A `studio` target hands the conversation to
//! the Studio flow `Configuration.FlowSid`, a reactor the host registers
//! with `Engine::start_studio_flow`; `Configuration.ReplayAfter` also hands
//! it the messages already there with a higher index. An update
//! (`events::UpdateConversationWebhook`) replaces the parts of the
//! configuration it names and keeps its target; the reactors read the new
//! configuration for the records after it.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use events::command::{
    ConversationRef, CreateConversationStudioWebhook, CreateConversationWebhook,
    DeleteConversationWebhook, UpdateConversationWebhook,
};
use events::{FlowSid, WebhookMethod, WebhookSid, WebhookTarget};
use projections::ConversationWebhookRow;
use serde_json::{json, Value};

use crate::app::{conversation_ref, AppState, Scope};
use crate::error::ApiError;
use crate::paging::Paging;
use crate::params::{Form, Query};
use crate::render::iso8601;
use crate::rest::conversations::path_param;
use crate::rest::path_sid;

/// Twilio's conversation-scoped Webhook resource. A Studio
/// webhook answers its `flow_sid` and `replay_after` and no URL, method,
/// filters or triggers; a URL webhook the reverse.
pub fn render(state: &AppState, scope: &Scope, row: &ConversationWebhookRow) -> Value {
    let configuration = match (row.webhook.url(), row.webhook.studio()) {
        (Some(w), _) => json!({
            "url": w.url,
            "method": method_name(w.method),
            "filters": w.filters.iter().map(|f| f.twilio_name()).collect::<Vec<_>>(),
            "triggers": w.triggers,
            "flow_sid": Value::Null,
            "replay_after": Value::Null,
        }),
        (None, studio) => json!({
            "url": Value::Null,
            "method": Value::Null,
            "filters": Value::Null,
            "triggers": Value::Null,
            "flow_sid": studio.map(|s| s.flow_sid.to_string()),
            "replay_after": studio.and_then(|s| s.replay_after),
        }),
    };
    json!({
        "sid": row.sid.to_string(),
        "account_sid": state.account.read().account_sid,
        "chat_service_sid": row.chat_service_sid.to_string(),
        "conversation_sid": row.conversation_sid.to_string(),
        "target": row.webhook.target_name(),
        "url": format!(
            "{}/Conversations/{}/Webhooks/{}",
            scope.prefix, row.conversation_sid, row.sid
        ),
        "configuration": configuration,
        "date_created": iso8601(row.date_created),
        "date_updated": iso8601(row.date_updated),
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
/// (`webhook`|`trigger`|`studio`; required); for a webhook or trigger
/// `Configuration.Url`, `Configuration.Method`, `Configuration.Filters`
/// (repeated, for a webhook), `Configuration.Triggers` (repeated, for a
/// trigger); for studio `Configuration.FlowSid` and
/// `Configuration.ReplayAfter`. 201 with the webhook. Errors (400): a
/// parameter of another target, a missing URL or flow, unknown filter
/// names, a webhook without filters or a trigger without keywords.
pub async fn create(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
    Form(mut p): Form,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let target = p.req("Target")?;
    let studio = target == "studio";
    let url_target = match target.as_str() {
        "webhook" => Some(WebhookTarget::Webhook),
        "trigger" => Some(WebhookTarget::Trigger),
        "studio" => None,
        other => {
            return Err(ApiError::invalid(
                "Target",
                format!("{other:?} is not webhook, trigger or studio"),
            ))
        }
    };
    let url = p.opt("Configuration.Url")?;
    let method = p
        .opt("Configuration.Method")?
        .map(|m| parse_method("Configuration.Method", &m))
        .transpose()?;
    let filters = p.all("Configuration.Filters");
    let triggers = p.all("Configuration.Triggers");
    let flow: Option<FlowSid> = p.opt_parse("Configuration.FlowSid")?;
    let replay_after: Option<u64> = p.opt_parse("Configuration.ReplayAfter")?;
    p.finish()?;
    // Each target takes only its own parameters.
    let foreign: &[(&str, bool)] = if studio {
        &[
            ("Configuration.Url", url.is_some()),
            ("Configuration.Method", method.is_some()),
            ("Configuration.Filters", !filters.is_empty()),
            ("Configuration.Triggers", !triggers.is_empty()),
        ]
    } else {
        &[
            ("Configuration.FlowSid", flow.is_some()),
            ("Configuration.ReplayAfter", replay_after.is_some()),
        ]
    };
    if let Some((name, _)) = foreign.iter().find(|(_, given)| *given) {
        return Err(ApiError::invalid(
            name,
            format!("is not a parameter of Target={target}"),
        ));
    }
    let conversation = conversation_sid(&state, &scope, &path).await?;
    let sid = match url_target {
        Some(target) => {
            let url = url.ok_or_else(|| {
                ApiError::invalid("Configuration.Url", "is required for a webhook or trigger")
            })?;
            let command = CreateConversationWebhook::new(scope.service, conversation, target, url)
                .method(method.unwrap_or_default())
                .filters(filters)
                .triggers(triggers);
            state.execute(&headers, command).await?
        }
        None => {
            let flow = flow.ok_or_else(|| {
                ApiError::invalid("Configuration.FlowSid", "is required for Target=studio")
            })?;
            let mut command =
                CreateConversationStudioWebhook::new(scope.service, conversation, flow);
            if let Some(index) = replay_after {
                command = command.replay_after(index);
            }
            state.execute(&headers, command).await?
        }
    };
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

/// `POST …/Conversations/{ConversationSid}/Webhooks/{Sid}`:
/// `Configuration.Url`, `Configuration.Method`, `Configuration.Filters`
/// (repeated), `Configuration.Triggers` (repeated) for a webhook or
/// trigger, `Configuration.FlowSid` for a studio webhook; each given
/// replaces that part of the configuration, the others stay (the target
/// never changes). 200 with the webhook. Errors: 404 for an unknown
/// conversation or webhook; 400 for a parameter of another target, a bad
/// URL, method or flow SID, unknown filter names, and the checks of
/// [`create`] on the resulting configuration.
pub async fn update(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
    Form(mut p): Form,
) -> Result<Json<Value>, ApiError> {
    let url = p.opt("Configuration.Url")?;
    let method = p
        .opt("Configuration.Method")?
        .map(|m| parse_method("Configuration.Method", &m))
        .transpose()?;
    let filters = p.all("Configuration.Filters");
    let triggers = p.all("Configuration.Triggers");
    let flow: Option<FlowSid> = p.opt_parse("Configuration.FlowSid")?;
    p.finish()?;
    let row = load(&state, &scope, &path).await?;
    // Each target takes only its own parameters (the engine checks it
    // again when it decides the update).
    let studio = row.webhook.studio().is_some();
    let foreign: &[(&str, bool)] = if studio {
        &[
            ("Configuration.Url", url.is_some()),
            ("Configuration.Method", method.is_some()),
            ("Configuration.Filters", !filters.is_empty()),
            ("Configuration.Triggers", !triggers.is_empty()),
        ]
    } else {
        &[("Configuration.FlowSid", flow.is_some())]
    };
    if let Some((name, _)) = foreign.iter().find(|(_, given)| *given) {
        return Err(ApiError::invalid(
            name,
            format!("is not a parameter of Target={}", row.webhook.target_name()),
        ));
    }
    let mut command = UpdateConversationWebhook::new(scope.service, row.conversation_sid, row.sid);
    command.url = url;
    command.method = method;
    command.filters = (!filters.is_empty()).then_some(filters);
    command.triggers = (!triggers.is_empty()).then_some(triggers);
    command.flow_sid = flow;
    state.execute(&headers, command).await?;
    let row = load(&state, &scope, &path).await?;
    Ok(Json(render(&state, &scope, &row)))
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
