//! Services, service configuration and webhooks (service-level and
//! conversation-scoped), roles, users and address configurations.

use events::limits::*;
use events::*;
use projections::Service;

use super::validate::{at_most, attributes, opt_text, text};
use super::{decision, not_found, own_or_any, CommandError, Cx};
use events::Decision;

use Permission::*;

/// Permissions valid in a service role.
const SERVICE_PERMISSIONS: &[Permission] = &[
    CreateConversation,
    JoinConversation,
    EditAnyUserInfo,
    EditOwnUserInfo,
];

fn is_service_permission(p: &Permission) -> bool {
    SERVICE_PERMISSIONS.contains(p)
}

/// Twilio's default roles, created with every service: (name, type, permissions).
const DEFAULT_ROLES: &[(&str, RoleType, &[Permission])] = &[
    ("service admin", RoleType::Service, SERVICE_PERMISSIONS),
    (
        "service user",
        RoleType::Service,
        &[CreateConversation, JoinConversation, EditOwnUserInfo],
    ),
    (
        "channel admin",
        RoleType::Conversation,
        &[
            AddParticipant,
            RemoveParticipant,
            SendMessage,
            SendMediaMessage,
            LeaveConversation,
            EditConversationName,
            EditConversationAttributes,
            DeleteConversation,
            EditAnyMessage,
            EditOwnMessage,
            EditAnyMessageAttributes,
            EditOwnMessageAttributes,
            DeleteAnyMessage,
            DeleteOwnMessage,
            EditAnyParticipantAttributes,
            EditOwnParticipantAttributes,
            EditNotificationLevel,
        ],
    ),
    (
        "channel user",
        RoleType::Conversation,
        &[
            SendMessage,
            SendMediaMessage,
            LeaveConversation,
            EditOwnMessage,
            EditOwnMessageAttributes,
            DeleteOwnMessage,
            EditOwnParticipantAttributes,
            EditNotificationLevel,
        ],
    ),
];

pub(super) fn create_service(cx: &mut Cx, c: &CreateService) -> Result<Decision, CommandError> {
    let friendly_name = &c.friendly_name;
    cx.host_only()?;
    text("friendly_name", friendly_name, FRIENDLY_NAME_CHARS_MAX)?;
    let service_sid = ServiceSid::derive(&cx.seed());
    let mut events = vec![Event::ServiceCreated {
        friendly_name: friendly_name.to_string(),
    }];
    let mut sids = Vec::new();
    for (name, role_type, permissions) in DEFAULT_ROLES {
        let role_sid = RoleSid::derive(&cx.seed());
        sids.push(role_sid);
        events.push(Event::RoleCreated {
            role_sid,
            friendly_name: name.to_string(),
            role_type: *role_type,
            permissions: permissions.to_vec(),
        });
    }
    events.push(Event::ServiceConfigurationUpdated {
        default_conversation_creator_role_sid: Some(sids[2]),
        default_conversation_role_sid: Some(sids[3]),
        default_chat_service_role_sid: Some(sids[1]),
    });
    Ok(decision(service_sid, None, events))
}

pub(super) fn update_service(cx: &mut Cx, c: &UpdateService) -> Result<Decision, CommandError> {
    let UpdateService {
        service,
        friendly_name,
    } = c;
    cx.service(service)?;
    cx.host_only()?;
    text("friendly_name", friendly_name, FRIENDLY_NAME_CHARS_MAX)?;
    Ok(decision(
        *service,
        None,
        vec![Event::ServiceUpdated {
            friendly_name: friendly_name.to_string(),
        }],
    ))
}

pub(super) fn delete_service(cx: &mut Cx, c: &DeleteService) -> Result<Decision, CommandError> {
    let service = &c.service;
    cx.service(service)?;
    cx.host_only()?;
    Ok(decision(*service, None, vec![Event::ServiceDeleted]))
}

fn role_of_type(
    svc: &Service,
    role: Option<RoleSid>,
    want: RoleType,
    field: &'static str,
) -> Result<(), CommandError> {
    let Some(role) = role else {
        return Ok(());
    };
    let row = svc.role(&role).ok_or_else(|| not_found("role", role))?;
    if row.role_type != want {
        return Err(CommandError::Invalid {
            field,
            reason: format!("role {role} is a {:?} role", row.role_type),
        });
    }
    Ok(())
}

