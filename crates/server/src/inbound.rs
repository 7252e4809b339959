//! The inbound channel endpoint: where an SMS/WhatsApp/… gateway hands the
//! server what it received, and reports what became of what it sent.
//!
//! Both endpoints are mounted like the service-scoped resources, under
//! `/v1/Services/{ChatServiceSid}` and under `/v1` for the account's
//! default service: a gateway is configured with the URL of the service
//! its numbers belong to (the service holding their Address
//! Configurations). Both are behind the API's HTTP Basic authentication;
//! a request that carries `X-Twilio-Signature` must also carry the
//! signature Twilio computes with the account's auth token over the URL
//! called and the form parameters (engine-core's
//! [`engine_core::webhooks::twilio_signature`]), else it is refused (401)
//! and nothing is written.
//!
//! - `POST …/Channels/{Channel}/Inbound` (`{Channel}`: `Sms`, `Whatsapp`,
//!   `Messenger`, `Gbm`, `Email`, `Rcs` or `Apple`, any case) takes
//!   Twilio's messaging webhook: `From`, `To`, `Body`, `NumMedia`,
//!   `MediaUrl0..N`, `MediaContentType0..N`, and `MessageSid`, the
//!   gateway's id of the message. It runs the engine's inbound path
//!   (`Engine::receive_inbound`): the message joins the open conversation
//!   holding the (`To`, `From`) binding, or the service's Address
//!   Configuration for `To` with autocreation on creates a conversation
//!   with `From` as a participant and the message, atomically. The command
//!   id derives from (channel, `MessageSid`), so a gateway's redelivery is
//!   answered with the first outcome (`"deduplicated": true`) and posts
//!   nothing. No route (no binding, no autocreating configuration) is a
//!   400 and writes nothing. Answer: 200 with the conversation, message
//!   and index.
//!
//!   Media: the server does not fetch a gateway's media (its URLs need the
//!   gateway's credentials, and a server fetching URLs it is handed is a
//!   request-forgery hazard). Each `MediaUrlN` becomes a media descriptor
//!   whose SID is derived from (channel, `MessageSid`, N) — stable across
//!   redeliveries —, whose `content_type` is `MediaContentTypeN`, whose
//!   `filename` is the URL (where the content is) and whose `size` is 0
//!   (unknown: nothing was downloaded).
//! - `POST …/Channels/{Channel}/Status/{ConversationSid}/{MessageSid}/{ParticipantSid}`
//!   is the status callback of one outbound delivery: the gateway builds it
//!   from what the engine's channel adapter handed it (conversation,
//!   message and recipient participant SIDs). It takes Twilio's status
//!   callback: `MessageStatus` (or `SmsStatus`), `MessageSid` (the
//!   gateway's id, recorded on the receipt) and `ErrorCode`, and records
//!   the receipt through `Engine::report_delivery_status` (the same report
//!   twice is recorded once; a status behind the one recorded changes
//!   nothing). `queued`, `accepted`, `scheduled` and `sending` are
//!   acknowledged without a receipt; `canceled` records `failed`. Answer:
//!   200 with the receipt as it now stands (`null` if none).
//!
//! Both take, and ignore, the informational parameters Twilio's gateways
//! add ([`GATEWAY_INFORMATIONAL_PARAMS`]); any other parameter is a 400.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Json;
use engine_core::webhooks::twilio_signature;
use events::command::{ConversationRef, ReceiveInbound, RecordDeliveryReceipt};
use events::limits::MEDIA_PER_MESSAGE_MAX;
use events::{
    AddressType, ConversationSid, DeliveryStatus, Media, MediaSid, MessageSid, ParticipantSid,
};
use serde_json::{json, Value};

use crate::app::{AppState, Scope};
use crate::error::{ApiError, CODE_AUTHENTICATE};
use crate::params::{Form, Params};
use crate::render::{enum_str, iso8601};
use crate::rest::conversations::path_param;
use crate::rest::path_sid;

/// The header Twilio signs its webhooks with.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// Parameters Twilio's messaging webhooks and status callbacks carry
/// beyond the ones these endpoints use: accepted so a Twilio-shaped
/// gateway can post unchanged, and ignored (the engine has nowhere to keep
/// them, and none changes what is recorded).
pub const GATEWAY_INFORMATIONAL_PARAMS: [&str; 27] = [
    "AccountSid",
    "MessagingServiceSid",
    "SmsSid",
    "SmsMessageSid",
    "NumSegments",
    "ApiVersion",
    "FromCity",
    "FromState",
    "FromZip",
    "FromCountry",
    "ToCity",
    "ToState",
    "ToZip",
    "ToCountry",
    "ReferralNumMedia",
    "ProfileName",
    "WaId",
    "Forwarded",
    "FrequentlyForwarded",
    "ButtonText",
    "ButtonPayload",
    "ChannelInstallSid",
    "ChannelPrefix",
    "ChannelToAddress",
    "RawDlrDoneDate",
    "EventType",
    "OptOutType",
];

