//! The Configuration resources:
//! - `/v1/Configuration`: the account's defaults (`DefaultChatServiceSid`,
//!   `DefaultMessagingServiceSid`, `DefaultInactiveTimer`,
//!   `DefaultClosedTimer`), persisted in the account file
//!   ([`crate::account`]); the default service must exist.
//! - `/v1/Services/{ChatServiceSid}/Configuration`: the service's default
//!   roles (`UpdateServiceConfiguration`). `reachability_enabled` is
//!   `false`: the server has no Reachability Indicator, so enabling it is
//!   refused (400).
//! - `…/Configuration/Notifications`: push notifications are not built, so
//!   the resource answers them all disabled, accepts settings that say so
//!   (`…Enabled=false`, `LogEnabled=false`) and refuses (400) any that
//!   would enable one or set a template or sound. Nothing is stored.
//! - `…/Configuration/Webhooks` (service) and `/v1/Configuration/Webhooks`
//!   (account): the post-event webhook configuration of the service (the
//!   account-level resource is the default service's), written with
//!   `UpdateServiceWebhooks`, and signed with the account's auth token as
//!   Twilio signs (the server hands the token to the engine's webhook
//!   reactor in memory: it is never written to the log). Given parameters
//!   replace their field; absent ones are
//!   kept; an empty `PostWebhookUrl` turns post-event webhooks off.
//!   `PreWebhookUrl` is refused (400) unless empty: pre-event hooks are
//!   in-process code registered by the host (`Engine::set_pre_event_hook`),
//!   not URLs. The account-level `Target` takes only `webhook` (`flex` is
//!   refused).
//! - `/v1/Configuration/Addresses`: Address Configurations. The engine
//!   keeps each in one service: the one `AutoCreation.ConversationServiceSid`
//!   names, or else the account's default service; that is where its
//!   inbound messages autocreate conversations, through that service's
//!   inbound endpoint ([`crate::inbound`]). The account-level list gathers
//!   them from every service, ordered by SID. `AutoCreation.Type`
//!   `webhook` gives each autocreated conversation a conversation-scoped
//!   webhook (`WebhookUrl`, `WebhookMethod`, `WebhookFilters`), `studio` a
//!   Studio webhook to `StudioFlowSid`, in the same command as the
//!   conversation. `AddressCountry` is refused with a 400 naming it (the
//!   engine does not model it) and answered as `null`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use events::command::{
    CreateAddressConfiguration, DeleteAddressConfiguration, UpdateAddressConfiguration,
    UpdateServiceConfiguration, UpdateServiceWebhooks,
};
use events::limits::{TIMER_CLOSED_MICROS_MIN, TIMER_INACTIVE_MICROS_MIN};
use events::{
    parse_iso8601_duration_micros, AddressConfigurationSid, AddressType, AutoCreation,
    AutoCreationType, FlowSid, RoleSid, ServiceSid, ServiceWebhooks, WebhookFilter, WebhookMethod,
};
use projections::{AddressConfigurationRow, ServiceRow};
use serde_json::{json, Value};

use crate::app::{AppState, Scope};
use crate::error::ApiError;
use crate::paging::Paging;
use crate::params::{Form, Params, Query};
use crate::render::{enum_str, iso8601, parse_enum};
use crate::rest::path_sid;
use crate::rest::webhooks::parse_method;

/// Serialises writers of the account file: each reads the account, changes
/// it, stores it and swaps it in, so two concurrent updates never lose one
/// another's fields.
static ACCOUNT_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The hex digits after the prefix of a Twilio SID.
const SID_HEX_DIGITS: usize = 32;

/// Twilio's account Configuration resource.
fn render_account(state: &AppState) -> Value {
    let account = state.account.read();
    let base = &state.base_url;
    json!({
        "account_sid": account.account_sid,
        "default_chat_service_sid": account.default_chat_service_sid.to_string(),
        "default_messaging_service_sid": account.default_messaging_service_sid,
        "default_inactive_timer": account.default_inactive_timer,
        "default_closed_timer": account.default_closed_timer,
        "url": format!("{base}/v1/Configuration"),
        "links": {
            "service": format!("{base}/v1/Services/{}", account.default_chat_service_sid),
            "webhooks": format!("{base}/v1/Configuration/Webhooks"),
        },
    })
}