/// A role given to a participant must exist and be a conversation role.
pub(super) fn conversation_role(svc: &Service, role: Option<RoleSid>) -> Result<(), CommandError> {
    role_of_type(svc, role, RoleType::Conversation, "role_sid")
}

pub(super) fn update_configuration(
    cx: &mut Cx,
    c: &UpdateServiceConfiguration,
) -> Result<Decision, CommandError> {
    let service = &c.service;
    let creator = c.default_conversation_creator_role_sid;
    let conversation = c.default_conversation_role_sid;
    let chat_service = c.default_chat_service_role_sid;
    let svc = cx.service(service)?;
    cx.host_only()?;
    role_of_type(
        svc,
        creator,
        RoleType::Conversation,
        "default_conversation_creator_role_sid",
    )?;
    role_of_type(
        svc,
        conversation,
        RoleType::Conversation,
        "default_conversation_role_sid",
    )?;
    role_of_type(
        svc,
        chat_service,
        RoleType::Service,
        "default_chat_service_role_sid",
    )?;
    // `None` leaves a role unchanged: the event carries the whole
    // configuration.
    let row = svc.row();
    let creator = creator.or(row.default_conversation_creator_role_sid);
    let conversation = conversation.or(row.default_conversation_role_sid);
    let chat_service = chat_service.or(row.default_chat_service_role_sid);
    Ok(decision(
        *service,
        None,
        vec![Event::ServiceConfigurationUpdated {
            default_conversation_creator_role_sid: creator,
            default_conversation_role_sid: conversation,
            default_chat_service_role_sid: chat_service,
        }],
    ))
}

/// Replaces the service's post-event webhook configuration: host only;
/// the URL is `http://` or `https://` with a host, at most
/// [`WEBHOOK_URL_CHARS_MAX`] characters, with no whitespace or control
/// character; the secret is 1 to [`WEBHOOK_SIGNING_SECRET_BYTES_MAX`]
/// bytes; every filter is a Twilio post-event name (repeats are dropped,
/// the event lists them in [`WebhookFilter::ALL`] order).
pub(super) fn update_webhooks(
    cx: &mut Cx,
    c: &UpdateServiceWebhooks,
) -> Result<Decision, CommandError> {
    cx.service(&c.service)?;
    cx.host_only()?;
    if let Some(url) = &c.post_webhook_url {
        webhook_url("post_webhook_url", url)?;
    }
    if let Some(secret) = &c.signing_secret {
        super::validate::bytes("signing_secret", secret, WEBHOOK_SIGNING_SECRET_BYTES_MAX)?;
    }
    let filters = webhook_filters(&c.filters)?;
    Ok(decision(
        c.service,
        None,
        vec![Event::ServiceWebhooksUpdated {
            webhooks: ServiceWebhooks {
                post_webhook_url: c.post_webhook_url.clone(),
                method: c.method,
                filters,
                signing_secret: c.signing_secret.clone(),
            },
        }],
    ))
}

/// Adds a conversation-scoped webhook: host only; the URL as for
/// [`update_webhooks`]; a webhook has 1 or more filters (Twilio's
/// post-event names) and no keywords, a trigger 1 to
/// [`WEBHOOK_TRIGGERS_PER_WEBHOOK_MAX`] keywords of 1 to
/// [`WEBHOOK_TRIGGER_CHARS_MAX`] characters without whitespace and no
/// filters; at most [`CONVERSATION_WEBHOOKS_PER_CONVERSATION_MAX`] per
/// conversation.
pub(super) fn create_conversation_webhook(
    cx: &mut Cx,
    c: &CreateConversationWebhook,
) -> Result<Decision, CommandError> {
    let svc = cx.service(&c.service)?;
    let conv = cx.conversation(svc, &c.conversation)?;
    cx.host_only()?;
    let webhook = url_webhook(
        c.target,
        c.url.clone(),
        c.method,
        &c.filters,
        c.triggers.clone(),
    )?;
    webhook_fits(conv)?;
    let conversation_sid = conv.row().sid;
    let webhook_sid = WebhookSid::derive(&cx.seed());
    Ok(decision(
        c.service,
        Some(conversation_sid),
        vec![Event::ConversationWebhookCreated {
            conversation_sid,
            webhook_sid,
            webhook,
        }],
    ))
}