/// The `{Channel}` path segment as an address type; `chat` is not a
/// gateway's channel. Errors (400): anything else.
fn channel(path: &[(String, String)]) -> Result<(String, AddressType), ApiError> {
    let raw = path_param(path, "Channel")?;
    let lower = raw.to_ascii_lowercase();
    let parsed: AddressType = serde_json::from_value(Value::String(lower))
        .ok()
        .filter(|t| *t != AddressType::Chat)
        .ok_or_else(|| {
            ApiError::invalid(
                "Channel",
                format!("{raw:?} is not a gateway channel (Sms, Whatsapp, Messenger, Gbm, Email, Rcs, Apple)"),
            )
        })?;
    Ok((raw, parsed))
}

/// Checks `X-Twilio-Signature`, when the request carries one, against the
/// signature of `url` and `params` under the account's auth token. The
/// comparison is of blake3 hashes, constant-time. Errors: 401 (20003) on
/// a mismatch.
fn check_signature(
    state: &AppState,
    headers: &HeaderMap,
    url: &str,
    params: &Params,
) -> Result<(), ApiError> {
    let Some(given) = headers.get(SIGNATURE_HEADER) else {
        return Ok(());
    };
    let expected = twilio_signature(&state.account.read().auth_token, url, params.pairs());
    if blake3::hash(given.as_bytes()) == blake3::hash(expected.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            CODE_AUTHENTICATE,
            format!("{SIGNATURE_HEADER} does not match the request signed with the account's auth token"),
        ))
    }
}

/// The URL a gateway called: the scope's prefix, the route after it and
/// the query string.
fn called_url(scope: &Scope, rest: &str, uri: &Uri) -> String {
    match uri.query() {
        Some(q) => format!("{}{rest}?{q}", scope.prefix),
        None => format!("{}{rest}", scope.prefix),
    }
}

fn take_informational(p: &mut Params) -> Result<(), ApiError> {
    for name in GATEWAY_INFORMATIONAL_PARAMS {
        p.opt(name)?;
    }
    Ok(())
}

/// The media descriptors of an inbound message: `NumMedia` items of
/// `MediaUrlN` / `MediaContentTypeN`. Errors (400): more than
/// [`MEDIA_PER_MESSAGE_MAX`], or a URL or content type missing.
fn take_media(
    p: &mut Params,
    channel: AddressType,
    gateway_id: &str,
) -> Result<Vec<Media>, ApiError> {
    let count = p.opt_parse::<usize>("NumMedia")?.unwrap_or(0);
    if count > MEDIA_PER_MESSAGE_MAX {
        return Err(ApiError::invalid(
            "NumMedia",
            format!("{count} is over the {MEDIA_PER_MESSAGE_MAX} media a message may carry"),
        ));
    }
    let mut media = Vec::with_capacity(count);
    for i in 0..count {
        let url = p.req(&format!("MediaUrl{i}"))?;
        let content_type = p.req(&format!("MediaContentType{i}"))?;
        let seed = format!(
            "colloquy/inbound-media/{}/{gateway_id}/{i}",
            enum_str(&channel)
        );
        media.push(Media {
            sid: MediaSid::derive(seed.as_bytes()),
            content_type,
            filename: Some(url),
            size: 0,
        });
    }
    Ok(media)
}

