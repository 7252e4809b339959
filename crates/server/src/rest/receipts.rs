//! `/v1/Conversations/{ConversationSid}/Messages/{MessageSid}/Receipts`
//! (and under `/v1/Services/{ChatServiceSid}`): a message's delivery
//! receipts, one per non-chat participant it was sent to, each with its
//! latest status. Read-only, as in Twilio: receipts are written by the
//! delivery machinery (channel adapters and delivery-status callbacks).

use axum::extract::{Path, State};
use axum::Json;
use events::command::ConversationRef;
use events::{MessageSid, ReceiptSid};
use projections::ReceiptRow;
use serde_json::{json, Value};

use crate::app::{AppState, Scope};
use crate::error::ApiError;
use crate::paging::Paging;
use crate::params::Query;
use crate::render::{enum_str, iso8601};
use crate::rest::participants::{conversation_of, sid_param, with_service};

/// Twilio's Delivery Receipt resource.
pub fn render(state: &AppState, scope: &Scope, row: &ReceiptRow) -> Value {
    let url = format!(
        "{}/Conversations/{}/Messages/{}/Receipts/{}",
        scope.prefix, row.conversation_sid, row.message_sid, row.sid
    );
    with_service(
        scope,
        json!({
            "account_sid": state.account.read().account_sid,
            "conversation_sid": row.conversation_sid.to_string(),
            "sid": row.sid.to_string(),
            "message_sid": row.message_sid.to_string(),
            "channel_message_sid": row.channel_message_sid,
            "participant_sid": row.participant_sid.to_string(),
            "status": enum_str(&row.status),
            "error_code": row.error_code,
            "date_created": iso8601(row.date_created),
            // Twilio: `null` until a later status updates the receipt.
            "date_updated": (row.date_updated != row.date_created).then(|| iso8601(row.date_updated)),
            "url": url,
        }),
    )
}

fn target(path: &[(String, String)]) -> Result<(ConversationRef, MessageSid), ApiError> {
    Ok((conversation_of(path)?, sid_param(path, "MessageSid")?))
}

/// `GET …/Messages/{MessageSid}/Receipts`: paged, by participant SID.
/// Errors: 404 for an unknown conversation or message.
pub async fn list(
    State(state): State<AppState>,
    scope: Scope,
    Path(path): Path<Vec<(String, String)>>,
    Query(mut p): Query,
) -> Result<Json<Value>, ApiError> {
    let paging = Paging::take(&mut p)?;
    p.finish()?;
    let (conversation, message) = target(&path)?;
    let request = paging.request();
    let service = scope.service;
    let (sid, page) = state
        .read(move |q| {
            let sid = q.get_conversation(&service, &conversation)?.row().sid;
            let page = q.receipts(&service, &conversation, &message, &request)?;
            Ok::<_, projections::QueryError>((sid, page))
        })
        .await??;
    let url = format!(
        "{}/Conversations/{sid}/Messages/{message}/Receipts",
        scope.prefix
    );
    Ok(Json(paging.answer(
        "delivery_receipts",
        &url,
        &[],
        &page,
        |row| render(&state, &scope, row),
    )))
}

/// `GET …/Messages/{MessageSid}/Receipts/{Sid}`. Errors: 404 when the
/// message has no receipt with this SID.
pub async fn fetch(
    State(state): State<AppState>,
    scope: Scope,
    Path(path): Path<Vec<(String, String)>>,
    Query(p): Query,
) -> Result<Json<Value>, ApiError> {
    p.finish()?;
    let (conversation, message) = target(&path)?;
    let sid: ReceiptSid = sid_param(&path, "Sid")?;
    let service = scope.service;
    let row = state
        .read(move |q| {
            q.get_conversation(&service, &conversation)?
                .receipts(&message)
                .find(|r| r.sid == sid)
                .cloned()
                .ok_or_else(|| ApiError::not_found(format!("delivery receipt {sid}")))
        })
        .await??;
    Ok(Json(render(&state, &scope, &row)))
}