/// A URL webhook or trigger checked as [`create_conversation_webhook`]
/// documents (URL, filter names, keywords, the fields of the other
/// target refused), filters resolved.
///
/// Errors: [`CommandError::Invalid`], [`CommandError::UnknownWebhookFilter`].
fn url_webhook(
    target: WebhookTarget,
    url: String,
    method: WebhookMethod,
    filter_names: &[String],
    triggers: Vec<String>,
) -> Result<ConversationWebhook, CommandError> {
    webhook_url("url", &url)?;
    let filters = webhook_filters(filter_names)?;
    let invalid = |field, reason: &str| CommandError::Invalid {
        field,
        reason: reason.to_string(),
    };
    match target {
        WebhookTarget::Webhook => {
            if filters.is_empty() {
                return Err(invalid("filters", "a webhook needs at least one filter"));
            }
            if !triggers.is_empty() {
                return Err(invalid("triggers", "only a trigger has keywords"));
            }
        }
        WebhookTarget::Trigger => {
            if triggers.is_empty() {
                return Err(invalid("triggers", "a trigger needs at least one keyword"));
            }
            if !filters.is_empty() {
                return Err(invalid("filters", "a trigger has keywords, not filters"));
            }
        }
    }
    at_most(
        "triggers",
        triggers.len(),
        WEBHOOK_TRIGGERS_PER_WEBHOOK_MAX,
        "items",
    )?;
    for t in &triggers {
        text("triggers", t, WEBHOOK_TRIGGER_CHARS_MAX)?;
        if t.chars().any(char::is_whitespace) {
            return Err(invalid("triggers", "a keyword is one word"));
        }
    }
    Ok(ConversationWebhook {
        target,
        url,
        method,
        filters,
        triggers,
    })
}

/// Updates a conversation-scoped webhook in place: host only; the fields
/// given replace the current ones, the others stay, and the result is
/// checked like a new webhook of the same target ([`url_webhook`]);
/// `flow_sid` on a URL webhook or trigger, or any URL field on a Studio
/// webhook, is refused (the target never changes).
///
/// Errors: [`CommandError::NotFound`] for an unknown conversation or
/// webhook, [`CommandError::Invalid`] and
/// [`CommandError::UnknownWebhookFilter`] for bad fields.
pub(super) fn update_conversation_webhook(
    cx: &mut Cx,
    c: &UpdateConversationWebhook,
) -> Result<Decision, CommandError> {
    let svc = cx.service(&c.service)?;
    let conv = cx.conversation(svc, &c.conversation)?;
    cx.host_only()?;
    let Some(row) = conv.webhooks().get(&c.webhook) else {
        return Err(not_found("webhook", c.webhook));
    };
    let invalid = |field, reason: &str| CommandError::Invalid {
        field,
        reason: reason.to_string(),
    };
    let webhook = match &row.webhook {
        ConversationWebhookConfig::Url(current) => {
            if c.flow_sid.is_some() {
                return Err(invalid("flow_sid", "only a studio webhook has a flow"));
            }
            let filter_names: Vec<String> = match &c.filters {
                Some(names) => names.clone(),
                None => current
                    .filters
                    .iter()
                    .map(|f| f.twilio_name().to_string())
                    .collect(),
            };
            ConversationWebhookConfig::Url(url_webhook(
                current.target,
                c.url.clone().unwrap_or_else(|| current.url.clone()),
                c.method.unwrap_or(current.method),
                &filter_names,
                c.triggers
                    .clone()
                    .unwrap_or_else(|| current.triggers.clone()),
            )?)
        }
        ConversationWebhookConfig::Studio(current) => {
            let url_field = [
                ("url", c.url.is_some()),
                ("method", c.method.is_some()),
                ("filters", c.filters.is_some()),
                ("triggers", c.triggers.is_some()),
            ]
            .into_iter()
            .find_map(|(field, set)| set.then_some(field));
            if let Some(field) = url_field {
                return Err(invalid(field, "a studio webhook has a flow, not a URL"));
            }
            ConversationWebhookConfig::Studio(StudioWebhook {
                flow_sid: c.flow_sid.unwrap_or(current.flow_sid),
                replay_after: current.replay_after,
            })
        }
    };
    let conversation_sid = conv.row().sid;
    Ok(decision(
        c.service,
        Some(conversation_sid),
        vec![Event::ConversationWebhookUpdated {
            conversation_sid,
            webhook_sid: c.webhook,
            webhook,
        }],
    ))
}

