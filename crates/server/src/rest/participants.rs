//! `/v1/Conversations/{ConversationSid}/Participants` (and under
//! `/v1/Services/{ChatServiceSid}`): chat participants (`Identity`) and
//! messaging-binding participants (`MessagingBinding.Address` reached
//! through `MessagingBinding.ProxyAddress`), their attributes, role and
//! read horizon (`LastReadMessageIndex`, `LastReadTimestamp`).
//!
//! Not supported, each answered 400 naming the parameter: `DateCreated`
//! and `DateUpdated` (the engine stamps every record itself, so a log
//! cannot be back-dated), and on update `Identity` and the
//! `MessagingBinding.*` addresses (a participant's identity or binding is
//! fixed when it joins; remove and re-add it instead).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use engine_core::channel_of;
use events::command::{AddParticipant, ConversationRef, RemoveParticipant, UpdateParticipant};
use events::{ParticipantKind, ParticipantSid, ParticipantSpec, RoleSid};
use projections::ParticipantRow;
use serde_json::{json, Value};

use crate::app::{conversation_ref, AppState, Scope};
use crate::error::ApiError;
use crate::paging::Paging;
use crate::params::{Form, Params, Query};
use crate::render::{enum_str, iso8601, parse_iso8601};
use crate::rest::conversations::path_param;

/// Why a `DateCreated`/`DateUpdated` parameter is refused.
pub(crate) const NO_BACKDATING: &str =
    "not supported: the engine stamps every record itself, so history cannot be back-dated";

/// Adds `chat_service_sid` to a representation when the request used the
/// `/v1/Services/{ChatServiceSid}` form: Twilio's service-scoped
/// representations carry it, the `/v1` ones do not.
pub(crate) fn with_service(scope: &Scope, mut value: Value) -> Value {
    if scope
        .prefix
        .ends_with(&format!("/v1/Services/{}", scope.service))
    {
        value["chat_service_sid"] = json!(scope.service.to_string());
    }
    value
}

/// Twilio's `messaging_binding`: `{type, address, proxy_address}` for a
/// binding (plus `projected_address` when set), `{type: "chat",
/// projected_address}` for a chat participant with a projected address
/// (group MMS), else `null`.
pub(crate) fn messaging_binding(kind: &ParticipantKind) -> Value {
    match kind {
        ParticipantKind::Chat {
            projected_address: Some(p),
            ..
        } => json!({ "type": "chat", "projected_address": p }),
        ParticipantKind::Chat { .. } => Value::Null,
        ParticipantKind::Messaging(b) => {
            let mut v = json!({
                "type": enum_str(&channel_of(b)),
                "address": b.address,
                "proxy_address": b.proxy_address,
            });
            if let Some(p) = &b.projected_address {
                v["projected_address"] = json!(p);
            }
            v
        }
    }
}

/// Twilio's Participant resource.
pub fn render(state: &AppState, scope: &Scope, row: &ParticipantRow) -> Value {
    let conversation = format!("{}/Conversations/{}", scope.prefix, row.conversation_sid);
    let url = format!("{conversation}/Participants/{}", row.sid);
    with_service(
        scope,
        json!({
            "account_sid": state.account.read().account_sid,
            "conversation_sid": row.conversation_sid.to_string(),
            "sid": row.sid.to_string(),
            "identity": row.kind.identity(),
            "attributes": row.attributes,
            "messaging_binding": messaging_binding(&row.kind),
            "role_sid": row.role_sid.map(|r| r.to_string()),
            "date_created": iso8601(row.date_created),
            "date_updated": iso8601(row.date_updated),
            "url": url,
            "last_read_message_index": row.last_read_message_index,
            "last_read_timestamp": row.last_read_timestamp.map(iso8601),
            "links": { "conversation": conversation },
        }),
    )
}

