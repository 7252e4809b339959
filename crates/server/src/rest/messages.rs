//! `/v1/Conversations/{ConversationSid}/Messages` (and under
//! `/v1/Services/{ChatServiceSid}`): post (with media uploaded to the
//! media store first, attached by `MediaSid`), list in either `Order`,
//! fetch, edit, delete.
//!
//! Not supported, each answered 400 naming the parameter: `DateCreated`
//! and `DateUpdated` (the engine stamps every record), `ContentSid` and
//! `ContentVariables` (no Content API templates), `Subject` (no email or
//! group-MMS subjects), and `Author` on update (a message's author is
//! fixed when it is posted: the engine's edit changes body and attributes
//! only).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use events::command::{ConversationRef, DeleteMessage, EditMessage, PostMessage};
use events::limits::MEDIA_PER_MESSAGE_MAX;
use events::MessageSid;
use projections::{DeliverySummary, MessageRow, Order, QueryError, ReadModels};
use serde_json::{json, Value};

use crate::app::{AppState, Scope};
use crate::error::ApiError;
use crate::paging::Paging;
use crate::params::{Form, Query};
use crate::render::iso8601;
use crate::rest::participants::{conversation_of, sid_param, with_service, NO_BACKDATING};

/// Twilio's `delivery` word for `count` of `total` receipts: `all`,
/// `some` or `none`.
fn share(count: u32, total: u32) -> &'static str {
    match count {
        0 => "none",
        c if c >= total => "all",
        _ => "some",
    }
}

/// Twilio's message `delivery` object: the receipt total and, per status,
/// whether `all`, `some` or `none` of them have it.
pub fn render_delivery(s: &DeliverySummary) -> Value {
    json!({
        "total": s.total,
        "sent": share(s.sent, s.total),
        "delivered": share(s.delivered, s.total),
        "read": share(s.read, s.total),
        "failed": share(s.failed, s.total),
        "undelivered": share(s.undelivered, s.total),
    })
}

/// Twilio's Message resource. `delivery` is the summary when the message
/// has non-chat recipients, else `None` (rendered `null`).
pub fn render(
    state: &AppState,
    scope: &Scope,
    row: &MessageRow,
    delivery: Option<&DeliverySummary>,
) -> Value {
    let url = format!(
        "{}/Conversations/{}/Messages/{}",
        scope.prefix, row.conversation_sid, row.sid
    );
    let media = if row.media.is_empty() {
        Value::Null
    } else {
        row.media
            .iter()
            .map(|m| {
                json!({
                    "sid": m.sid.to_string(),
                    "size": m.size,
                    "content_type": m.content_type,
                    "filename": m.filename,
                    "category": "media",
                })
            })
            .collect()
    };
    with_service(
        scope,
        json!({
            "account_sid": state.account.read().account_sid,
            "conversation_sid": row.conversation_sid.to_string(),
            "sid": row.sid.to_string(),
            "index": row.index,
            "author": row.author,
            "body": row.body,
            "media": media,
            "attributes": row.attributes,
            "participant_sid": row.participant_sid.map(|p| p.to_string()),
            "date_created": iso8601(row.date_created),
            // Twilio: `null` until the message is edited.
            "date_updated": (row.date_updated != row.date_created).then(|| iso8601(row.date_updated)),
            "delivery": delivery.map(render_delivery),
            "url": url,
            "links": {
                "delivery_receipts": format!("{url}/Receipts"),
                "channel_metadata": format!("{url}/ChannelMetadata"),
            },
            "content_sid": Value::Null,
        }),
    )
}

/// The `delivery` of `row`: its receipt summary when the conversation has
/// non-chat participants or the message has receipts, else `None`.
fn delivery_of(
    q: &ReadModels,
    scope: &Scope,
    row: &MessageRow,
) -> Result<Option<DeliverySummary>, QueryError> {
    let conversation = ConversationRef::Sid(row.conversation_sid);
    let non_chat = q
        .get_conversation(&scope.service, &conversation)?
        .non_chat_count();
    let summary = q.delivery_summary(&scope.service, &conversation, &row.sid)?;
    Ok((non_chat > 0 || summary.total > 0).then_some(summary))
}

/// One message with its delivery summary, or 404.
async fn load(
    state: &AppState,
    scope: &Scope,
    conversation: ConversationRef,
    message: MessageSid,
) -> Result<(MessageRow, Option<DeliverySummary>), ApiError> {
    let scope2 = scope.clone();
    Ok(state
        .read(move |q| {
            let row = q.message(&scope2.service, &conversation, &message)?;
            let delivery = delivery_of(q, &scope2, &row)?;
            Ok::<_, QueryError>((row, delivery))
        })
        .await??)
}

fn message_of(path: &[(String, String)]) -> Result<MessageSid, ApiError> {
    sid_param(path, "MessageSid")
}