/// `GET /v1/Configuration`.
pub async fn fetch_account(
    State(state): State<AppState>,
    Query(p): Query,
) -> Result<Json<Value>, ApiError> {
    p.finish()?;
    Ok(Json(render_account(&state)))
}

/// An ISO 8601 duration parameter of at least `min_micros`, as given.
fn timer(p: &mut Params, name: &str, min_micros: u64) -> Result<Option<String>, ApiError> {
    let Some(raw) = p.opt(name)? else {
        return Ok(None);
    };
    let micros = parse_iso8601_duration_micros(&raw).map_err(|e| ApiError::invalid(name, e))?;
    if micros < min_micros {
        return Err(ApiError::invalid(
            name,
            format!(
                "{raw} is shorter than the minimum of {} s",
                min_micros / 1_000_000
            ),
        ));
    }
    Ok(Some(raw))
}

/// Checks a Twilio SID with `prefix` (2 letters, 32 hex digits).
fn twilio_sid(name: &str, raw: &str, prefix: &str) -> Result<(), ApiError> {
    let ok = raw.len() == prefix.len() + SID_HEX_DIGITS
        && raw.starts_with(prefix)
        && raw[prefix.len()..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            name,
            format!("{raw:?} is not a {prefix} SID ({prefix} and {SID_HEX_DIGITS} hex digits)"),
        ))
    }
}