/// One participant of a conversation, or 404 (also for a participant of
/// another conversation or service).
pub async fn load(
    state: &AppState,
    scope: &Scope,
    conversation: ConversationRef,
    participant: ParticipantSid,
) -> Result<ParticipantRow, ApiError> {
    let service = scope.service;
    state
        .read(move |q| {
            q.get_conversation(&service, &conversation)?
                .participant(&participant)
                .cloned()
                .ok_or_else(|| ApiError::not_found(format!("participant {participant}")))
        })
        .await?
}

/// The fields of a new participant, as the form (or a
/// ConversationWithParticipants `Participant` object) names them.
#[derive(Debug, Default)]
pub(crate) struct NewParticipant {
    pub identity: Option<String>,
    pub address: Option<String>,
    pub proxy_address: Option<String>,
    pub projected_address: Option<String>,
    pub attributes: Option<String>,
    pub role_sid: Option<String>,
}

impl NewParticipant {
    /// The engine's spec. Errors (400): neither or both of an identity and
    /// an address, an address without a proxy address, a bad role SID.
    /// `prefix` is prepended to parameter names in the messages.
    pub fn spec(self, prefix: &str) -> Result<ParticipantSpec, ApiError> {
        let name = |n: &str| format!("{prefix}{n}");
        let mut spec = match (self.identity, self.address) {
            (Some(identity), None) => {
                if self.proxy_address.is_some() {
                    return Err(ApiError::invalid(
                        &name("MessagingBinding.ProxyAddress"),
                        "is for a messaging binding, not a chat participant",
                    ));
                }
                ParticipantSpec::chat(identity)
            }
            (None, Some(address)) => {
                let proxy = self.proxy_address.ok_or_else(|| {
                    ApiError::invalid(
                        &name("MessagingBinding.ProxyAddress"),
                        "is required with MessagingBinding.Address",
                    )
                })?;
                ParticipantSpec::binding(address, proxy)
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    &name("Identity"),
                    "a participant has an Identity or a MessagingBinding.Address, not both",
                ))
            }
            (None, None) => {
                return Err(ApiError::invalid(
                    &name("Identity"),
                    "a participant needs an Identity or a MessagingBinding.Address",
                ))
            }
        };
        if let Some(p) = self.projected_address {
            spec = spec.projected_address(p);
        }
        spec.attributes = self.attributes;
        spec.role_sid = self
            .role_sid
            .map(|r| {
                r.parse::<RoleSid>()
                    .map_err(|e| ApiError::invalid(&name("RoleSid"), e))
            })
            .transpose()?;
        Ok(spec)
    }
}

/// The `{ConversationSid}` path segment: a SID or a unique name.
pub(crate) fn conversation_of(path: &[(String, String)]) -> Result<ConversationRef, ApiError> {
    Ok(conversation_ref(&path_param(path, "ConversationSid")?))
}

/// The path segment `name` parsed as a SID of type `T`. Errors (400,
/// naming the segment): not such a SID.
pub(crate) fn sid_param<T>(path: &[(String, String)], name: &str) -> Result<T, ApiError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    path_param(path, name)?
        .parse()
        .map_err(|e| ApiError::invalid(name, e))
}

fn participant_of(path: &[(String, String)]) -> Result<ParticipantSid, ApiError> {
    sid_param(path, "ParticipantSid")
}

/// `POST …/Participants`: `Identity`, or `MessagingBinding.Address` with
/// `MessagingBinding.ProxyAddress`; `MessagingBinding.ProjectedAddress`,
/// `Attributes`, `RoleSid`. 201 with the participant. Errors: 400 for bad
/// or unsupported parameters, 404 for an unknown conversation, 409 when
/// the identity or binding is already there.
pub async fn create(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
    Form(mut p): Form,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    p.refuse(&["DateCreated", "DateUpdated"], NO_BACKDATING)?;
    let fields = NewParticipant {
        identity: p.opt("Identity")?,
        address: p.opt("MessagingBinding.Address")?,
        proxy_address: p.opt("MessagingBinding.ProxyAddress")?,
        projected_address: p.opt("MessagingBinding.ProjectedAddress")?,
        attributes: p.opt("Attributes")?,
        role_sid: p.opt("RoleSid")?,
    };
    p.finish()?;
    let spec = fields.spec("")?;
    let conversation = conversation_of(&path)?;
    let sid = state
        .execute(
            &headers,
            AddParticipant::new(scope.service, conversation.clone(), spec),
        )
        .await?;
    let row = load(&state, &scope, conversation, sid).await?;
    Ok((StatusCode::CREATED, Json(render(&state, &scope, &row))))
}