/// Adds a conversation-scoped Studio webhook (Twilio's `Target=studio`):
/// host only; it counts against
/// [`CONVERSATION_WEBHOOKS_PER_CONVERSATION_MAX`] like the others.
pub(super) fn create_conversation_studio_webhook(
    cx: &mut Cx,
    c: &CreateConversationStudioWebhook,
) -> Result<Decision, CommandError> {
    let svc = cx.service(&c.service)?;
    let conv = cx.conversation(svc, &c.conversation)?;
    cx.host_only()?;
    webhook_fits(conv)?;
    let conversation_sid = conv.row().sid;
    let studio = StudioWebhook {
        flow_sid: c.flow_sid,
        replay_after: c.replay_after,
    };
    Ok(decision(
        c.service,
        Some(conversation_sid),
        vec![studio_webhook_created(cx, conversation_sid, studio)],
    ))
}

/// One more conversation-scoped webhook fits in `conv`: at most
/// [`CONVERSATION_WEBHOOKS_PER_CONVERSATION_MAX`], every target counted.
fn webhook_fits(conv: &projections::Conversation) -> Result<(), CommandError> {
    at_most(
        "webhooks",
        conv.webhooks().len() + 1,
        CONVERSATION_WEBHOOKS_PER_CONVERSATION_MAX,
        "items",
    )
}

/// The event adding a Studio webhook to `conversation_sid`, with a fresh
/// webhook SID.
pub(super) fn studio_webhook_created(
    cx: &mut Cx,
    conversation_sid: ConversationSid,
    studio: StudioWebhook,
) -> Event {
    Event::ConversationStudioWebhookCreated {
        conversation_sid,
        webhook_sid: WebhookSid::derive(&cx.seed()),
        studio,
    }
}

/// Deletes a conversation-scoped webhook: host only.
pub(super) fn delete_conversation_webhook(
    cx: &mut Cx,
    c: &DeleteConversationWebhook,
) -> Result<Decision, CommandError> {
    let svc = cx.service(&c.service)?;
    let conv = cx.conversation(svc, &c.conversation)?;
    cx.host_only()?;
    if !conv.webhooks().contains_key(&c.webhook) {
        return Err(not_found("webhook", c.webhook));
    }
    let conversation_sid = conv.row().sid;
    Ok(decision(
        c.service,
        Some(conversation_sid),
        vec![Event::ConversationWebhookRemoved {
            conversation_sid,
            webhook_sid: c.webhook,
        }],
    ))
}

/// Twilio's post-event filter names as filters, without repeats, in
/// [`WebhookFilter::ALL`] order.
///
/// Errors: [`CommandError::UnknownWebhookFilter`] for any other name.
fn webhook_filters(names: &[String]) -> Result<Vec<WebhookFilter>, CommandError> {
    let mut filters = Vec::with_capacity(names.len());
    for name in names {
        let filter = WebhookFilter::from_twilio_name(name).ok_or_else(|| {
            CommandError::UnknownWebhookFilter {
                filter: name.clone(),
            }
        })?;
        filters.push(filter);
    }
    filters.sort_unstable();
    filters.dedup();
    Ok(filters)
}

/// An absolute `http://` or `https://` URL with a host, at most
/// [`WEBHOOK_URL_CHARS_MAX`] characters, with no whitespace or control
/// character (it goes on a request line as it is).
fn webhook_url(field: &'static str, url: &str) -> Result<(), CommandError> {
    text(field, url, WEBHOOK_URL_CHARS_MAX)?;
    let invalid = |reason: &str| CommandError::Invalid {
        field,
        reason: reason.to_string(),
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| invalid("the scheme must be http:// or https://"))?;
    if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
        return Err(invalid("the URL has no host"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("the URL holds whitespace or a control character"));
    }
    Ok(())
}