/// `POST …/Channels/{Channel}/Inbound`: see the module docs.
pub async fn receive(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    uri: Uri,
    Path(path): Path<Vec<(String, String)>>,
    Form(mut p): Form,
) -> Result<Json<Value>, ApiError> {
    let (raw_channel, channel) = channel(&path)?;
    let url = called_url(&scope, &format!("/Channels/{raw_channel}/Inbound"), &uri);
    check_signature(&state, &headers, &url, &p)?;
    let from = p.req("From")?;
    let to = p.req("To")?;
    let body = p.opt("Body")?;
    let gateway_id = p.req("MessageSid")?;
    let media = take_media(&mut p, channel, &gateway_id)?;
    take_informational(&mut p)?;
    p.finish()?;
    let mut inbound = ReceiveInbound::new(scope.service, channel, from, to).media(media);
    inbound.body = body;
    let engine = state.engine.clone();
    let id = gateway_id.clone();
    let outcome = tokio::task::spawn_blocking(move || engine.receive_inbound(&id, inbound))
        .await
        .map_err(ApiError::internal)??;
    let posted = outcome.message().ok_or_else(|| {
        ApiError::internal(format!(
            "inbound message {gateway_id:?} appended no message"
        ))
    })?;
    let (conversation, message, index) =
        (posted.conversation_sid, posted.message_sid, posted.index);
    Ok(Json(json!({
        "account_sid": state.account.read().account_sid,
        "chat_service_sid": scope.service.to_string(),
        "conversation_sid": conversation.to_string(),
        "message_sid": message.to_string(),
        "index": index,
        "channel_message_sid": gateway_id,
        "deduplicated": outcome.deduplicated,
        "url": format!("{}/Conversations/{conversation}/Messages/{message}", scope.prefix),
    })))
}

/// Twilio's delivery status as a receipt status; `None` for the statuses
/// before a send (nothing to record). Errors (400): not a Twilio status.
fn delivery_status(name: &str, raw: &str) -> Result<Option<DeliveryStatus>, ApiError> {
    Ok(Some(match raw {
        "queued" | "accepted" | "scheduled" | "sending" => return Ok(None),
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "undelivered" => DeliveryStatus::Undelivered,
        "failed" | "canceled" => DeliveryStatus::Failed,
        other => {
            return Err(ApiError::invalid(
                name,
                format!("{other:?} is not a Twilio outbound message status"),
            ))
        }
    }))
}

/// `POST …/Channels/{Channel}/Status/{ConversationSid}/{MessageSid}/{ParticipantSid}`:
/// see the module docs.
pub async fn status(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    uri: Uri,
    Path(path): Path<Vec<(String, String)>>,
    Form(mut p): Form,
) -> Result<Json<Value>, ApiError> {
    let (raw_channel, _) = channel(&path)?;
    let conversation: ConversationSid = path_sid(&path, "ConversationSid")?;
    let message: MessageSid = path_sid(&path, "MessageSid")?;
    let participant: ParticipantSid = path_sid(&path, "ParticipantSid")?;
    let url = called_url(
        &scope,
        &format!("/Channels/{raw_channel}/Status/{conversation}/{message}/{participant}"),
        &uri,
    );
    check_signature(&state, &headers, &url, &p)?;
    let message_status = p.opt("MessageStatus")?;
    let sms_status = p.opt("SmsStatus")?;
    let raw_status = match (message_status, sms_status) {
        (Some(m), Some(s)) if m != s => {
            return Err(ApiError::invalid(
                "SmsStatus",
                format!("{s:?} disagrees with MessageStatus {m:?}"),
            ))
        }
        (Some(m), _) => m,
        (None, Some(s)) => s,
        (None, None) => return Err(ApiError::invalid("MessageStatus", "is required")),
    };
    let status = delivery_status("MessageStatus", &raw_status)?;
    let gateway_id = p.opt("MessageSid")?;
    let error_code = p.opt_parse::<u32>("ErrorCode")?;
    for name in ["From", "To", "Body"] {
        p.opt(name)?;
    }
    take_informational(&mut p)?;
    p.finish()?;
    if let Some(status) = status {
        let mut receipt =
            RecordDeliveryReceipt::new(scope.service, conversation, message, participant, status);
        receipt.error_code = error_code;
        receipt.channel_message_sid = gateway_id;
        let engine = state.engine.clone();
        tokio::task::spawn_blocking(move || engine.report_delivery_status(receipt))
            .await
            .map_err(ApiError::internal)??;
    }
    let service = scope.service;
    let receipt = state
        .read(move |q| {
            q.get_conversation(&service, &ConversationRef::Sid(conversation))
                .map(|c| c.receipt(&message, &participant).cloned())
        })
        .await??;
    Ok(Json(match receipt {
        None => Value::Null,
        Some(r) => json!({
            "sid": r.sid.to_string(),
            "chat_service_sid": r.chat_service_sid.to_string(),
            "conversation_sid": r.conversation_sid.to_string(),
            "message_sid": r.message_sid.to_string(),
            "participant_sid": r.participant_sid.to_string(),
            "status": enum_str(&r.status),
            "error_code": r.error_code,
            "channel_message_sid": r.channel_message_sid,
            "date_created": iso8601(r.date_created),
            "date_updated": iso8601(r.date_updated),
        }),
    }))
}