/// `GET …/Participants`: paged, by participant SID.
pub async fn list(
    State(state): State<AppState>,
    scope: Scope,
    Path(path): Path<Vec<(String, String)>>,
    Query(mut p): Query,
) -> Result<Json<Value>, ApiError> {
    let paging = Paging::take(&mut p)?;
    p.finish()?;
    let conversation = conversation_of(&path)?;
    let request = paging.request();
    let service = scope.service;
    let (sid, page) = state
        .read(move |q| {
            let sid = q.get_conversation(&service, &conversation)?.row().sid;
            Ok::<_, projections::QueryError>((
                sid,
                q.participants(&service, &conversation, &request)?,
            ))
        })
        .await??;
    let url = format!("{}/Conversations/{sid}/Participants", scope.prefix);
    Ok(Json(paging.answer(
        "participants",
        &url,
        &[],
        &page,
        |row| render(&state, &scope, row),
    )))
}

/// `GET …/Participants/{ParticipantSid}`. Errors: 404 when the
/// conversation has no such participant.
pub async fn fetch(
    State(state): State<AppState>,
    scope: Scope,
    Path(path): Path<Vec<(String, String)>>,
    Query(p): Query,
) -> Result<Json<Value>, ApiError> {
    p.finish()?;
    let row = load(
        &state,
        &scope,
        conversation_of(&path)?,
        participant_of(&path)?,
    )
    .await?;
    Ok(Json(render(&state, &scope, &row)))
}

fn take_update(p: &mut Params, command: &mut UpdateParticipant) -> Result<(), ApiError> {
    p.refuse(&["DateCreated", "DateUpdated"], NO_BACKDATING)?;
    p.refuse(
        &[
            "Identity",
            "MessagingBinding.ProxyAddress",
            "MessagingBinding.ProjectedAddress",
        ],
        "not supported: a participant's identity and binding are fixed when it joins",
    )?;
    command.attributes = p.opt("Attributes")?;
    command.role_sid = p.opt_parse("RoleSid")?;
    command.last_read_message_index = p.opt_parse("LastReadMessageIndex")?;
    command.last_read_timestamp = p
        .opt("LastReadTimestamp")?
        .map(|t| parse_iso8601("LastReadTimestamp", &t))
        .transpose()?;
    Ok(())
}

/// `POST …/Participants/{ParticipantSid}`: `Attributes`, `RoleSid`,
/// `LastReadMessageIndex` (sets the read horizon, clamped to the last
/// message), `LastReadTimestamp`. 200 with the participant. Errors: 400
/// for bad or unsupported parameters, 404 for an unknown participant.
pub async fn update(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
    Form(mut p): Form,
) -> Result<Json<Value>, ApiError> {
    let conversation = conversation_of(&path)?;
    let participant = participant_of(&path)?;
    let mut command = UpdateParticipant::new(scope.service, conversation.clone(), participant);
    take_update(&mut p, &mut command)?;
    p.finish()?;
    state.execute(&headers, command).await?;
    let row = load(&state, &scope, conversation, participant).await?;
    Ok(Json(render(&state, &scope, &row)))
}

/// `DELETE …/Participants/{ParticipantSid}`: 204. Errors: 404 for an
/// unknown participant.
pub async fn delete(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
    Query(p): Query,
) -> Result<StatusCode, ApiError> {
    p.finish()?;
    let command = RemoveParticipant::new(
        scope.service,
        conversation_of(&path)?,
        participant_of(&path)?,
    );
    state.execute(&headers, command).await?;
    Ok(StatusCode::NO_CONTENT)
}