/// `POST /v1/Configuration`: `DefaultChatServiceSid` (an existing
/// service), `DefaultMessagingServiceSid` (an `MG…` SID, stored),
/// `DefaultInactiveTimer` (≥ 1 minute) and `DefaultClosedTimer` (≥ 10
/// minutes), ISO 8601 durations, stored. Absent ones are unchanged. The
/// account file is rewritten atomically before the answer. Errors: 400
/// for a bad or unknown value (nothing is written), 500 if the file
/// cannot be written (the old one stays).
pub async fn update_account(
    State(state): State<AppState>,
    Form(mut p): Form,
) -> Result<Json<Value>, ApiError> {
    let chat_service = p.opt_parse::<ServiceSid>("DefaultChatServiceSid")?;
    let messaging_service = p.opt("DefaultMessagingServiceSid")?;
    if let Some(sid) = &messaging_service {
        twilio_sid("DefaultMessagingServiceSid", sid, "MG")?;
    }
    let inactive = timer(&mut p, "DefaultInactiveTimer", TIMER_INACTIVE_MICROS_MIN)?;
    let closed = timer(&mut p, "DefaultClosedTimer", TIMER_CLOSED_MICROS_MIN)?;
    p.finish()?;
    if let Some(sid) = chat_service {
        let exists = state.read(move |q| q.get_service(&sid).is_ok()).await?;
        if !exists {
            return Err(ApiError::invalid(
                "DefaultChatServiceSid",
                format!("there is no service {sid}"),
            ));
        }
    }
    let writer = state.clone();
    tokio::task::spawn_blocking(move || {
        let _serial = ACCOUNT_WRITER.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = writer.account.read().clone();
        if let Some(sid) = chat_service {
            next.default_chat_service_sid = sid;
        }
        if messaging_service.is_some() {
            next.default_messaging_service_sid = messaging_service;
        }
        if inactive.is_some() {
            next.default_inactive_timer = inactive;
        }
        if closed.is_some() {
            next.default_closed_timer = closed;
        }
        next.store(&writer.data_dir).map_err(ApiError::internal)?;
        *writer.account.write() = next;
        Ok::<_, ApiError>(())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(render_account(&state)))
}

/// The service's row, or 404.
async fn service_row(state: &AppState, service: ServiceSid) -> Result<ServiceRow, ApiError> {
    Ok(state
        .read(move |q| q.get_service(&service).map(|s| s.row().clone()))
        .await??)
}

/// Twilio's service Configuration resource.
fn render_service(scope: &Scope, row: &ServiceRow) -> Value {
    let url = format!("{}/Configuration", scope.prefix);
    let sid = |r: Option<RoleSid>| r.map(|r| r.to_string());
    json!({
        "chat_service_sid": row.sid.to_string(),
        "default_conversation_creator_role_sid": sid(row.default_conversation_creator_role_sid),
        "default_conversation_role_sid": sid(row.default_conversation_role_sid),
        "default_chat_service_role_sid": sid(row.default_chat_service_role_sid),
        "url": url,
        "links": {
            "notifications": format!("{url}/Notifications"),
            "webhooks": format!("{url}/Webhooks"),
        },
        "reachability_enabled": false,
    })
}

/// `GET /v1/Services/{ChatServiceSid}/Configuration`.
pub async fn fetch_service(
    State(state): State<AppState>,
    scope: Scope,
    Query(p): Query,
) -> Result<Json<Value>, ApiError> {
    p.finish()?;
    let row = service_row(&state, scope.service).await?;
    Ok(Json(render_service(&scope, &row)))
}

/// `POST /v1/Services/{ChatServiceSid}/Configuration`:
/// `DefaultConversationCreatorRoleSid`, `DefaultConversationRoleSid`
/// (conversation roles), `DefaultChatServiceRoleSid` (a service role);
/// absent ones are unchanged. `ReachabilityEnabled=false` is accepted
/// (it is what the server does); `true` is refused (400). 200 with the
/// configuration.
pub async fn update_service(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Form(mut p): Form,
) -> Result<Json<Value>, ApiError> {
    let mut command = UpdateServiceConfiguration::new(scope.service);
    command.default_conversation_creator_role_sid =
        p.opt_parse("DefaultConversationCreatorRoleSid")?;
    command.default_conversation_role_sid = p.opt_parse("DefaultConversationRoleSid")?;
    command.default_chat_service_role_sid = p.opt_parse("DefaultChatServiceRoleSid")?;
    if p.opt_bool("ReachabilityEnabled")? == Some(true) {
        return Err(ApiError::invalid(
            "ReachabilityEnabled",
            "the Reachability Indicator is not supported by this server",
        ));
    }
    p.finish()?;
    let changes = command.default_conversation_creator_role_sid.is_some()
        || command.default_conversation_role_sid.is_some()
        || command.default_chat_service_role_sid.is_some();
    if changes {
        state.execute(&headers, command).await?;
    }
    let row = service_row(&state, scope.service).await?;
    Ok(Json(render_service(&scope, &row)))
}

/// Twilio's Notifications resource, as the server has them: none.
fn render_notifications(state: &AppState, scope: &Scope) -> Value {
    let off = json!({ "enabled": false, "template": null, "sound": null });
    json!({
        "account_sid": state.account.read().account_sid,
        "chat_service_sid": scope.service.to_string(),
        "new_message": {
            "enabled": false,
            "template": null,
            "sound": null,
            "badge_count_enabled": false,
            "with_media": { "enabled": false, "template": null },
        },
        "added_to_conversation": off,
        "removed_from_conversation": off,
        "log_enabled": false,
        "url": format!("{}/Configuration/Notifications", scope.prefix),
    })
}

/// `GET /v1/Services/{ChatServiceSid}/Configuration/Notifications`.
pub async fn fetch_notifications(
    State(state): State<AppState>,
    scope: Scope,
    Query(p): Query,
) -> Result<Json<Value>, ApiError> {
    p.finish()?;
    Ok(Json(render_notifications(&state, &scope)))
}

/// `POST /v1/Services/{ChatServiceSid}/Configuration/Notifications`:
/// every boolean may be given as `false` (what the server does); `true`,
/// a `Template` or a `Sound` is refused (400): push notifications are not
/// built. Nothing is written.
pub async fn update_notifications(
    State(state): State<AppState>,
    scope: Scope,
    Form(mut p): Form,
) -> Result<Json<Value>, ApiError> {
    const SWITCHES: [&str; 6] = [
        "LogEnabled",
        "NewMessage.Enabled",
        "NewMessage.BadgeCountEnabled",
        "NewMessage.WithMedia.Enabled",
        "AddedToConversation.Enabled",
        "RemovedFromConversation.Enabled",
    ];
    const TEXTS: [&str; 7] = [
        "NewMessage.Template",
        "NewMessage.Sound",
        "NewMessage.WithMedia.Template",
        "AddedToConversation.Template",
        "AddedToConversation.Sound",
        "RemovedFromConversation.Template",
        "RemovedFromConversation.Sound",
    ];
    let unsupported =
        |name: &str| ApiError::invalid(name, "push notifications are not supported by this server");
    for name in SWITCHES {
        if p.opt_bool(name)? == Some(true) {
            return Err(unsupported(name));
        }
    }
    for name in TEXTS {
        if p.opt(name)?.is_some() {
            return Err(unsupported(name));
        }
    }
    p.finish()?;
    Ok(Json(render_notifications(&state, &scope)))
}

/// The filters of a webhook configuration, by Twilio's names.
fn filter_names(w: &ServiceWebhooks) -> Vec<&'static str> {
    w.filters.iter().map(|f| f.twilio_name()).collect()
}