fn permissions_fit(role_type: RoleType, permissions: &[Permission]) -> Result<(), CommandError> {
    at_most(
        "permissions",
        permissions.len(),
        PERMISSIONS_PER_ROLE_MAX,
        "items",
    )?;
    let want_service = role_type == RoleType::Service;
    if let Some(p) = permissions
        .iter()
        .find(|p| is_service_permission(p) != want_service)
    {
        return Err(CommandError::Invalid {
            field: "permissions",
            reason: format!("{p:?} does not apply to a {role_type:?} role"),
        });
    }
    Ok(())
}

fn dedup(permissions: &[Permission]) -> Vec<Permission> {
    let mut v = permissions.to_vec();
    v.sort();
    v.dedup();
    v
}

pub(super) fn create_role(cx: &mut Cx, c: &CreateRole) -> Result<Decision, CommandError> {
    let CreateRole {
        service,
        friendly_name,
        role_type,
        permissions,
    } = c;
    let role_type = *role_type;
    cx.service(service)?;
    cx.host_only()?;
    text("friendly_name", friendly_name, FRIENDLY_NAME_CHARS_MAX)?;
    permissions_fit(role_type, permissions)?;
    Ok(decision(
        *service,
        None,
        vec![Event::RoleCreated {
            role_sid: RoleSid::derive(&cx.seed()),
            friendly_name: friendly_name.to_string(),
            role_type,
            permissions: dedup(permissions),
        }],
    ))
}

pub(super) fn update_role(cx: &mut Cx, c: &UpdateRole) -> Result<Decision, CommandError> {
    let UpdateRole {
        service,
        role,
        permissions,
    } = c;
    let svc = cx.service(service)?;
    cx.host_only()?;
    let row = svc.role(role).ok_or_else(|| not_found("role", role))?;
    permissions_fit(row.role_type, permissions)?;
    Ok(decision(
        *service,
        None,
        vec![Event::RoleUpdated {
            role_sid: *role,
            permissions: dedup(permissions),
        }],
    ))
}

pub(super) fn delete_role(cx: &mut Cx, c: &DeleteRole) -> Result<Decision, CommandError> {
    let DeleteRole { service, role } = c;
    let svc = cx.service(service)?;
    cx.host_only()?;
    svc.role(role).ok_or_else(|| not_found("role", role))?;
    let r = Some(*role);
    let in_use = svc.row().default_conversation_creator_role_sid == r
        || svc.row().default_conversation_role_sid == r
        || svc.row().default_chat_service_role_sid == r
        || svc.users().any(|u| u.role_sid == r)
        || svc
            .conversations()
            .any(|c| c.participants().any(|p| p.role_sid == r));
    if in_use {
        return Err(CommandError::RoleInUse {
            role: role.to_string(),
        });
    }
    Ok(decision(
        *service,
        None,
        vec![Event::RoleDeleted { role_sid: *role }],
    ))
}

/// The `UserCreated` event for a new identity, with the default service role.
pub(super) fn new_user(
    cx: &mut Cx,
    svc: &Service,
    identity: &str,
    friendly_name: Option<&str>,
    attrs: Option<&str>,
    role_sid: Option<RoleSid>,
) -> Result<(UserSid, Event), CommandError> {
    text("identity", identity, IDENTITY_CHARS_MAX)?;
    opt_text("friendly_name", friendly_name, FRIENDLY_NAME_CHARS_MAX)?;
    let attributes = attributes("attributes", attrs, USER_ATTRIBUTES_BYTES_MAX)?;
    role_of_type(svc, role_sid, RoleType::Service, "role_sid")?;
    let user_sid = UserSid::derive(&cx.seed());
    Ok((
        user_sid,
        Event::UserCreated {
            user_sid,
            identity: identity.to_string(),
            friendly_name: friendly_name.map(str::to_string),
            attributes,
            role_sid: role_sid.or(svc.row().default_chat_service_role_sid),
        },
    ))
}

pub(super) fn create_user(cx: &mut Cx, c: &CreateUser) -> Result<Decision, CommandError> {
    let service = &c.service;
    let svc = cx.service(service)?;
    cx.host_only()?;
    if svc.user_by_identity(&c.identity).is_some() {
        return Err(CommandError::UserExists {
            identity: c.identity.clone(),
        });
    }
    let (_, event) = new_user(
        cx,
        svc,
        &c.identity,
        c.friendly_name.as_deref(),
        c.attributes.as_deref(),
        c.role_sid,
    )?;
    Ok(decision(*service, None, vec![event]))
}