/// `POST …/Messages`: `Author`, `Body`, `MediaSid` (repeated, at most
/// [`MEDIA_PER_MESSAGE_MAX`], each an item uploaded to this service's
/// media store), `Attributes`. 201 with the message. Errors: 400 for bad
/// or unsupported parameters (an unknown or foreign `MediaSid` included)
/// or a message with neither body nor media; 404 for an unknown
/// conversation.
pub async fn create(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
    Form(mut p): Form,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    p.refuse(&["DateCreated", "DateUpdated"], NO_BACKDATING)?;
    p.refuse(
        &["ContentSid", "ContentVariables"],
        "not supported: this server has no Content API templates",
    )?;
    p.refuse(&["Subject"], "not supported: messages have no subject here")?;
    let author = p.opt("Author")?;
    let body = p.opt("Body")?;
    let attributes = p.opt("Attributes")?;
    let media_sids = p.all("MediaSid");
    p.finish()?;
    if media_sids.len() > MEDIA_PER_MESSAGE_MAX {
        return Err(ApiError::invalid(
            "MediaSid",
            format!(
                "{} items given, at most {MEDIA_PER_MESSAGE_MAX}",
                media_sids.len()
            ),
        ));
    }
    let media = crate::media::descriptors(&state, scope.service, media_sids).await?;
    let conversation = conversation_of(&path)?;
    let mut command = PostMessage::new(scope.service, conversation.clone());
    command.author = author;
    command.body = body;
    command.attributes = attributes;
    command.media = media;
    let posted = state.execute(&headers, command).await?;
    let (row, delivery) = load(&state, &scope, conversation, posted.message_sid).await?;
    Ok((
        StatusCode::CREATED,
        Json(render(&state, &scope, &row, delivery.as_ref())),
    ))
}

/// `GET …/Messages`: paged by index, `Order=asc` (default, oldest first)
/// or `desc`. Errors: 400 for another `Order` or a page token of the other
/// order; 404 for an unknown conversation.
pub async fn list(
    State(state): State<AppState>,
    scope: Scope,
    Path(path): Path<Vec<(String, String)>>,
    Query(mut p): Query,
) -> Result<Json<Value>, ApiError> {
    let order_raw = p.opt("Order")?;
    let order = match order_raw.as_deref() {
        None | Some("asc") => Order::Asc,
        Some("desc") => Order::Desc,
        Some(other) => {
            return Err(ApiError::invalid(
                "Order",
                format!("{other:?} is not asc or desc"),
            ))
        }
    };
    let paging = Paging::take(&mut p)?;
    p.finish()?;
    let conversation = conversation_of(&path)?;
    let request = paging.request();
    let scope2 = scope.clone();
    let (sid, page) = state
        .read(move |q| {
            let service = &scope2.service;
            let sid = q.get_conversation(service, &conversation)?.row().sid;
            let page = q.messages(service, &conversation, order, &request)?;
            let items = page
                .items
                .into_iter()
                .map(|row| {
                    let delivery = delivery_of(q, &scope2, &row)?;
                    Ok((row, delivery))
                })
                .collect::<Result<Vec<_>, QueryError>>()?;
            Ok::<_, QueryError>((
                sid,
                projections::Page {
                    items,
                    next_page_token: page.next_page_token,
                },
            ))
        })
        .await??;
    let url = format!("{}/Conversations/{sid}/Messages", scope.prefix);
    let filters: Vec<(&str, String)> = order_raw.into_iter().map(|o| ("Order", o)).collect();
    Ok(Json(paging.answer(
        "messages",
        &url,
        &filters,
        &page,
        |(row, delivery)| render(&state, &scope, row, delivery.as_ref()),
    )))
}

/// `GET …/Messages/{MessageSid}`. Errors: 404 when the conversation has
/// no such (live) message.
pub async fn fetch(
    State(state): State<AppState>,
    scope: Scope,
    Path(path): Path<Vec<(String, String)>>,
    Query(p): Query,
) -> Result<Json<Value>, ApiError> {
    p.finish()?;
    let (row, delivery) = load(&state, &scope, conversation_of(&path)?, message_of(&path)?).await?;
    Ok(Json(render(&state, &scope, &row, delivery.as_ref())))
}

/// `POST …/Messages/{MessageSid}`: `Body`, `Attributes` (absent ones are
/// left unchanged). 200 with the message. Errors: 400 for bad or
/// unsupported parameters (`Author` included); 404 for an unknown message.
pub async fn update(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
    Form(mut p): Form,
) -> Result<Json<Value>, ApiError> {
    p.refuse(&["DateCreated", "DateUpdated"], NO_BACKDATING)?;
    p.refuse(
        &["Author"],
        "not supported: a message's author is fixed when it is posted",
    )?;
    p.refuse(&["Subject"], "not supported: messages have no subject here")?;
    let conversation = conversation_of(&path)?;
    let message = message_of(&path)?;
    let mut command = EditMessage::new(scope.service, conversation.clone(), message);
    command.body = p.opt("Body")?;
    command.attributes = p.opt("Attributes")?;
    p.finish()?;
    state.execute(&headers, command).await?;
    let (row, delivery) = load(&state, &scope, conversation, message).await?;
    Ok(Json(render(&state, &scope, &row, delivery.as_ref())))
}

/// `DELETE …/Messages/{MessageSid}`: 204; the index is never reused.
/// Errors: 404 for an unknown message.
pub async fn delete(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
    Query(p): Query,
) -> Result<StatusCode, ApiError> {
    p.finish()?;
    let command = DeleteMessage::new(scope.service, conversation_of(&path)?, message_of(&path)?);
    state.execute(&headers, command).await?;
    Ok(StatusCode::NO_CONTENT)
}