/// Twilio's service webhook configuration resource.
fn render_service_webhooks(state: &AppState, scope: &Scope, w: &ServiceWebhooks) -> Value {
    json!({
        "account_sid": state.account.read().account_sid,
        "chat_service_sid": scope.service.to_string(),
        "pre_webhook_url": null,
        "post_webhook_url": w.post_webhook_url,
        "filters": filter_names(w),
        "method": enum_str(&w.method),
        "url": format!("{}/Configuration/Webhooks", scope.prefix),
    })
}

/// Twilio's account-level webhook configuration resource.
fn render_account_webhooks(state: &AppState, w: &ServiceWebhooks) -> Value {
    json!({
        "account_sid": state.account.read().account_sid,
        "method": enum_str(&w.method),
        "filters": filter_names(w),
        "pre_webhook_url": null,
        "post_webhook_url": w.post_webhook_url,
        "target": "webhook",
        "url": format!("{}/v1/Configuration/Webhooks", state.base_url),
    })
}

async fn service_webhooks(
    state: &AppState,
    service: ServiceSid,
) -> Result<ServiceWebhooks, ApiError> {
    Ok(service_row(state, service).await?.webhooks)
}

/// The webhook configuration parameters of a request.
struct WebhookParams {
    post_url: Option<String>,
    method: Option<WebhookMethod>,
    filters: Vec<String>,
}

/// Takes `PreWebhookUrl` (refused unless empty), `PostWebhookUrl`,
/// `Method` and `Filters`.
fn take_webhook_params(p: &mut Params) -> Result<WebhookParams, ApiError> {
    if p.opt("PreWebhookUrl")?.is_some_and(|u| !u.is_empty()) {
        return Err(ApiError::invalid(
            "PreWebhookUrl",
            "pre-event webhooks by URL are not supported by this server: the host registers \
             pre-event hooks in process (Engine::set_pre_event_hook)",
        ));
    }
    Ok(WebhookParams {
        post_url: p.opt("PostWebhookUrl")?,
        method: p
            .opt("Method")?
            .map(|m| parse_method("Method", &m))
            .transpose()?,
        filters: p.all("Filters"),
    })
}

/// Writes `service`'s webhook configuration: the given fields over the
/// current ones. Requests are signed with the account's auth token, which
/// the server hands the webhook reactor in memory (never in the log); a
/// signing secret an embedding host set on the service is kept.
async fn update_webhooks(
    state: &AppState,
    headers: &HeaderMap,
    service: ServiceSid,
    given: WebhookParams,
) -> Result<ServiceWebhooks, ApiError> {
    let current = service_webhooks(state, service).await?;
    let mut command =
        UpdateServiceWebhooks::new(service).method(given.method.unwrap_or(current.method));
    command.signing_secret = current.signing_secret.clone();
    command.post_webhook_url = match given.post_url {
        Some(url) if url.is_empty() => None,
        Some(url) => Some(url),
        None => current.post_webhook_url.clone(),
    };
    command.filters = if given.filters.is_empty() {
        filter_names(&current)
            .into_iter()
            .map(str::to_owned)
            .collect()
    } else {
        given.filters
    };
    state.execute(headers, command).await?;
    service_webhooks(state, service).await
}

/// `GET /v1/Services/{ChatServiceSid}/Configuration/Webhooks`.
pub async fn fetch_service_webhooks(
    State(state): State<AppState>,
    scope: Scope,
    Query(p): Query,
) -> Result<Json<Value>, ApiError> {
    p.finish()?;
    let w = service_webhooks(&state, scope.service).await?;
    Ok(Json(render_service_webhooks(&state, &scope, &w)))
}