pub(super) fn update_user(cx: &mut Cx, c: &UpdateUser) -> Result<Decision, CommandError> {
    let (service, user, role_sid) = (&c.service, &c.user, c.role_sid);
    let (friendly_name, attrs) = (c.friendly_name.as_deref(), c.attributes.as_deref());
    let svc = cx.service(service)?;
    let row = svc.user(user).ok_or_else(|| not_found("user", user))?;
    if role_sid.is_some() {
        cx.host_only()?;
    }
    let own = cx.acting == Some(row.identity.as_str());
    cx.require_service(svc, own_or_any(own, EditOwnUserInfo, EditAnyUserInfo))?;
    opt_text("friendly_name", friendly_name, FRIENDLY_NAME_CHARS_MAX)?;
    role_of_type(svc, role_sid, RoleType::Service, "role_sid")?;
    let attributes = match attrs {
        Some(a) => attributes("attributes", Some(a), USER_ATTRIBUTES_BYTES_MAX)?,
        None => row.attributes.clone(),
    };
    Ok(decision(
        *service,
        None,
        vec![Event::UserUpdated {
            user_sid: *user,
            friendly_name: friendly_name
                .map(str::to_string)
                .or_else(|| row.friendly_name.clone()),
            attributes,
            role_sid: role_sid.or(row.role_sid),
        }],
    ))
}

pub(super) fn delete_user(cx: &mut Cx, c: &DeleteUser) -> Result<Decision, CommandError> {
    let DeleteUser { service, user } = c;
    let svc = cx.service(service)?;
    cx.host_only()?;
    svc.user(user).ok_or_else(|| not_found("user", user))?;
    Ok(decision(
        *service,
        None,
        vec![Event::UserDeleted { user_sid: *user }],
    ))
}

pub(super) fn update_user_conversation(
    cx: &mut Cx,
    c: &UpdateUserConversation,
) -> Result<Decision, CommandError> {
    let (service, user, conversation) = (&c.service, &c.user, &c.conversation);
    let level = c.notification_level;
    let svc = cx.service(service)?;
    let row = svc.user(user).ok_or_else(|| not_found("user", user))?;
    let conv = cx.conversation(svc, conversation)?;
    if conv.participant_by_identity(&row.identity).is_none() {
        return Err(not_found("participant", &row.identity));
    }
    if let Some(id) = cx.acting {
        if id != row.identity {
            return Err(CommandError::PermissionDenied {
                identity: id.to_string(),
                permission: None,
            });
        }
        cx.require_conversation(svc, conv, EditNotificationLevel)?;
    }
    Ok(decision(
        *service,
        Some(conv.row().sid),
        vec![Event::UserConversationUpdated {
            conversation_sid: conv.row().sid,
            user_sid: *user,
            notification_level: level,
        }],
    ))
}

pub(super) fn create_address_configuration(
    cx: &mut Cx,
    c: &CreateAddressConfiguration,
) -> Result<Decision, CommandError> {
    let (service, address_type, address) = (&c.service, c.address_type, c.address.as_str());
    let (friendly_name, auto_creation) = (c.friendly_name.as_deref(), &c.auto_creation);
    let svc = cx.service(service)?;
    cx.host_only()?;
    text("address", address, ADDRESS_CHARS_MAX)?;
    opt_text("friendly_name", friendly_name, FRIENDLY_NAME_CHARS_MAX)?;
    let auto_creation = auto_creation_fits(service, auto_creation)?;
    if svc.address_configuration_by_address(address).is_some() {
        return Err(CommandError::AddressConfigurationExists {
            address: address.to_string(),
        });
    }
    Ok(decision(
        *service,
        None,
        vec![Event::AddressConfigurationCreatedV2 {
            address_configuration_sid: AddressConfigurationSid::derive(&cx.seed()),
            address_type,
            address: address.to_string(),
            friendly_name: friendly_name.map(str::to_string),
            auto_creation,
        }],
    ))
}