/// `POST /v1/Services/{ChatServiceSid}/Configuration/Webhooks`:
/// `PostWebhookUrl` (empty: off), `Method` (`GET`|`POST`), `Filters`
/// (repeated, Twilio's post-event names), `PreWebhookUrl` (empty only).
/// 200 with the configuration. Errors (400): an unknown filter, a bad URL
/// or method, a pre-event URL.
pub async fn update_service_webhooks(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Form(mut p): Form,
) -> Result<Json<Value>, ApiError> {
    let given = take_webhook_params(&mut p)?;
    p.finish()?;
    let w = update_webhooks(&state, &headers, scope.service, given).await?;
    Ok(Json(render_service_webhooks(&state, &scope, &w)))
}

/// `GET /v1/Configuration/Webhooks`: the default service's post-event
/// webhook configuration.
pub async fn fetch_account_webhooks(
    State(state): State<AppState>,
    Query(p): Query,
) -> Result<Json<Value>, ApiError> {
    p.finish()?;
    let service = state.account.read().default_chat_service_sid;
    let w = service_webhooks(&state, service).await?;
    Ok(Json(render_account_webhooks(&state, &w)))
}

/// `POST /v1/Configuration/Webhooks`: as the service resource, on the
/// default service, plus `Target` (`webhook` only; `flex` is refused).
pub async fn update_account_webhooks(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(mut p): Form,
) -> Result<Json<Value>, ApiError> {
    match p.opt("Target")?.as_deref() {
        None | Some("webhook") => {}
        Some("flex") => {
            return Err(ApiError::invalid(
                "Target",
                "flex is not supported by this server: use webhook",
            ))
        }
        Some(other) => {
            return Err(ApiError::invalid(
                "Target",
                format!("{other:?} is not webhook or flex"),
            ))
        }
    }
    let given = take_webhook_params(&mut p)?;
    p.finish()?;
    let service = state.account.read().default_chat_service_sid;
    let w = update_webhooks(&state, &headers, service, given).await?;
    Ok(Json(render_account_webhooks(&state, &w)))
}

/// Twilio's Address Configuration resource.
fn render_address(state: &AppState, row: &AddressConfigurationRow) -> Value {
    let a = &row.auto_creation;
    json!({
        "sid": row.sid.to_string(),
        "account_sid": state.account.read().account_sid,
        "type": enum_str(&row.address_type),
        "address": row.address,
        "friendly_name": row.friendly_name,
        "auto_creation": {
            "enabled": a.enabled,
            "type": enum_str(&a.kind),
            "conversation_service_sid": row.chat_service_sid.to_string(),
            "webhook_url": a.webhook_url,
            "webhook_method": match a.webhook_method {
                WebhookMethod::Get => "get",
                WebhookMethod::Post => "post",
            },
            "webhook_filters": a.webhook_filters.iter().map(|f| f.twilio_name()).collect::<Vec<_>>(),
            "studio_flow_sid": a.studio_flow_sid.map(|f| f.to_string()),
            "studio_retry_count": a.studio_retry_count,
        },
        "date_created": iso8601(row.date_created),
        "date_updated": iso8601(row.date_updated),
        "url": format!("{}/v1/Configuration/Addresses/{}", state.base_url, row.sid),
        "address_country": null,
    })
}

/// Refuses the Address Configuration parameters the engine does not
/// model yet (400 naming the first given).
fn refuse_unmodelled(p: &mut Params, names: &[&str]) -> Result<(), ApiError> {
    for name in names {
        if p.opt(name)?.is_some() || !p.all(name).is_empty() {
            return Err(ApiError::invalid(
                name,
                "is not supported by this server yet (the engine does not model it)",
            ));
        }
    }
    Ok(())
}

/// The autocreation parameters given.
struct AutoCreationParams {
    enabled: Option<bool>,
    service: Option<ServiceSid>,
    kind: Option<AutoCreationType>,
    webhook_url: Option<String>,
    webhook_method: Option<WebhookMethod>,
    webhook_filters: Vec<WebhookFilter>,
    studio_flow_sid: Option<FlowSid>,
    studio_retry_count: Option<u32>,
}

fn take_auto_creation(p: &mut Params) -> Result<AutoCreationParams, ApiError> {
    let kind = p
        .opt("AutoCreation.Type")?
        .map(|t| parse_enum("AutoCreation.Type", &t))
        .transpose()?;
    let webhook_method = p
        .opt("AutoCreation.WebhookMethod")?
        .map(|m| parse_method("AutoCreation.WebhookMethod", &m))
        .transpose()?;
    let webhook_filters = p
        .all("AutoCreation.WebhookFilters")
        .iter()
        .map(|name| {
            WebhookFilter::from_twilio_name(name).ok_or_else(|| {
                ApiError::invalid(
                    "AutoCreation.WebhookFilters",
                    format!("{name:?} is not a post-event webhook filter"),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(AutoCreationParams {
        enabled: p.opt_bool("AutoCreation.Enabled")?,
        service: p.opt_parse("AutoCreation.ConversationServiceSid")?,
        kind,
        webhook_url: p.opt("AutoCreation.WebhookUrl")?,
        webhook_method,
        webhook_filters,
        studio_flow_sid: p.opt_parse("AutoCreation.StudioFlowSid")?,
        studio_retry_count: p.opt_parse("AutoCreation.StudioRetryCount")?,
    })
}

impl AutoCreationParams {
    /// Whether any autocreation parameter was given.
    fn any(&self) -> bool {
        self.enabled.is_some()
            || self.kind.is_some()
            || self.webhook_url.is_some()
            || self.webhook_method.is_some()
            || !self.webhook_filters.is_empty()
            || self.studio_flow_sid.is_some()
            || self.studio_retry_count.is_some()
    }

    /// The given fields over `current` (an empty `WebhookUrl` clears it).
    /// A change of `Type` drops the current type's own settings (its
    /// method and filters, or its flow and retry count) unless given
    /// again. The engine checks the result (a webhook type needs a URL and
    /// filters, a studio type a flow) and refuses it whole.
    fn over(self, current: &AutoCreation) -> AutoCreation {
        let kind = self.kind.unwrap_or(current.kind);
        let kept = if kind == current.kind {
            current.clone()
        } else {
            AutoCreation::default()
        };
        AutoCreation {
            enabled: self.enabled.unwrap_or(current.enabled),
            conversation_service_sid: current.conversation_service_sid,
            kind,
            webhook_url: match self.webhook_url {
                Some(url) if url.is_empty() => None,
                Some(url) => Some(url),
                None => current.webhook_url.clone(),
            },
            webhook_method: self.webhook_method.unwrap_or(kept.webhook_method),
            webhook_filters: if self.webhook_filters.is_empty() {
                kept.webhook_filters
            } else {
                self.webhook_filters
            },
            studio_flow_sid: self.studio_flow_sid.or(kept.studio_flow_sid),
            studio_retry_count: self.studio_retry_count.or(kept.studio_retry_count),
        }
    }
}

/// The address configuration `sid` and the service holding it, from any
/// service; 404 if none has it.
async fn find_address(
    state: &AppState,
    sid: AddressConfigurationSid,
) -> Result<AddressConfigurationRow, ApiError> {
    state
        .read(move |q| {
            q.services()
                .find_map(|s| s.address_configuration(&sid).cloned())
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("address configuration {sid}")))
}

fn address_sid(path: &[(String, String)]) -> Result<AddressConfigurationSid, ApiError> {
    path_sid(path, "Sid")
}

/// `POST /v1/Configuration/Addresses`: `Type` and `Address` (required),
/// `FriendlyName`, `AutoCreation.Enabled`,
/// `AutoCreation.ConversationServiceSid` (the service it lives in;
/// default: the account's default service), `AutoCreation.Type`,
/// `AutoCreation.WebhookUrl`, `AutoCreation.WebhookMethod`,
/// `AutoCreation.WebhookFilters` (repeated), `AutoCreation.StudioFlowSid`,
/// `AutoCreation.StudioRetryCount`. 201 with the configuration. Errors:
/// 400 for bad or unmodelled parameters, an autocreation the engine
/// refuses (a webhook type without URL or filters, a studio type without
/// a flow) or an unknown service, 409 for an address that
/// already has a configuration in that service.
pub async fn create_address(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(mut p): Form,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let address_type: AddressType = parse_enum("Type", &p.req("Type")?)?;
    let address = p.req("Address")?;
    let friendly_name = p.opt("FriendlyName")?;
    let auto = take_auto_creation(&mut p)?;
    refuse_unmodelled(&mut p, &["AddressCountry"])?;
    p.finish()?;
    let service = match auto.service {
        Some(sid) => {
            let exists = state.read(move |q| q.get_service(&sid).is_ok()).await?;
            if !exists {
                return Err(ApiError::invalid(
                    "AutoCreation.ConversationServiceSid",
                    format!("there is no service {sid}"),
                ));
            }
            sid
        }
        None => state.account.read().default_chat_service_sid,
    };
    let mut command = CreateAddressConfiguration::new(service, address_type, address)
        .auto_creation(auto.over(&AutoCreation::default()));
    command.friendly_name = friendly_name;
    let sid = state.execute(&headers, command).await?;
    let row = find_address(&state, sid).await?;
    Ok((StatusCode::CREATED, Json(render_address(&state, &row))))
}

/// `GET /v1/Configuration/Addresses`: every service's address
/// configurations, ordered by SID, paged; `Type` filters.
pub async fn list_addresses(
    State(state): State<AppState>,
    Query(mut p): Query,
) -> Result<Json<Value>, ApiError> {
    let type_raw = p.opt("Type")?;
    let filter: Option<AddressType> = type_raw
        .as_deref()
        .map(|t| parse_enum("Type", t))
        .transpose()?;
    let paging = Paging::take(&mut p)?;
    p.finish()?;
    let rows = state
        .read(move |q| {
            let mut rows: Vec<(AddressConfigurationSid, AddressConfigurationRow)> = q
                .services()
                .flat_map(|s| s.address_configurations())
                .filter(|r| filter.is_none_or(|t| r.address_type == t))
                .map(|r| (r.sid, r.clone()))
                .collect();
            rows.sort_by_key(|(sid, _)| *sid);
            rows
        })
        .await?;
    let page = paging.page_by_key(rows)?;
    let filters: Vec<(&str, String)> = type_raw.into_iter().map(|t| ("Type", t)).collect();
    let url = format!("{}/v1/Configuration/Addresses", state.base_url);
    Ok(Json(paging.answer(
        "address_configurations",
        &url,
        &filters,
        &page,
        |row| render_address(&state, row),
    )))
}

/// `GET /v1/Configuration/Addresses/{Sid}`.
pub async fn fetch_address(
    State(state): State<AppState>,
    Path(path): Path<Vec<(String, String)>>,
    Query(p): Query,
) -> Result<Json<Value>, ApiError> {
    p.finish()?;
    let row = find_address(&state, address_sid(&path)?).await?;
    Ok(Json(render_address(&state, &row)))
}

/// `POST /v1/Configuration/Addresses/{Sid}`: `FriendlyName`, the
/// `AutoCreation.*` parameters of the create (`WebhookUrl` empty: none),
/// and `AutoCreation.ConversationServiceSid`, which must be the service the
/// configuration lives in (to move it, delete it and create it in the
/// other service). Absent ones are unchanged. 200 with the configuration.
pub async fn update_address(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
    Form(mut p): Form,
) -> Result<Json<Value>, ApiError> {
    let friendly_name = p.opt("FriendlyName")?;
    let auto = take_auto_creation(&mut p)?;
    p.finish()?;
    let row = find_address(&state, address_sid(&path)?).await?;
    if auto.service.is_some_and(|s| s != row.chat_service_sid) {
        return Err(ApiError::invalid(
            "AutoCreation.ConversationServiceSid",
            format!(
                "the configuration lives in service {}: to move it, delete it and create it in the other service",
                row.chat_service_sid
            ),
        ));
    }
    let mut command = UpdateAddressConfiguration::new(row.chat_service_sid, row.sid);
    command.friendly_name = friendly_name;
    if auto.any() {
        command.auto_creation = Some(auto.over(&row.auto_creation));
    }
    state.execute(&headers, command).await?;
    let row = find_address(&state, row.sid).await?;
    Ok(Json(render_address(&state, &row)))
}

/// `DELETE /v1/Configuration/Addresses/{Sid}`: 204.
pub async fn delete_address(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    let row = find_address(&state, address_sid(&path)?).await?;
    state
        .execute(
            &headers,
            DeleteAddressConfiguration::new(row.chat_service_sid, row.sid),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