/// Checks autocreation settings and returns them with the filters in
/// their canonical order: autocreation may only target the
/// configuration's own service (one command writes to one service, which
/// keeps services isolated), and each [`AutoCreationType`] takes only its
/// own fields:
/// - `default`: no filters or flow;
/// - `webhook`: a webhook URL (as for [`update_webhooks`]) and 1 or more
///   filters, no flow;
/// - `studio`: a flow, a retry count of at most
///   [`AUTO_CREATION_STUDIO_RETRIES_PER_CALL_MAX`], no filters.
///
/// A webhook URL with another type than `webhook` is stored and never
/// called (at most [`ADDRESS_CHARS_MAX`] bytes), as the first builds
/// stored it and as Twilio ignores it.
///
/// The method is read for type `webhook` only.
///
/// Errors: [`CommandError::Invalid`] naming the offending field.
fn auto_creation_fits(
    service: &ServiceSid,
    a: &AutoCreation,
) -> Result<AutoCreation, CommandError> {
    let invalid = |field, reason: &str| CommandError::Invalid {
        field,
        reason: reason.to_string(),
    };
    if a.conversation_service_sid.is_some_and(|s| s != *service) {
        return Err(invalid(
            "auto_creation.conversation_service_sid",
            "must be the address configuration's own service",
        ));
    }
    let mut a = a.clone();
    a.webhook_filters.sort_unstable();
    a.webhook_filters.dedup();
    let webhook = a.kind == AutoCreationType::Webhook;
    let studio = a.kind == AutoCreationType::Studio;
    match (&a.webhook_url, webhook) {
        (Some(url), true) => webhook_url("auto_creation.webhook_url", url)?,
        (None, true) => {
            return Err(invalid(
                "auto_creation.webhook_url",
                "type webhook needs a webhook URL",
            ))
        }
        // Stored and not called, as the first builds stored it (and as
        // Twilio ignores `WebhookUrl` for the other types).
        (Some(url), false) => {
            super::validate::bytes("auto_creation.webhook_url", url, ADDRESS_CHARS_MAX)?
        }
        (None, false) => {}
    }
    if webhook == a.webhook_filters.is_empty() {
        let reason = if webhook {
            "type webhook needs at least one filter"
        } else {
            "only type webhook has filters"
        };
        return Err(invalid("auto_creation.webhook_filters", reason));
    }
    if studio != a.studio_flow_sid.is_some() {
        let reason = if studio {
            "type studio needs a flow"
        } else {
            "only type studio has a flow"
        };
        return Err(invalid("auto_creation.studio_flow_sid", reason));
    }
    match a.studio_retry_count {
        Some(_) if !studio => {
            return Err(invalid(
                "auto_creation.studio_retry_count",
                "only type studio has a retry count",
            ))
        }
        Some(n) if n > AUTO_CREATION_STUDIO_RETRIES_PER_CALL_MAX => {
            return Err(invalid(
                "auto_creation.studio_retry_count",
                "Twilio's studio retry count is 0 to 3",
            ))
        }
        _ => {}
    }
    Ok(a)
}

pub(super) fn update_address_configuration(
    cx: &mut Cx,
    c: &UpdateAddressConfiguration,
) -> Result<Decision, CommandError> {
    let (service, sid) = (&c.service, &c.address_configuration);
    let (friendly_name, auto_creation) = (c.friendly_name.as_deref(), c.auto_creation.as_ref());
    let svc = cx.service(service)?;
    cx.host_only()?;
    let row = svc
        .address_configuration(sid)
        .ok_or_else(|| not_found("address configuration", sid))?;
    opt_text("friendly_name", friendly_name, FRIENDLY_NAME_CHARS_MAX)?;
    let auto_creation = match auto_creation {
        Some(a) => auto_creation_fits(service, a)?,
        None => row.auto_creation.clone(),
    };
    Ok(decision(
        *service,
        None,
        vec![Event::AddressConfigurationUpdatedV2 {
            address_configuration_sid: *sid,
            friendly_name: friendly_name
                .map(str::to_string)
                .or_else(|| row.friendly_name.clone()),
            auto_creation,
        }],
    ))
}

pub(super) fn delete_address_configuration(
    cx: &mut Cx,
    c: &DeleteAddressConfiguration,
) -> Result<Decision, CommandError> {
    let (service, sid) = (&c.service, &c.address_configuration);
    let svc = cx.service(service)?;
    cx.host_only()?;
    svc.address_configuration(sid)
        .ok_or_else(|| not_found("address configuration", sid))?;
    Ok(decision(
        *service,
        None,
        vec![Event::AddressConfigurationDeleted {
            address_configuration_sid: *sid,
        }],
    ))
}
