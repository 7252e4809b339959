//! Model-based test: random sequences of valid and invalid commands across
//! several services run against the engine and against a small reference
//! model written here (plain structs and BTreeMaps, independent of the
//! projections crate). After every step the engine's answer (the kinds of
//! the events appended, or the typed refusal) equals the model's, and the
//! engine's queries agree with the model: conversations by SID and by
//! unique name, the conversation list, participants, bindings, users, each
//! identity's conversations with unread counts in order, and message pages.
//! The model learns SIDs and timestamps from the engine's outcomes.
//! Conversation-scoped webhooks (URL, trigger and Studio ones, and those
//! an address configuration's autocreation of type `webhook` or `studio`
//! gives a new conversation), and their updates in place, are generated
//! and checked too.
//!
//! A case is a short, mostly valid prelude (conversations with
//! participants, address configurations, posts) and then up to 34 steps of
//! anything, including reopening the engine. At the end the live read
//! models equal a fold of the whole log (rows and memory) and a rebuild.
//! The 256 cases run side by side (see `common::run_cases`).

mod common;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use common::Harness;
use engine_core::log::indexes::{check_indexes, IndexView};
use engine_core::{fold_records, state_digest, CommandError, CommandOutcome};
use events::limits::*;
use events::*;
use projections::{Order, PageRequest, QueryError, ReadModels};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Pools: small, so that names, identities and bindings collide.

const IDENTITIES: &[&str] = &["alice", "bob", "carol", "dave"];
const ADDRESSES: &[&str] = &["+15550001", "+15550002", "+15550003"];
const PROXIES: &[&str] = &["+15559001", "+15559002"];
const UNIQUE_NAMES: &[&str] = &["room-a", "room-b", "room-c"];
/// Where the generated URL webhooks call (never called: no reactor runs).
const WEBHOOK_URL: &str = "https://example.com/hook";
/// Where an updated URL webhook calls (never called either).
const WEBHOOK_URL_UPDATED: &str = "https://example.com/moved";

/// The Studio flow generated webhooks name.
fn flow() -> FlowSid {
    FlowSid::derive(b"model flow")
}

// ---------------------------------------------------------------------------
// The reference model.

/// The four default roles every service gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoleKind {
    ServiceAdmin,
    ServiceUser,
    ChannelAdmin,
    ChannelUser,
}

impl RoleKind {
    fn from_name(name: &str) -> RoleKind {
        match name {
            "service admin" => RoleKind::ServiceAdmin,
            "service user" => RoleKind::ServiceUser,
            "channel admin" => RoleKind::ChannelAdmin,
            "channel user" => RoleKind::ChannelUser,
            other => panic!("unexpected default role {other:?}"),
        }
    }

    fn is_conversation_role(self) -> bool {
        matches!(self, RoleKind::ChannelAdmin | RoleKind::ChannelUser)
    }

    /// Twilio's default role permissions.
    fn grants(self, p: Permission) -> bool {
        use Permission as P;
        let service_permission = matches!(
            p,
            P::CreateConversation | P::JoinConversation | P::EditAnyUserInfo | P::EditOwnUserInfo
        );
        match self {
            RoleKind::ServiceAdmin => service_permission,
            RoleKind::ServiceUser => matches!(
                p,
                P::CreateConversation | P::JoinConversation | P::EditOwnUserInfo
            ),
            RoleKind::ChannelAdmin => !service_permission,
            RoleKind::ChannelUser => matches!(
                p,
                P::SendMessage
                    | P::SendMediaMessage
                    | P::LeaveConversation
                    | P::EditOwnMessage
                    | P::EditOwnMessageAttributes
                    | P::DeleteOwnMessage
                    | P::EditOwnParticipantAttributes
                    | P::EditNotificationLevel
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    Chat(String),
    Bind { address: String, proxy: String },
}

#[derive(Debug, Clone)]
struct MPart {
    who: Who,
    user: Option<UserSid>,
    role: Option<RoleSid>,
    attributes: String,
    horizon: Option<u64>,
}

#[derive(Debug, Clone)]
struct MMsg {
    sid: MessageSid,
    author: String,
    participant: Option<ParticipantSid>,
    body: Option<String>,
    media: usize,
    attributes: String,
}

#[derive(Debug, Clone)]
struct MConv {
    created_at: u64,
    friendly_name: Option<String>,
    unique_name: Option<String>,
    attributes: String,
    state: ConversationState,
    next_index: u64,
    last_activity: u64,
    parts: BTreeMap<ParticipantSid, MPart>,
    msgs: BTreeMap<u64, MMsg>,
    /// Its conversation-scoped webhooks (every target).
    webhooks: BTreeSet<WebhookSid>,
}

impl MConv {
    fn new(
        friendly_name: Option<String>,
        unique_name: Option<String>,
        attributes: String,
        state: ConversationState,
    ) -> Self {
        MConv {
            created_at: 0,
            friendly_name,
            unique_name,
            attributes,
            state,
            next_index: 0,
            last_activity: 0,
            parts: BTreeMap::new(),
            msgs: BTreeMap::new(),
            webhooks: BTreeSet::new(),
        }
    }

    fn is_open(&self) -> bool {
        self.state != ConversationState::Closed
    }

    fn chat(&self, identity: &str) -> Option<ParticipantSid> {
        self.parts
            .iter()
            .find(|(_, p)| p.who == Who::Chat(identity.to_string()))
            .map(|(s, _)| *s)
    }

    /// Live messages after the horizon; none without a horizon (Twilio's
    /// null count).
    fn unread(&self, horizon: Option<u64>) -> Option<u64> {
        let h = horizon?;
        Some(self.msgs.range(h.saturating_add(1)..).count() as u64)
    }
}

#[derive(Debug, Clone)]
struct MService {
    sid: ServiceSid,
    roles: BTreeMap<RoleSid, RoleKind>,
    /// Every conversation ever created here (live or deleted).
    conv_history: Vec<ConversationSid>,
    convs: BTreeMap<ConversationSid, MConv>,
    /// identity → (user, service role)
    users: BTreeMap<String, (UserSid, Option<RoleSid>)>,
    /// address → (channel, autocreation enabled, autocreation type)
    configs: BTreeMap<String, (AddressType, bool, AutoCreationType)>,
}

impl MService {
    fn role(&self, kind: RoleKind) -> RoleSid {
        *self
            .roles
            .iter()
            .find(|(_, k)| **k == kind)
            .expect("every default role exists")
            .0
    }

    fn resolve(&self, r: &ConversationRef) -> Option<ConversationSid> {
        match r {
            ConversationRef::Sid(s) => self.convs.contains_key(s).then_some(*s),
            ConversationRef::UniqueName(n) => self
                .convs
                .iter()
                .find(|(_, c)| c.unique_name.as_deref() == Some(n))
                .map(|(s, _)| *s),
        }
    }

    /// The participant holding (proxy, address) in an open conversation.
    fn open_holder(&self, proxy: &str, address: &str) -> Option<(ConversationSid, ParticipantSid)> {
        let want = Who::Bind {
            address: address.to_string(),
            proxy: proxy.to_string(),
        };
        self.convs
            .iter()
            .filter(|(_, c)| c.is_open())
            .find_map(|(cs, c)| {
                c.parts
                    .iter()
                    .find(|(_, p)| p.who == want)
                    .map(|(ps, _)| (*cs, *ps))
            })
    }

    fn user_sid(&self, user: &UserSid) -> Option<String> {
        self.users
            .iter()
            .find(|(_, (u, _))| u == user)
            .map(|(id, _)| id.clone())
    }
}

/// A refusal, as the model predicts it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MErr {
    NotFound(&'static str),
    UniqueNameConflict(String),
    /// `None`: the conversation the refused command would have created.
    BindingConflict(Option<ConversationSid>),
    ParticipantExists(String),
    UserExists(String),
    AddressConfigurationExists(String),
    TooLong(&'static str),
    Invalid(&'static str),
    NotJson(&'static str),
    Closed(ConversationSid),
    Denied(Option<Permission>),
    NoRoute,
}

fn engine_err(e: &CommandError) -> MErr {
    match e {
        CommandError::NotFound { kind, .. } => MErr::NotFound(kind),
        CommandError::UniqueNameConflict { unique_name } => {
            MErr::UniqueNameConflict(unique_name.clone())
        }
        CommandError::BindingConflict {
            conversation_sid, ..
        } => MErr::BindingConflict(Some(*conversation_sid)),
        CommandError::ParticipantExists { identity } => MErr::ParticipantExists(identity.clone()),
        CommandError::UserExists { identity } => MErr::UserExists(identity.clone()),
        CommandError::AddressConfigurationExists { address } => {
            MErr::AddressConfigurationExists(address.clone())
        }
        CommandError::TooLong { field, .. } => MErr::TooLong(field),
        CommandError::Invalid { field, .. } => MErr::Invalid(field),
        CommandError::AttributesNotJson { field, .. } => MErr::NotJson(field),
        CommandError::ConversationClosed { conversation_sid } => MErr::Closed(*conversation_sid),
        CommandError::PermissionDenied { permission, .. } => MErr::Denied(*permission),
        CommandError::NoRoute { .. } => MErr::NoRoute,
        other => panic!("the model never expects {other:?}"),
    }
}

fn agrees(model: &MErr, engine: &MErr) -> bool {
    match (model, engine) {
        (MErr::BindingConflict(None), MErr::BindingConflict(Some(_))) => true,
        _ => model == engine,
    }
}

fn text(field: &'static str, s: &str, max: usize) -> Result<(), MErr> {
    if s.is_empty() {
        Err(MErr::Invalid(field))
    } else if s.chars().count() > max {
        Err(MErr::TooLong(field))
    } else {
        Ok(())
    }
}

fn opt_text(field: &'static str, s: Option<&String>, max: usize) -> Result<(), MErr> {
    s.map_or(Ok(()), |s| text(field, s, max))
}

fn attrs(field: &'static str, s: Option<&String>, max: usize) -> Result<String, MErr> {
    match s {
        None => Ok("{}".to_string()),
        Some(s) if s.len() > max => Err(MErr::TooLong(field)),
        Some(s) if serde_json::from_str::<serde_json::Value>(s).is_err() => {
            Err(MErr::NotJson(field))
        }
        Some(s) => Ok(s.clone()),
    }
}

fn body_ok(body: Option<&String>, media: usize) -> Result<(), MErr> {
    if body.is_some_and(|b| b.len() > BODY_BYTES_MAX) {
        return Err(MErr::TooLong("body"));
    }
    if media > MEDIA_PER_MESSAGE_MAX {
        return Err(MErr::TooLong("media"));
    }
    if body.is_none_or(|b| b.is_empty()) && media == 0 {
        return Err(MErr::Invalid("body"));
    }
    Ok(())
}

fn host_only(acting: Option<&str>) -> Result<(), MErr> {
    match acting {
        None => Ok(()),
        Some(_) => Err(MErr::Denied(None)),
    }
}

fn conv_perm(s: &MService, c: &MConv, acting: Option<&str>, p: Permission) -> Result<(), MErr> {
    let Some(id) = acting else { return Ok(()) };
    let role = c.chat(id).and_then(|ps| c.parts[&ps].role);
    if role
        .and_then(|r| s.roles.get(&r))
        .is_some_and(|k| k.grants(p))
    {
        Ok(())
    } else {
        Err(MErr::Denied(Some(p)))
    }
}

fn service_perm(s: &MService, acting: Option<&str>, p: Permission) -> Result<(), MErr> {
    let Some(id) = acting else { return Ok(()) };
    let role = s.users.get(id).and_then(|(_, r)| *r);
    if role
        .and_then(|r| s.roles.get(&r))
        .is_some_and(|k| k.grants(p))
    {
        Ok(())
    } else {
        Err(MErr::Denied(Some(p)))
    }
}

/// A participant a command will add.
#[derive(Debug, Clone)]
struct NewMember {
    who: Who,
    attributes: String,
    role: Option<RoleSid>,
    new_user: bool,
}

#[derive(Default)]
struct Claims {
    identities: BTreeSet<String>,
    bindings: BTreeSet<(String, String)>,
}

/// A message a command will post (its index and SID come from the engine).
#[derive(Debug, Clone)]
struct NewMessage {
    author: String,
    participant: Option<ParticipantSid>,
    body: Option<String>,
    media: usize,
    attributes: String,
}

/// What an accepted command changes in the model.
#[derive(Debug, Clone)]
enum Change {
    Service,
    Conversation {
        svc: usize,
        conv: MConv,
        members: Vec<NewMember>,
        message: Option<NewMessage>,
    },
    UpdateConversation {
        svc: usize,
        conv: ConversationSid,
        friendly_name: Option<String>,
        unique_name: Option<String>,
        attributes: String,
        state: ConversationState,
    },
    DeleteConversation {
        svc: usize,
        conv: ConversationSid,
    },
    AddParticipant {
        svc: usize,
        conv: ConversationSid,
        member: NewMember,
    },
    RemoveParticipant {
        svc: usize,
        conv: ConversationSid,
        part: ParticipantSid,
    },
    Post {
        svc: usize,
        conv: ConversationSid,
        message: NewMessage,
    },
    Edit {
        svc: usize,
        conv: ConversationSid,
        index: u64,
        body: Option<String>,
        attributes: String,
    },
    DeleteMessage {
        svc: usize,
        conv: ConversationSid,
        index: u64,
    },
    Horizon {
        svc: usize,
        conv: ConversationSid,
        part: ParticipantSid,
        horizon: Option<u64>,
    },
    Nothing,
    User {
        svc: usize,
    },
    DeleteUser {
        svc: usize,
        identity: String,
    },
    Config {
        svc: usize,
        address: String,
        channel: AddressType,
        enabled: bool,
        kind: AutoCreationType,
    },
    Webhook {
        svc: usize,
        conv: ConversationSid,
    },
    DeleteWebhook {
        svc: usize,
        conv: ConversationSid,
        hook: WebhookSid,
    },
}

/// The targets of the conversation-scoped webhooks `outcome` created.
fn created_webhook_targets(outcome: &CommandOutcome) -> Vec<(WebhookSid, HookTarget)> {
    outcome
        .events()
        .filter_map(|e| match e {
            Event::ConversationWebhookCreated {
                webhook_sid,
                webhook,
                ..
            } => Some((
                *webhook_sid,
                match webhook.target {
                    WebhookTarget::Webhook => HookTarget::Webhook,
                    WebhookTarget::Trigger => HookTarget::Trigger,
                },
            )),
            Event::ConversationStudioWebhookCreated { webhook_sid, .. } => {
                Some((*webhook_sid, HookTarget::Studio))
            }
            _ => None,
        })
        .collect()
}

/// A conversation-scoped webhook's target, which never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HookTarget {
    Webhook,
    Trigger,
    Studio,
}

/// The conversation-scoped webhooks `outcome` created.
fn created_webhooks(outcome: &CommandOutcome) -> Vec<WebhookSid> {
    outcome
        .events()
        .filter_map(|e| match e {
            Event::ConversationWebhookCreated { webhook_sid, .. }
            | Event::ConversationStudioWebhookCreated { webhook_sid, .. } => Some(*webhook_sid),
            _ => None,
        })
        .collect()
}

struct Plan {
    kinds: Vec<&'static str>,
    change: Change,
}

fn member_kinds(members: &[NewMember], kinds: &mut Vec<&'static str>) {
    for m in members {
        if m.new_user {
            kinds.push("user_created");
        }
        kinds.push("participant_added");
    }
}

#[derive(Debug, Default)]
struct Model {
    services: Vec<MService>,
    all_convs: Vec<ConversationSid>,
    all_parts: Vec<ParticipantSid>,
    all_msgs: Vec<MessageSid>,
    all_users: Vec<UserSid>,
    all_roles: Vec<RoleSid>,
    all_webhooks: Vec<WebhookSid>,
    /// The target of each of `all_webhooks` (an update must keep to its
    /// own target's fields).
    webhook_targets: BTreeMap<WebhookSid, HookTarget>,
}

impl Model {
    fn svc(&self, sid: &ServiceSid) -> Result<usize, MErr> {
        self.services
            .iter()
            .position(|s| s.sid == *sid)
            .ok_or(MErr::NotFound("service"))
    }

    fn conv(&self, si: usize, r: &ConversationRef) -> Result<ConversationSid, MErr> {
        self.services[si]
            .resolve(r)
            .ok_or(MErr::NotFound("conversation"))
    }

    /// Validates one new participant (the engine's order of checks).
    fn member(
        &self,
        s: &MService,
        conv: Option<&MConv>,
        spec: &ParticipantSpec,
        claims: &mut Claims,
    ) -> Result<NewMember, MErr> {
        let attributes = attrs(
            "attributes",
            spec.attributes.as_ref(),
            PARTICIPANT_ATTRIBUTES_BYTES_MAX,
        )?;
        if let Some(r) = spec.role_sid {
            match s.roles.get(&r) {
                None => return Err(MErr::NotFound("role")),
                Some(k) if !k.is_conversation_role() => return Err(MErr::Invalid("role_sid")),
                Some(_) => {}
            }
        }
        let who = match &spec.kind {
            ParticipantKind::Chat { identity, .. } => {
                text("identity", identity, IDENTITY_CHARS_MAX)?;
                if conv.is_some_and(|c| c.chat(identity).is_some())
                    || claims.identities.contains(identity)
                {
                    return Err(MErr::ParticipantExists(identity.clone()));
                }
                claims.identities.insert(identity.clone());
                Who::Chat(identity.clone())
            }
            ParticipantKind::Messaging(b) => {
                text("messaging_binding.address", &b.address, ADDRESS_CHARS_MAX)?;
                text(
                    "messaging_binding.proxy_address",
                    &b.proxy_address,
                    ADDRESS_CHARS_MAX,
                )?;
                if let Some((holder, _)) = s.open_holder(&b.proxy_address, &b.address) {
                    return Err(MErr::BindingConflict(Some(holder)));
                }
                let key = (b.proxy_address.clone(), b.address.clone());
                if !claims.bindings.insert(key) {
                    return Err(MErr::BindingConflict(None));
                }
                Who::Bind {
                    address: b.address.clone(),
                    proxy: b.proxy_address.clone(),
                }
            }
        };
        let new_user = matches!(&who, Who::Chat(id) if !s.users.contains_key(id));
        Ok(NewMember {
            who,
            attributes,
            role: Some(
                spec.role_sid
                    .unwrap_or_else(|| s.role(RoleKind::ChannelUser)),
            ),
            new_user,
        })
    }

    fn create(
        &self,
        acting: Option<&str>,
        service: &ServiceSid,
        spec: &ConversationSpec,
        participants: &[ParticipantSpec],
    ) -> Result<Plan, MErr> {
        let si = self.svc(service)?;
        let s = &self.services[si];
        service_perm(s, acting, Permission::CreateConversation)?;
        opt_text(
            "friendly_name",
            spec.friendly_name.as_ref(),
            FRIENDLY_NAME_CHARS_MAX,
        )?;
        opt_text(
            "unique_name",
            spec.unique_name.as_ref(),
            UNIQUE_NAME_CHARS_MAX,
        )?;
        let attributes = attrs(
            "attributes",
            spec.attributes.as_ref(),
            CONVERSATION_ATTRIBUTES_BYTES_MAX,
        )?;
        if let Some(u) = &spec.unique_name {
            if s.resolve(&ConversationRef::UniqueName(u.clone())).is_some() {
                return Err(MErr::UniqueNameConflict(u.clone()));
            }
        }
        let mut claims = Claims::default();
        let mut members = Vec::new();
        if let Some(id) = acting {
            let me = ParticipantSpec {
                kind: ParticipantKind::Chat {
                    identity: id.to_string(),
                    projected_address: None,
                },
                attributes: None,
                role_sid: Some(s.role(RoleKind::ChannelAdmin)),
            };
            members.push(self.member(s, None, &me, &mut claims)?);
        }
        for p in participants {
            members.push(self.member(s, None, p, &mut claims)?);
        }
        let mut kinds = vec!["conversation_created"];
        member_kinds(&members, &mut kinds);
        Ok(Plan {
            kinds,
            change: Change::Conversation {
                svc: si,
                conv: MConv::new(
                    spec.friendly_name.clone(),
                    spec.unique_name.clone(),
                    attributes,
                    spec.state.unwrap_or(ConversationState::Active),
                ),
                members,
                message: None,
            },
        })
    }

    /// What the engine should answer to `command`.
    fn predict(&self, acting: Option<&str>, command: &Command) -> Result<Plan, MErr> {
        if let Some(a) = acting {
            text("acting_identity", a, IDENTITY_CHARS_MAX)?;
        }
        match command {
            Command::CreateService(CreateService { friendly_name }) => {
                host_only(acting)?;
                text("friendly_name", friendly_name, FRIENDLY_NAME_CHARS_MAX)?;
                let mut kinds = vec!["service_created"];
                kinds.extend(["role_created"; 4]);
                kinds.push("service_configuration_updated");
                Ok(Plan {
                    kinds,
                    change: Change::Service,
                })
            }
            Command::CreateConversation(CreateConversation { service, spec }) => {
                self.create(acting, service, spec, &[])
            }
            Command::CreateConversationWithParticipants(CreateConversationWithParticipants {
                service,
                spec,
                participants,
            }) => {
                if participants.len() > CONVERSATION_WITH_PARTICIPANTS_MAX {
                    return Err(MErr::TooLong("participants"));
                }
                self.create(acting, service, spec, participants)
            }
            Command::UpdateConversation(UpdateConversation {
                service,
                conversation,
                friendly_name,
                unique_name,
                attributes,
                state,
                timers: _,
            }) => {
                let si = self.svc(service)?;
                let cs = self.conv(si, conversation)?;
                let s = &self.services[si];
                let c = &s.convs[&cs];
                if friendly_name.is_some() || unique_name.is_some() {
                    conv_perm(s, c, acting, Permission::EditConversationName)?;
                }
                if attributes.is_some() || state.is_some() {
                    conv_perm(s, c, acting, Permission::EditConversationAttributes)?;
                }
                if !c.is_open() && state.is_some_and(|st| st != ConversationState::Closed) {
                    return Err(MErr::Closed(cs));
                }
                opt_text(
                    "friendly_name",
                    friendly_name.as_ref(),
                    FRIENDLY_NAME_CHARS_MAX,
                )?;
                opt_text("unique_name", unique_name.as_ref(), UNIQUE_NAME_CHARS_MAX)?;
                if let Some(u) = unique_name {
                    if s.resolve(&ConversationRef::UniqueName(u.clone()))
                        .is_some_and(|holder| holder != cs)
                    {
                        return Err(MErr::UniqueNameConflict(u.clone()));
                    }
                }
                let attributes = match attributes {
                    Some(a) => attrs("attributes", Some(a), CONVERSATION_ATTRIBUTES_BYTES_MAX)?,
                    None => c.attributes.clone(),
                };
                Ok(Plan {
                    kinds: vec!["conversation_updated"],
                    change: Change::UpdateConversation {
                        svc: si,
                        conv: cs,
                        friendly_name: friendly_name.clone().or(c.friendly_name.clone()),
                        unique_name: unique_name.clone().or(c.unique_name.clone()),
                        attributes,
                        state: state.unwrap_or(c.state),
                    },
                })
            }
            Command::DeleteConversation(DeleteConversation {
                service,
                conversation,
            }) => {
                let si = self.svc(service)?;
                let cs = self.conv(si, conversation)?;
                let s = &self.services[si];
                conv_perm(s, &s.convs[&cs], acting, Permission::DeleteConversation)?;
                Ok(Plan {
                    kinds: vec!["conversation_removed"],
                    change: Change::DeleteConversation { svc: si, conv: cs },
                })
            }
            Command::AddParticipant(AddParticipant {
                service,
                conversation,
                participant,
            }) => {
                let si = self.svc(service)?;
                let cs = self.conv(si, conversation)?;
                let s = &self.services[si];
                let c = &s.convs[&cs];
                if !c.is_open() {
                    return Err(MErr::Closed(cs));
                }
                // Joining oneself is a service permission; adding anyone
                // else a conversation one (Twilio's roles).
                if acting.is_some() && participant.kind.identity() == acting {
                    service_perm(s, acting, Permission::JoinConversation)?;
                } else {
                    conv_perm(s, c, acting, Permission::AddParticipant)?;
                }
                let member = self.member(s, Some(c), participant, &mut Claims::default())?;
                let mut kinds = Vec::new();
                member_kinds(std::slice::from_ref(&member), &mut kinds);
                Ok(Plan {
                    kinds,
                    change: Change::AddParticipant {
                        svc: si,
                        conv: cs,
                        member,
                    },
                })
            }
            Command::RemoveParticipant(RemoveParticipant {
                service,
                conversation,
                participant,
            }) => {
                let si = self.svc(service)?;
                let cs = self.conv(si, conversation)?;
                let s = &self.services[si];
                let c = &s.convs[&cs];
                if !c.parts.contains_key(participant) {
                    return Err(MErr::NotFound("participant"));
                }
                let leaving = acting.and_then(|id| c.chat(id)) == Some(*participant);
                let perm = if leaving {
                    Permission::LeaveConversation
                } else {
                    Permission::RemoveParticipant
                };
                conv_perm(s, c, acting, perm)?;
                Ok(Plan {
                    kinds: vec!["participant_removed"],
                    change: Change::RemoveParticipant {
                        svc: si,
                        conv: cs,
                        part: *participant,
                    },
                })
            }
            Command::PostMessage(PostMessage {
                service,
                conversation,
                author,
                body,
                media,
                attributes,
            }) => {
                let si = self.svc(service)?;
                let cs = self.conv(si, conversation)?;
                let s = &self.services[si];
                let c = &s.convs[&cs];
                if !c.is_open() {
                    return Err(MErr::Closed(cs));
                }
                let author = match (acting, author) {
                    (Some(id), Some(a)) if a != id => return Err(MErr::Denied(None)),
                    (Some(id), _) => id.to_string(),
                    (None, a) => a.clone().unwrap_or_else(|| "system".to_string()),
                };
                conv_perm(s, c, acting, Permission::SendMessage)?;
                if !media.is_empty() {
                    conv_perm(s, c, acting, Permission::SendMediaMessage)?;
                }
                let participant = c.chat(&author).or_else(|| {
                    c.parts
                        .iter()
                        .find(|(_, p)| matches!(&p.who, Who::Bind { address, .. } if *address == author))
                        .map(|(ps, _)| *ps)
                });
                text("author", &author, AUTHOR_CHARS_MAX)?;
                body_ok(body.as_ref(), media.len())?;
                let attributes = attrs(
                    "attributes",
                    attributes.as_ref(),
                    MESSAGE_ATTRIBUTES_BYTES_MAX,
                )?;
                let mut kinds = Vec::new();
                if c.state == ConversationState::Inactive {
                    kinds.push("conversation_updated");
                }
                kinds.push("message_added");
                Ok(Plan {
                    kinds,
                    change: Change::Post {
                        svc: si,
                        conv: cs,
                        message: NewMessage {
                            author,
                            participant,
                            body: body.clone(),
                            media: media.len(),
                            attributes,
                        },
                    },
                })
            }
            Command::EditMessage(EditMessage {
                service,
                conversation,
                message,
                body,
                attributes,
            }) => {
                let si = self.svc(service)?;
                let cs = self.conv(si, conversation)?;
                let s = &self.services[si];
                let c = &s.convs[&cs];
                if !c.is_open() {
                    return Err(MErr::Closed(cs));
                }
                let (&index, m) = c
                    .msgs
                    .iter()
                    .find(|(_, m)| m.sid == *message)
                    .ok_or(MErr::NotFound("message"))?;
                let own = acting == Some(m.author.as_str());
                if body.is_some() {
                    let p = if own {
                        Permission::EditOwnMessage
                    } else {
                        Permission::EditAnyMessage
                    };
                    conv_perm(s, c, acting, p)?;
                }
                if attributes.is_some() {
                    let p = if own {
                        Permission::EditOwnMessageAttributes
                    } else {
                        Permission::EditAnyMessageAttributes
                    };
                    conv_perm(s, c, acting, p)?;
                }
                let new_body = body.clone().or(m.body.clone());
                body_ok(new_body.as_ref(), m.media)?;
                let attributes = match attributes {
                    Some(a) => attrs("attributes", Some(a), MESSAGE_ATTRIBUTES_BYTES_MAX)?,
                    None => m.attributes.clone(),
                };
                Ok(Plan {
                    kinds: vec!["message_updated"],
                    change: Change::Edit {
                        svc: si,
                        conv: cs,
                        index,
                        body: new_body,
                        attributes,
                    },
                })
            }
            Command::DeleteMessage(DeleteMessage {
                service,
                conversation,
                message,
            }) => {
                let si = self.svc(service)?;
                let cs = self.conv(si, conversation)?;
                let s = &self.services[si];
                let c = &s.convs[&cs];
                if !c.is_open() {
                    return Err(MErr::Closed(cs));
                }
                let (index, m) = c
                    .msgs
                    .iter()
                    .find(|(_, m)| m.sid == *message)
                    .ok_or(MErr::NotFound("message"))?;
                let p = if acting == Some(m.author.as_str()) {
                    Permission::DeleteOwnMessage
                } else {
                    Permission::DeleteAnyMessage
                };
                conv_perm(s, c, acting, p)?;
                Ok(Plan {
                    kinds: vec!["message_removed"],
                    change: Change::DeleteMessage {
                        svc: si,
                        conv: cs,
                        index: *index,
                    },
                })
            }
            Command::UpdateReadHorizon(UpdateReadHorizon {
                service,
                conversation,
                participant,
                last_read_message_index,
                mode,
            }) => {
                let si = self.svc(service)?;
                let cs = self.conv(si, conversation)?;
                let c = &self.services[si].convs[&cs];
                let p = c
                    .parts
                    .get(participant)
                    .ok_or(MErr::NotFound("participant"))?;
                if acting.and_then(|id| c.chat(id)) != Some(*participant) {
                    host_only(acting)?;
                }
                // Clamped to the last index ever given; nothing while no
                // message was ever posted.
                let wanted = match c.next_index.checked_sub(1) {
                    None => None,
                    Some(last) => last_read_message_index.map(|i| i.min(last)),
                };
                let (kinds, change) = match mode {
                    HorizonMode::Advance if wanted.is_none() || wanted <= p.horizon => {
                        (vec![], Change::Nothing)
                    }
                    _ => (
                        vec!["read_horizon_updated"],
                        Change::Horizon {
                            svc: si,
                            conv: cs,
                            part: *participant,
                            horizon: wanted,
                        },
                    ),
                };
                Ok(Plan { kinds, change })
            }
            Command::CreateUser(CreateUser {
                service,
                identity,
                friendly_name,
                attributes,
                role_sid: _,
            }) => {
                let si = self.svc(service)?;
                host_only(acting)?;
                if self.services[si].users.contains_key(identity) {
                    return Err(MErr::UserExists(identity.clone()));
                }
                text("identity", identity, IDENTITY_CHARS_MAX)?;
                opt_text(
                    "friendly_name",
                    friendly_name.as_ref(),
                    FRIENDLY_NAME_CHARS_MAX,
                )?;
                attrs("attributes", attributes.as_ref(), USER_ATTRIBUTES_BYTES_MAX)?;
                Ok(Plan {
                    kinds: vec!["user_created"],
                    change: Change::User { svc: si },
                })
            }
            Command::DeleteUser(DeleteUser { service, user }) => {
                let si = self.svc(service)?;
                host_only(acting)?;
                let identity = self.services[si]
                    .user_sid(user)
                    .ok_or(MErr::NotFound("user"))?;
                Ok(Plan {
                    kinds: vec!["user_deleted"],
                    change: Change::DeleteUser { svc: si, identity },
                })
            }
            Command::CreateAddressConfiguration(CreateAddressConfiguration {
                service,
                address_type,
                address,
                friendly_name: _,
                auto_creation,
            }) => {
                let si = self.svc(service)?;
                host_only(acting)?;
                text("address", address, ADDRESS_CHARS_MAX)?;
                if self.services[si].configs.contains_key(address) {
                    return Err(MErr::AddressConfigurationExists(address.clone()));
                }
                Ok(Plan {
                    kinds: vec!["address_configuration_created_v2"],
                    change: Change::Config {
                        svc: si,
                        address: address.clone(),
                        channel: *address_type,
                        enabled: auto_creation.enabled,
                        kind: auto_creation.kind,
                    },
                })
            }
            Command::ReceiveInbound(ReceiveInbound {
                service,
                channel,
                from,
                to,
                body,
                media,
            }) => {
                host_only(acting)?;
                let si = self.svc(service)?;
                let s = &self.services[si];
                if let Some((cs, ps)) = s.open_holder(to, from) {
                    text("author", from, AUTHOR_CHARS_MAX)?;
                    body_ok(body.as_ref(), media.len())?;
                    let mut kinds = Vec::new();
                    if s.convs[&cs].state == ConversationState::Inactive {
                        kinds.push("conversation_updated");
                    }
                    kinds.push("message_added");
                    return Ok(Plan {
                        kinds,
                        change: Change::Post {
                            svc: si,
                            conv: cs,
                            message: NewMessage {
                                author: from.clone(),
                                participant: Some(ps),
                                body: body.clone(),
                                media: media.len(),
                                attributes: "{}".to_string(),
                            },
                        },
                    });
                }
                let kind = match s.configs.get(to) {
                    Some((ch, true, kind)) if ch == channel => *kind,
                    _ => return Err(MErr::NoRoute),
                };
                let spec = ParticipantSpec {
                    kind: ParticipantKind::Messaging(MessagingBinding {
                        address: from.clone(),
                        proxy_address: to.clone(),
                        projected_address: None,
                    }),
                    attributes: None,
                    role_sid: None,
                };
                let member = self.member(s, None, &spec, &mut Claims::default())?;
                text("author", from, AUTHOR_CHARS_MAX)?;
                body_ok(body.as_ref(), media.len())?;
                let mut kinds = vec!["conversation_created"];
                match kind {
                    AutoCreationType::Default => {}
                    AutoCreationType::Webhook => kinds.push("conversation_webhook_created"),
                    AutoCreationType::Studio => kinds.push("conversation_studio_webhook_created"),
                }
                kinds.extend(["participant_added", "message_added"]);
                Ok(Plan {
                    kinds,
                    change: Change::Conversation {
                        svc: si,
                        conv: MConv::new(None, None, "{}".to_string(), ConversationState::Active),
                        members: vec![member],
                        message: Some(NewMessage {
                            author: from.clone(),
                            participant: None, // the new participant, filled in on apply
                            body: body.clone(),
                            media: media.len(),
                            attributes: "{}".to_string(),
                        }),
                    },
                })
            }
            Command::CreateConversationWebhook(CreateConversationWebhook {
                service,
                conversation,
                filters,
                ..
            }) => {
                let si = self.svc(service)?;
                let cs = self.conv(si, conversation)?;
                host_only(acting)?;
                // The generator makes valid webhooks and triggers, and
                // webhooks without filters.
                if filters.is_empty()
                    && matches!(command, Command::CreateConversationWebhook(c) if c.target == WebhookTarget::Webhook)
                {
                    return Err(MErr::Invalid("filters"));
                }
                self.webhook_fits(si, cs)?;
                Ok(Plan {
                    kinds: vec!["conversation_webhook_created"],
                    change: Change::Webhook { svc: si, conv: cs },
                })
            }
            Command::CreateConversationStudioWebhook(CreateConversationStudioWebhook {
                service,
                conversation,
                ..
            }) => {
                let si = self.svc(service)?;
                let cs = self.conv(si, conversation)?;
                host_only(acting)?;
                self.webhook_fits(si, cs)?;
                Ok(Plan {
                    kinds: vec!["conversation_studio_webhook_created"],
                    change: Change::Webhook { svc: si, conv: cs },
                })
            }
            Command::DeleteConversationWebhook(DeleteConversationWebhook {
                service,
                conversation,
                webhook,
            }) => {
                let si = self.svc(service)?;
                let cs = self.conv(si, conversation)?;
                host_only(acting)?;
                if !self.services[si].convs[&cs].webhooks.contains(webhook) {
                    return Err(MErr::NotFound("webhook"));
                }
                Ok(Plan {
                    kinds: vec!["conversation_webhook_removed"],
                    change: Change::DeleteWebhook {
                        svc: si,
                        conv: cs,
                        hook: *webhook,
                    },
                })
            }
            Command::UpdateConversationWebhook(UpdateConversationWebhook {
                service,
                conversation,
                webhook,
                url,
                flow_sid,
                filters,
                ..
            }) => {
                let si = self.svc(service)?;
                let cs = self.conv(si, conversation)?;
                host_only(acting)?;
                if !self.services[si].convs[&cs].webhooks.contains(webhook) {
                    return Err(MErr::NotFound("webhook"));
                }
                // The generator sets one field: a URL, a flow or filters
                // (valid ones); each is refused on a target without it.
                let target = self.webhook_targets[webhook];
                match (target, url, flow_sid, filters) {
                    (HookTarget::Studio, Some(_), _, _) => return Err(MErr::Invalid("url")),
                    (HookTarget::Studio | HookTarget::Trigger, _, _, Some(_)) => {
                        return Err(MErr::Invalid("filters"))
                    }
                    (HookTarget::Webhook | HookTarget::Trigger, _, Some(_), _) => {
                        return Err(MErr::Invalid("flow_sid"))
                    }
                    _ => {}
                }
                Ok(Plan {
                    kinds: vec!["conversation_webhook_updated"],
                    change: Change::Nothing,
                })
            }
            other => panic!("the generator never makes {other:?}"),
        }
    }

    /// One more webhook fits in the conversation.
    fn webhook_fits(&self, si: usize, cs: ConversationSid) -> Result<(), MErr> {
        if self.services[si].convs[&cs].webhooks.len() + 1
            > CONVERSATION_WEBHOOKS_PER_CONVERSATION_MAX
        {
            return Err(MErr::TooLong("webhooks"));
        }
        Ok(())
    }

    fn learn_users(&mut self, si: usize, outcome: &CommandOutcome) {
        let role = self.services[si].role(RoleKind::ServiceUser);
        for e in outcome.events() {
            if let Event::UserCreated {
                user_sid, identity, ..
            } = e
            {
                self.services[si]
                    .users
                    .insert(identity.clone(), (*user_sid, Some(role)));
                self.all_users.push(*user_sid);
            }
        }
    }

    fn new_part(&self, si: usize, m: NewMember) -> MPart {
        let user = match &m.who {
            Who::Chat(id) => Some(self.services[si].users[id].0),
            Who::Bind { .. } => None,
        };
        MPart {
            who: m.who,
            user,
            role: m.role,
            attributes: m.attributes,
            horizon: None,
        }
    }

    /// Posts `message` at the index the engine gave it.
    fn add_message(
        &mut self,
        si: usize,
        cs: ConversationSid,
        message: NewMessage,
        outcome: &CommandOutcome,
        at: u64,
    ) -> Result<(), TestCaseError> {
        let (sid, index) = outcome
            .message()
            .map(|m| (m.message_sid, m.index))
            .expect("a message was posted");
        let c = self.services[si].convs.get_mut(&cs).unwrap();
        prop_assert_eq!(index, c.next_index, "message index");
        c.msgs.insert(
            index,
            MMsg {
                sid,
                author: message.author,
                participant: message.participant,
                body: message.body,
                media: message.media,
                attributes: message.attributes,
            },
        );
        c.next_index = index + 1;
        c.last_activity = at;
        if c.state == ConversationState::Inactive {
            c.state = ConversationState::Active;
        }
        self.all_msgs.push(sid);
        Ok(())
    }

    fn apply(&mut self, change: Change, outcome: &CommandOutcome) -> Result<(), TestCaseError> {
        let at = outcome.records.first().map_or(0, |(h, _)| h.recorded_at);
        match change {
            Change::Nothing => {}
            Change::Service => {
                let mut roles = BTreeMap::new();
                for e in outcome.events() {
                    if let Event::RoleCreated {
                        role_sid,
                        friendly_name,
                        ..
                    } = e
                    {
                        roles.insert(*role_sid, RoleKind::from_name(friendly_name));
                        self.all_roles.push(*role_sid);
                    }
                }
                self.services.push(MService {
                    sid: outcome.service_sid().expect("a service"),
                    roles,
                    conv_history: Vec::new(),
                    convs: BTreeMap::new(),
                    users: BTreeMap::new(),
                    configs: BTreeMap::new(),
                });
            }
            Change::Conversation {
                svc,
                mut conv,
                members,
                message,
            } => {
                let cs = outcome.conversation_sid().expect("a conversation");
                self.learn_users(svc, outcome);
                conv.created_at = at;
                conv.last_activity = at;
                let sids = outcome.participant_sids();
                prop_assert_eq!(sids.len(), members.len());
                for (m, ps) in members.into_iter().zip(sids.iter()) {
                    let part = self.new_part(svc, m);
                    conv.parts.insert(*ps, part);
                    self.all_parts.push(*ps);
                }
                let hooks = created_webhooks(outcome);
                conv.webhooks.extend(hooks.iter().copied());
                self.all_webhooks.extend(hooks);
                self.webhook_targets
                    .extend(created_webhook_targets(outcome));
                let s = &mut self.services[svc];
                s.convs.insert(cs, conv);
                s.conv_history.push(cs);
                self.all_convs.push(cs);
                if let Some(mut message) = message {
                    message.participant = sids.first().copied();
                    self.add_message(svc, cs, message, outcome, at)?;
                }
            }
            Change::UpdateConversation {
                svc,
                conv,
                friendly_name,
                unique_name,
                attributes,
                state,
            } => {
                let c = self.services[svc].convs.get_mut(&conv).unwrap();
                c.friendly_name = friendly_name;
                c.unique_name = unique_name;
                c.attributes = attributes;
                c.state = state;
            }
            Change::DeleteConversation { svc, conv } => {
                self.services[svc].convs.remove(&conv);
            }
            Change::AddParticipant { svc, conv, member } => {
                self.learn_users(svc, outcome);
                let ps = outcome.participant_sids()[0];
                let part = self.new_part(svc, member);
                self.services[svc]
                    .convs
                    .get_mut(&conv)
                    .unwrap()
                    .parts
                    .insert(ps, part);
                self.all_parts.push(ps);
            }
            Change::RemoveParticipant { svc, conv, part } => {
                self.services[svc]
                    .convs
                    .get_mut(&conv)
                    .unwrap()
                    .parts
                    .remove(&part);
            }
            Change::Post { svc, conv, message } => {
                self.add_message(svc, conv, message, outcome, at)?;
            }
            Change::Edit {
                svc,
                conv,
                index,
                body,
                attributes,
            } => {
                let m = self.services[svc]
                    .convs
                    .get_mut(&conv)
                    .unwrap()
                    .msgs
                    .get_mut(&index)
                    .unwrap();
                m.body = body;
                m.attributes = attributes;
            }
            Change::DeleteMessage { svc, conv, index } => {
                self.services[svc]
                    .convs
                    .get_mut(&conv)
                    .unwrap()
                    .msgs
                    .remove(&index);
            }
            Change::Horizon {
                svc,
                conv,
                part,
                horizon,
            } => {
                self.services[svc]
                    .convs
                    .get_mut(&conv)
                    .unwrap()
                    .parts
                    .get_mut(&part)
                    .unwrap()
                    .horizon = horizon;
            }
            Change::User { svc } => self.learn_users(svc, outcome),
            Change::DeleteUser { svc, identity } => {
                self.services[svc].users.remove(&identity);
            }
            Change::Config {
                svc,
                address,
                channel,
                enabled,
                kind,
            } => {
                self.services[svc]
                    .configs
                    .insert(address, (channel, enabled, kind));
            }
            Change::Webhook { svc, conv } => {
                let hooks = created_webhooks(outcome);
                prop_assert_eq!(hooks.len(), 1);
                self.services[svc]
                    .convs
                    .get_mut(&conv)
                    .unwrap()
                    .webhooks
                    .extend(hooks.iter().copied());
                self.all_webhooks.extend(hooks);
                self.webhook_targets
                    .extend(created_webhook_targets(outcome));
            }
            Change::DeleteWebhook { svc, conv, hook } => {
                self.services[svc]
                    .convs
                    .get_mut(&conv)
                    .unwrap()
                    .webhooks
                    .remove(&hook);
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Generated operations, resolved against the model into commands.

#[derive(Debug, Clone)]
enum SvcPick {
    Idx(usize),
    Bogus,
}

#[derive(Debug, Clone)]
enum ConvPick {
    /// A live conversation of the command's service (else as `Stale`).
    Own(usize),
    /// A conversation of the command's service, live or deleted (else as `Any`).
    Stale(usize),
    /// Any conversation ever created, in any service.
    Any(usize),
    /// By unique name.
    Unique(usize),
    Bogus,
}

#[derive(Debug, Clone)]
enum Pick {
    /// One of the resolved conversation's (or service's) own.
    Own(usize),
    /// Any ever created, in any service.
    Any(usize),
    Bogus,
}

#[derive(Debug, Clone)]
enum Name {
    Text(u8),
    Empty,
    TooLong,
}

#[derive(Debug, Clone)]
enum Attr {
    Json(u8),
    NotJson,
    TooLong,
}

#[derive(Debug, Clone)]
enum Body {
    Absent,
    Text(u8),
    Empty,
    TooLong,
}

#[derive(Debug, Clone)]
enum Ident {
    Pool(usize),
    Empty,
    TooLong,
}

#[derive(Debug, Clone)]
enum Uniq {
    Pool(usize),
    Empty,
    TooLong,
}

#[derive(Debug, Clone)]
enum Author {
    Default,
    Identity(usize),
    Address(usize),
    Empty,
}

#[derive(Debug, Clone)]
enum RolePick {
    Default,
    ChannelAdmin,
    ChannelUser,
    /// A service role: not valid for a participant.
    ServiceRole,
    /// A role of another service.
    Foreign,
}

#[derive(Debug, Clone)]
enum WhoGen {
    Chat(Ident),
    Bind { address: usize, proxy: usize },
    EmptyAddress,
    LongProxy,
}

#[derive(Debug, Clone)]
struct PartGen {
    who: WhoGen,
    attrs: Option<Attr>,
    role: RolePick,
}

/// A generated update of a conversation-scoped webhook: one field.
#[derive(Debug, Clone, Copy)]
enum HookEdit {
    /// A new URL (refused on a Studio webhook).
    Url,
    /// A new flow (refused on a URL webhook or trigger).
    Flow,
    /// New filters (refused on a Studio webhook and on a trigger).
    Filters,
}

/// A generated conversation-scoped webhook.
#[derive(Debug, Clone, Copy)]
enum HookGen {
    /// `Target=webhook` with a filter.
    Webhook,
    /// `Target=webhook` without filters: refused.
    NoFilters,
    /// `Target=trigger` with a keyword.
    Trigger,
    /// `Target=studio`.
    Studio,
}

#[derive(Debug, Clone)]
enum Op {
    CreateService(Name),
    CreateConversation {
        svc: SvcPick,
        acting: Option<usize>,
        friendly: Option<Name>,
        unique: Option<Uniq>,
        attrs: Option<Attr>,
        state: Option<ConversationState>,
        /// `Some`: CreateConversationWithParticipants.
        with: Option<Vec<PartGen>>,
    },
    UpdateConversation {
        svc: SvcPick,
        acting: Option<usize>,
        conv: ConvPick,
        friendly: Option<Name>,
        unique: Option<Uniq>,
        attrs: Option<Attr>,
        state: Option<ConversationState>,
    },
    DeleteConversation {
        svc: SvcPick,
        acting: Option<usize>,
        conv: ConvPick,
    },
    AddParticipant {
        svc: SvcPick,
        acting: Option<usize>,
        conv: ConvPick,
        part: PartGen,
    },
    RemoveParticipant {
        svc: SvcPick,
        acting: Option<usize>,
        conv: ConvPick,
        part: Pick,
    },
    PostMessage {
        svc: SvcPick,
        acting: Option<usize>,
        conv: ConvPick,
        author: Author,
        body: Body,
        media: usize,
        attrs: Option<Attr>,
    },
    EditMessage {
        svc: SvcPick,
        acting: Option<usize>,
        conv: ConvPick,
        msg: Pick,
        body: Option<Body>,
        attrs: Option<Attr>,
    },
    DeleteMessage {
        svc: SvcPick,
        acting: Option<usize>,
        conv: ConvPick,
        msg: Pick,
    },
    Horizon {
        svc: SvcPick,
        acting: Option<usize>,
        conv: ConvPick,
        part: Pick,
        index: Option<u64>,
        mode: HorizonMode,
    },
    CreateUser {
        svc: SvcPick,
        acting: Option<usize>,
        identity: Ident,
        attrs: Option<Attr>,
    },
    DeleteUser {
        svc: SvcPick,
        acting: Option<usize>,
        user: Pick,
    },
    CreateAddressConfiguration {
        svc: SvcPick,
        proxy: usize,
        channel: AddressType,
        enabled: bool,
        kind: AutoCreationType,
    },
    CreateWebhook {
        svc: SvcPick,
        acting: Option<usize>,
        conv: ConvPick,
        target: HookGen,
    },
    DeleteWebhook {
        svc: SvcPick,
        acting: Option<usize>,
        conv: ConvPick,
        hook: Pick,
    },
    UpdateWebhook {
        svc: SvcPick,
        acting: Option<usize>,
        conv: ConvPick,
        hook: Pick,
        edit: HookEdit,
    },
    Inbound {
        svc: SvcPick,
        channel: AddressType,
        from: usize,
        to: usize,
        body: Body,
    },
    Reopen,
}

fn name_text(n: &Name) -> String {
    match n {
        Name::Text(i) => format!("Room {i}"),
        Name::Empty => String::new(),
        Name::TooLong => "é".repeat(FRIENDLY_NAME_CHARS_MAX + 1),
    }
}

fn attr_text(a: &Attr) -> String {
    match a {
        Attr::Json(i) => format!("{{\"n\":{i}}}"),
        Attr::NotJson => "{oops".to_string(),
        // Over every attributes limit (the largest is a conversation's).
        Attr::TooLong => format!("\"{}\"", "x".repeat(CONVERSATION_ATTRIBUTES_BYTES_MAX)),
    }
}

fn body_text(b: &Body) -> Option<String> {
    match b {
        Body::Absent => None,
        Body::Text(i) => Some(format!("hello {i}")),
        Body::Empty => Some(String::new()),
        Body::TooLong => Some("b".repeat(BODY_BYTES_MAX + 1)),
    }
}

fn ident_text(i: &Ident) -> String {
    match i {
        Ident::Pool(i) => IDENTITIES[i % IDENTITIES.len()].to_string(),
        Ident::Empty => String::new(),
        Ident::TooLong => "i".repeat(IDENTITY_CHARS_MAX + 1),
    }
}

fn uniq_text(u: &Uniq) -> String {
    match u {
        Uniq::Pool(i) => UNIQUE_NAMES[i % UNIQUE_NAMES.len()].to_string(),
        Uniq::Empty => String::new(),
        Uniq::TooLong => "ü".repeat(UNIQUE_NAME_CHARS_MAX + 1),
    }
}

fn pick<T: Copy>(items: &[T], i: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[i % items.len()])
}

impl Model {
    fn service_sid(&self, p: &SvcPick) -> ServiceSid {
        match p {
            SvcPick::Idx(i) => self.services[i % self.services.len()].sid,
            SvcPick::Bogus => ServiceSid::derive(b"no such service"),
        }
    }

    fn conv_ref(&self, svc: &ServiceSid, p: &ConvPick) -> ConversationRef {
        let bogus = ConversationSid::derive(b"no such conversation");
        let (live, history): (Vec<ConversationSid>, Vec<ConversationSid>) = self
            .services
            .iter()
            .find(|s| s.sid == *svc)
            .map(|s| (s.convs.keys().copied().collect(), s.conv_history.clone()))
            .unwrap_or_default();
        let sid = match p {
            ConvPick::Own(i) => pick(&live, *i)
                .or(pick(&history, *i))
                .or(pick(&self.all_convs, *i)),
            ConvPick::Stale(i) => pick(&history, *i).or(pick(&self.all_convs, *i)),
            ConvPick::Any(i) => pick(&self.all_convs, *i),
            ConvPick::Unique(i) => {
                return ConversationRef::UniqueName(UNIQUE_NAMES[i % UNIQUE_NAMES.len()].into())
            }
            ConvPick::Bogus => None,
        };
        ConversationRef::Sid(sid.unwrap_or(bogus))
    }

    fn resolved(&self, svc: &ServiceSid, r: &ConversationRef) -> Option<&MConv> {
        let s = self.services.iter().find(|s| s.sid == *svc)?;
        s.convs.get(&s.resolve(r)?)
    }

    fn part_sid(&self, svc: &ServiceSid, r: &ConversationRef, p: &Pick) -> ParticipantSid {
        let own: Vec<ParticipantSid> = self
            .resolved(svc, r)
            .map(|c| c.parts.keys().copied().collect())
            .unwrap_or_default();
        let sid = match p {
            Pick::Own(i) => pick(&own, *i).or(pick(&self.all_parts, *i)),
            Pick::Any(i) => pick(&self.all_parts, *i),
            Pick::Bogus => None,
        };
        sid.unwrap_or_else(|| ParticipantSid::derive(b"no such participant"))
    }

    fn msg_sid(&self, svc: &ServiceSid, r: &ConversationRef, p: &Pick) -> MessageSid {
        let own: Vec<MessageSid> = self
            .resolved(svc, r)
            .map(|c| c.msgs.values().map(|m| m.sid).collect())
            .unwrap_or_default();
        let sid = match p {
            Pick::Own(i) => pick(&own, *i).or(pick(&self.all_msgs, *i)),
            Pick::Any(i) => pick(&self.all_msgs, *i),
            Pick::Bogus => None,
        };
        sid.unwrap_or_else(|| MessageSid::derive(b"no such message"))
    }

    fn user_sid(&self, svc: &ServiceSid, p: &Pick) -> UserSid {
        let own: Vec<UserSid> = self
            .services
            .iter()
            .find(|s| s.sid == *svc)
            .map(|s| s.users.values().map(|(u, _)| *u).collect())
            .unwrap_or_default();
        let sid = match p {
            Pick::Own(i) => pick(&own, *i).or(pick(&self.all_users, *i)),
            Pick::Any(i) => pick(&self.all_users, *i),
            Pick::Bogus => None,
        };
        sid.unwrap_or_else(|| UserSid::derive(b"no such user"))
    }

    fn role_pick(&self, svc: &ServiceSid, r: &RolePick) -> Option<RoleSid> {
        let s = self.services.iter().find(|s| s.sid == *svc);
        match r {
            RolePick::Default => None,
            RolePick::ChannelAdmin => s.map(|s| s.role(RoleKind::ChannelAdmin)),
            RolePick::ChannelUser => s.map(|s| s.role(RoleKind::ChannelUser)),
            RolePick::ServiceRole => s.map(|s| s.role(RoleKind::ServiceUser)),
            RolePick::Foreign => Some(
                self.services
                    .iter()
                    .find(|o| o.sid != *svc)
                    .map(|o| o.role(RoleKind::ChannelUser))
                    .unwrap_or_else(|| RoleSid::derive(b"no such role")),
            ),
        }
    }

    fn participant_spec(&self, svc: &ServiceSid, g: &PartGen) -> ParticipantSpec {
        let kind = match &g.who {
            WhoGen::Chat(i) => ParticipantKind::Chat {
                identity: ident_text(i),
                projected_address: None,
            },
            WhoGen::Bind { address, proxy } => ParticipantKind::Messaging(MessagingBinding {
                address: ADDRESSES[address % ADDRESSES.len()].to_string(),
                proxy_address: PROXIES[proxy % PROXIES.len()].to_string(),
                projected_address: None,
            }),
            WhoGen::EmptyAddress => ParticipantKind::Messaging(MessagingBinding {
                address: String::new(),
                proxy_address: PROXIES[0].to_string(),
                projected_address: None,
            }),
            WhoGen::LongProxy => ParticipantKind::Messaging(MessagingBinding {
                address: ADDRESSES[0].to_string(),
                proxy_address: "9".repeat(ADDRESS_CHARS_MAX + 1),
                projected_address: None,
            }),
        };
        ParticipantSpec {
            kind,
            attributes: g.attrs.as_ref().map(attr_text),
            role_sid: self.role_pick(svc, &g.role),
        }
    }

    /// The acting identity and command an operation stands for.
    fn build(&self, op: &Op) -> (Option<String>, Command) {
        let acting_of = |a: &Option<usize>| a.map(|i| IDENTITIES[i % IDENTITIES.len()].to_string());
        match op {
            Op::Reopen => unreachable!("handled by the runner"),
            Op::CreateService(n) => (None, CreateService::new(name_text(n)).into()),
            Op::CreateConversation {
                svc,
                acting,
                friendly,
                unique,
                attrs,
                state,
                with,
            } => {
                let service = self.service_sid(svc);
                let spec = ConversationSpec {
                    friendly_name: friendly.as_ref().map(name_text),
                    unique_name: unique.as_ref().map(uniq_text),
                    attributes: attrs.as_ref().map(attr_text),
                    state: *state,
                    ..Default::default()
                };
                let command = match with {
                    None => CreateConversation::with_spec(service, spec).into(),
                    Some(parts) => Command::CreateConversationWithParticipants(
                        CreateConversationWithParticipants {
                            service,
                            spec,
                            participants: parts
                                .iter()
                                .map(|g| self.participant_spec(&service, g))
                                .collect(),
                        },
                    ),
                };
                (acting_of(acting), command)
            }
            Op::UpdateConversation {
                svc,
                acting,
                conv,
                friendly,
                unique,
                attrs,
                state,
            } => {
                let service = self.service_sid(svc);
                (
                    acting_of(acting),
                    Command::UpdateConversation(UpdateConversation {
                        service,
                        conversation: self.conv_ref(&service, conv),
                        friendly_name: friendly.as_ref().map(name_text),
                        unique_name: unique.as_ref().map(uniq_text),
                        attributes: attrs.as_ref().map(attr_text),
                        state: *state,
                        timers: None,
                    }),
                )
            }
            Op::DeleteConversation { svc, acting, conv } => {
                let service = self.service_sid(svc);
                (
                    acting_of(acting),
                    DeleteConversation::new(service, self.conv_ref(&service, conv)).into(),
                )
            }
            Op::AddParticipant {
                svc,
                acting,
                conv,
                part,
            } => {
                let service = self.service_sid(svc);
                (
                    acting_of(acting),
                    AddParticipant::new(
                        service,
                        self.conv_ref(&service, conv),
                        self.participant_spec(&service, part),
                    )
                    .into(),
                )
            }
            Op::RemoveParticipant {
                svc,
                acting,
                conv,
                part,
            } => {
                let service = self.service_sid(svc);
                let conversation = self.conv_ref(&service, conv);
                let participant = self.part_sid(&service, &conversation, part);
                (
                    acting_of(acting),
                    RemoveParticipant::new(service, conversation, participant).into(),
                )
            }
            Op::PostMessage {
                svc,
                acting,
                conv,
                author,
                body,
                media,
                attrs,
            } => {
                let service = self.service_sid(svc);
                let author = match author {
                    Author::Default => None,
                    Author::Identity(i) => Some(IDENTITIES[i % IDENTITIES.len()].to_string()),
                    Author::Address(i) => Some(ADDRESSES[i % ADDRESSES.len()].to_string()),
                    Author::Empty => Some(String::new()),
                };
                (
                    acting_of(acting),
                    Command::PostMessage(PostMessage {
                        service,
                        conversation: self.conv_ref(&service, conv),
                        author,
                        body: body_text(body),
                        media: common::media(*media),
                        attributes: attrs.as_ref().map(attr_text),
                    }),
                )
            }
            Op::EditMessage {
                svc,
                acting,
                conv,
                msg,
                body,
                attrs,
            } => {
                let service = self.service_sid(svc);
                let conversation = self.conv_ref(&service, conv);
                let message = self.msg_sid(&service, &conversation, msg);
                (
                    acting_of(acting),
                    Command::EditMessage(EditMessage {
                        service,
                        conversation,
                        message,
                        body: body.as_ref().and_then(body_text),
                        attributes: attrs.as_ref().map(attr_text),
                    }),
                )
            }
            Op::DeleteMessage {
                svc,
                acting,
                conv,
                msg,
            } => {
                let service = self.service_sid(svc);
                let conversation = self.conv_ref(&service, conv);
                let message = self.msg_sid(&service, &conversation, msg);
                (
                    acting_of(acting),
                    DeleteMessage::new(service, conversation, message).into(),
                )
            }
            Op::Horizon {
                svc,
                acting,
                conv,
                part,
                index,
                mode,
            } => {
                let service = self.service_sid(svc);
                let conversation = self.conv_ref(&service, conv);
                let participant = self.part_sid(&service, &conversation, part);
                (
                    acting_of(acting),
                    Command::UpdateReadHorizon(UpdateReadHorizon {
                        service,
                        conversation,
                        participant,
                        last_read_message_index: *index,
                        mode: *mode,
                    }),
                )
            }
            Op::CreateUser {
                svc,
                acting,
                identity,
                attrs,
            } => (
                acting_of(acting),
                Command::CreateUser(CreateUser {
                    service: self.service_sid(svc),
                    identity: ident_text(identity),
                    friendly_name: None,
                    attributes: attrs.as_ref().map(attr_text),
                    role_sid: None,
                }),
            ),
            Op::DeleteUser { svc, acting, user } => {
                let service = self.service_sid(svc);
                (
                    acting_of(acting),
                    DeleteUser::new(service, self.user_sid(&service, user)).into(),
                )
            }
            Op::CreateAddressConfiguration {
                svc,
                proxy,
                channel,
                enabled,
                kind,
            } => {
                let typed = match kind {
                    AutoCreationType::Default => AutoCreation::enabled(),
                    AutoCreationType::Webhook => {
                        AutoCreation::webhook(WEBHOOK_URL, [WebhookFilter::OnMessageAdded])
                    }
                    AutoCreationType::Studio => AutoCreation::studio(flow()),
                };
                (
                    None,
                    CreateAddressConfiguration::new(
                        self.service_sid(svc),
                        *channel,
                        PROXIES[proxy % PROXIES.len()],
                    )
                    .auto_creation(AutoCreation {
                        enabled: *enabled,
                        ..typed
                    })
                    .into(),
                )
            }
            Op::CreateWebhook {
                svc,
                acting,
                conv,
                target,
            } => {
                let service = self.service_sid(svc);
                let conversation = self.conv_ref(&service, conv);
                let url = |t| {
                    CreateConversationWebhook::new(service, conversation.clone(), t, WEBHOOK_URL)
                };
                let command: Command = match target {
                    HookGen::Webhook => url(WebhookTarget::Webhook)
                        .filters(["onMessageAdded"])
                        .into(),
                    HookGen::NoFilters => url(WebhookTarget::Webhook).into(),
                    HookGen::Trigger => url(WebhookTarget::Trigger).triggers(["help"]).into(),
                    HookGen::Studio => {
                        CreateConversationStudioWebhook::new(service, conversation.clone(), flow())
                            .into()
                    }
                };
                (acting_of(acting), command)
            }
            Op::DeleteWebhook {
                svc,
                acting,
                conv,
                hook,
            } => {
                let service = self.service_sid(svc);
                let conversation = self.conv_ref(&service, conv);
                let own: Vec<WebhookSid> = self
                    .resolved(&service, &conversation)
                    .map(|c| c.webhooks.iter().copied().collect())
                    .unwrap_or_default();
                let webhook = match hook {
                    Pick::Own(i) => pick(&own, *i).or(pick(&self.all_webhooks, *i)),
                    Pick::Any(i) => pick(&self.all_webhooks, *i),
                    Pick::Bogus => None,
                }
                .unwrap_or_else(|| WebhookSid::derive(b"no such webhook"));
                (
                    acting_of(acting),
                    DeleteConversationWebhook::new(service, conversation, webhook).into(),
                )
            }
            Op::UpdateWebhook {
                svc,
                acting,
                conv,
                hook,
                edit,
            } => {
                let service = self.service_sid(svc);
                let conversation = self.conv_ref(&service, conv);
                let own: Vec<WebhookSid> = self
                    .resolved(&service, &conversation)
                    .map(|c| c.webhooks.iter().copied().collect())
                    .unwrap_or_default();
                let webhook = match hook {
                    Pick::Own(i) => pick(&own, *i).or(pick(&self.all_webhooks, *i)),
                    Pick::Any(i) => pick(&self.all_webhooks, *i),
                    Pick::Bogus => None,
                }
                .unwrap_or_else(|| WebhookSid::derive(b"no such webhook"));
                let update = UpdateConversationWebhook::new(service, conversation, webhook);
                let update = match edit {
                    HookEdit::Url => update.url(WEBHOOK_URL_UPDATED),
                    HookEdit::Flow => update.flow_sid(FlowSid::derive(b"another flow")),
                    HookEdit::Filters => update.filters(["onMessageAdded", "onMessageRemoved"]),
                };
                (acting_of(acting), update.into())
            }
            Op::Inbound {
                svc,
                channel,
                from,
                to,
                body,
            } => (
                None,
                Command::ReceiveInbound(ReceiveInbound {
                    service: self.service_sid(svc),
                    channel: *channel,
                    from: ADDRESSES[from % ADDRESSES.len()].to_string(),
                    to: PROXIES[to % PROXIES.len()].to_string(),
                    body: body_text(body),
                    media: Vec::new(),
                }),
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// Strategies.

/// Mostly the first service, so that its conversations fill up.
fn svc_pick() -> impl Strategy<Value = SvcPick> {
    prop_oneof![
        8 => Just(SvcPick::Idx(0)),
        3 => Just(SvcPick::Idx(1)),
        2 => (2usize..8).prop_map(SvcPick::Idx),
        1 => Just(SvcPick::Bogus),
    ]
}

fn conv_pick() -> impl Strategy<Value = ConvPick> {
    prop_oneof![
        16 => (0usize..16).prop_map(ConvPick::Own),
        2 => (0usize..16).prop_map(ConvPick::Stale),
        2 => (0usize..16).prop_map(ConvPick::Any),
        2 => (0usize..8).prop_map(ConvPick::Unique),
        1 => Just(ConvPick::Bogus),
    ]
}

fn item_pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        8 => (0usize..16).prop_map(Pick::Own),
        2 => (0usize..16).prop_map(Pick::Any),
        1 => Just(Pick::Bogus),
    ]
}

/// An autocreation type, mostly `default`.
fn auto_kind() -> impl Strategy<Value = AutoCreationType> {
    prop_oneof![
        2 => Just(AutoCreationType::Default),
        1 => Just(AutoCreationType::Webhook),
        1 => Just(AutoCreationType::Studio),
    ]
}

fn acting() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![3 => Just(None), 1 => (0usize..IDENTITIES.len()).prop_map(Some)]
}

fn name() -> impl Strategy<Value = Name> {
    prop_oneof![18 => (0u8..4).prop_map(Name::Text), 1 => Just(Name::Empty), 1 => Just(Name::TooLong)]
}

fn opt_name() -> impl Strategy<Value = Option<Name>> {
    prop_oneof![2 => Just(None), 1 => name().prop_map(Some)]
}

fn opt_attr() -> impl Strategy<Value = Option<Attr>> {
    prop_oneof![
        16 => Just(None),
        8 => (0u8..4).prop_map(|i| Some(Attr::Json(i))),
        1 => Just(Some(Attr::NotJson)),
        1 => Just(Some(Attr::TooLong)),
    ]
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        1 => Just(Body::Absent),
        10 => (0u8..8).prop_map(Body::Text),
        1 => Just(Body::Empty),
        1 => Just(Body::TooLong),
    ]
}

fn ident() -> impl Strategy<Value = Ident> {
    prop_oneof![
        24 => (0usize..IDENTITIES.len()).prop_map(Ident::Pool),
        1 => Just(Ident::Empty),
        1 => Just(Ident::TooLong),
    ]
}

fn opt_uniq() -> impl Strategy<Value = Option<Uniq>> {
    prop_oneof![
        8 => Just(None),
        8 => (0usize..UNIQUE_NAMES.len()).prop_map(|i| Some(Uniq::Pool(i))),
        1 => Just(Some(Uniq::Empty)),
        1 => Just(Some(Uniq::TooLong)),
    ]
}

fn opt_state() -> impl Strategy<Value = Option<ConversationState>> {
    prop_oneof![
        6 => Just(None),
        2 => Just(Some(ConversationState::Active)),
        2 => Just(Some(ConversationState::Inactive)),
        1 => Just(Some(ConversationState::Initializing)),
        2 => Just(Some(ConversationState::Closed)),
    ]
}

fn part_gen() -> impl Strategy<Value = PartGen> {
    let who = prop_oneof![
        6 => ident().prop_map(WhoGen::Chat),
        6 => (0usize..ADDRESSES.len(), 0usize..PROXIES.len())
            .prop_map(|(address, proxy)| WhoGen::Bind { address, proxy }),
        1 => Just(WhoGen::EmptyAddress),
        1 => Just(WhoGen::LongProxy),
    ];
    let role = prop_oneof![
        12 => Just(RolePick::Default),
        2 => Just(RolePick::ChannelAdmin),
        1 => Just(RolePick::ChannelUser),
        1 => Just(RolePick::ServiceRole),
        1 => Just(RolePick::Foreign),
    ];
    let attrs = prop_oneof![10 => Just(None), 1 => opt_attr()];
    (who, attrs, role).prop_map(|(who, attrs, role)| PartGen { who, attrs, role })
}

fn channel() -> impl Strategy<Value = AddressType> {
    prop_oneof![4 => Just(AddressType::Sms), 1 => Just(AddressType::Whatsapp)]
}

fn op() -> impl Strategy<Value = Op> {
    let create = (
        svc_pick(),
        prop_oneof![4 => Just(None), 1 => acting()],
        opt_name(),
        opt_uniq(),
        opt_attr(),
        opt_state(),
        prop_oneof![
            6 => Just(None),
            4 => prop::collection::vec(part_gen(), 0..=4).prop_map(Some),
            1 => prop::collection::vec(part_gen(), 11..=11).prop_map(Some),
        ],
    )
        .prop_map(|(svc, acting, friendly, unique, attrs, state, with)| {
            Op::CreateConversation {
                svc,
                acting,
                friendly,
                unique,
                attrs,
                state,
                with,
            }
        });
    let update = (
        svc_pick(),
        acting(),
        conv_pick(),
        opt_name(),
        opt_uniq(),
        opt_attr(),
        opt_state(),
    )
        .prop_map(|(svc, acting, conv, friendly, unique, attrs, state)| {
            Op::UpdateConversation {
                svc,
                acting,
                conv,
                friendly,
                unique,
                attrs,
                state,
            }
        });
    let delete = (svc_pick(), acting(), conv_pick())
        .prop_map(|(svc, acting, conv)| Op::DeleteConversation { svc, acting, conv });
    let add =
        (svc_pick(), acting(), conv_pick(), part_gen()).prop_map(|(svc, acting, conv, part)| {
            Op::AddParticipant {
                svc,
                acting,
                conv,
                part,
            }
        });
    let remove =
        (svc_pick(), acting(), conv_pick(), item_pick()).prop_map(|(svc, acting, conv, part)| {
            Op::RemoveParticipant {
                svc,
                acting,
                conv,
                part,
            }
        });
    let author = prop_oneof![
        3 => Just(Author::Default),
        4 => (0usize..IDENTITIES.len()).prop_map(Author::Identity),
        2 => (0usize..ADDRESSES.len()).prop_map(Author::Address),
        1 => Just(Author::Empty),
    ];
    let media =
        prop_oneof![10 => Just(0usize), 2 => 1usize..=2, 1 => Just(MEDIA_PER_MESSAGE_MAX + 1)];
    let post = (
        svc_pick(),
        acting(),
        conv_pick(),
        author,
        body(),
        media,
        opt_attr(),
    )
        .prop_map(
            |(svc, acting, conv, author, body, media, attrs)| Op::PostMessage {
                svc,
                acting,
                conv,
                author,
                body,
                media,
                attrs,
            },
        );
    let edit = (
        svc_pick(),
        acting(),
        conv_pick(),
        item_pick(),
        prop_oneof![1 => Just(None), 3 => body().prop_map(Some)],
        opt_attr(),
    )
        .prop_map(|(svc, acting, conv, msg, body, attrs)| Op::EditMessage {
            svc,
            acting,
            conv,
            msg,
            body,
            attrs,
        });
    let delete_message =
        (svc_pick(), acting(), conv_pick(), item_pick()).prop_map(|(svc, acting, conv, msg)| {
            Op::DeleteMessage {
                svc,
                acting,
                conv,
                msg,
            }
        });
    let horizon = (
        svc_pick(),
        prop_oneof![4 => Just(None), 1 => acting()],
        conv_pick(),
        item_pick(),
        prop_oneof![1 => Just(None), 5 => (0u64..6).prop_map(Some), 1 => Just(Some(1_000))],
        prop_oneof![Just(HorizonMode::Set), Just(HorizonMode::Advance)],
    )
        .prop_map(|(svc, acting, conv, part, index, mode)| Op::Horizon {
            svc,
            acting,
            conv,
            part,
            index,
            mode,
        });
    let create_user = (
        svc_pick(),
        prop_oneof![6 => Just(None), 1 => acting()],
        ident(),
        opt_attr(),
    )
        .prop_map(|(svc, acting, identity, attrs)| Op::CreateUser {
            svc,
            acting,
            identity,
            attrs,
        });
    let delete_user = (
        svc_pick(),
        prop_oneof![6 => Just(None), 1 => acting()],
        item_pick(),
    )
        .prop_map(|(svc, acting, user)| Op::DeleteUser { svc, acting, user });
    let config = (
        svc_pick(),
        0usize..PROXIES.len(),
        channel(),
        prop::bool::weighted(0.7),
        auto_kind(),
    )
        .prop_map(
            |(svc, proxy, channel, enabled, kind)| Op::CreateAddressConfiguration {
                svc,
                proxy,
                channel,
                enabled,
                kind,
            },
        );
    let webhook = (
        svc_pick(),
        prop_oneof![6 => Just(None), 1 => acting()],
        conv_pick(),
        prop_oneof![
            3 => Just(HookGen::Webhook),
            1 => Just(HookGen::NoFilters),
            2 => Just(HookGen::Trigger),
            3 => Just(HookGen::Studio),
        ],
    )
        .prop_map(|(svc, acting, conv, target)| Op::CreateWebhook {
            svc,
            acting,
            conv,
            target,
        });
    let delete_webhook = (
        svc_pick(),
        prop_oneof![6 => Just(None), 1 => acting()],
        conv_pick(),
        item_pick(),
    )
        .prop_map(|(svc, acting, conv, hook)| Op::DeleteWebhook {
            svc,
            acting,
            conv,
            hook,
        });
    let update_webhook = (
        svc_pick(),
        prop_oneof![6 => Just(None), 1 => acting()],
        conv_pick(),
        item_pick(),
        prop_oneof![
            Just(HookEdit::Url),
            Just(HookEdit::Flow),
            Just(HookEdit::Filters),
        ],
    )
        .prop_map(|(svc, acting, conv, hook, edit)| Op::UpdateWebhook {
            svc,
            acting,
            conv,
            hook,
            edit,
        });
    let inbound = (
        svc_pick(),
        channel(),
        0usize..ADDRESSES.len(),
        0usize..PROXIES.len(),
        body(),
    )
        .prop_map(|(svc, channel, from, to, body)| Op::Inbound {
            svc,
            channel,
            from,
            to,
            body,
        });
    prop_oneof![
        1 => name().prop_map(Op::CreateService),
        6 => create,
        3 => update,
        1 => delete,
        8 => add,
        2 => remove,
        8 => post,
        3 => edit,
        2 => delete_message,
        3 => horizon,
        2 => create_user,
        1 => delete_user,
        2 => config,
        3 => inbound,
        3 => webhook,
        2 => delete_webhook,
        2 => update_webhook,
        1 => Just(Op::Reopen),
    ]
}

/// A participant that is valid on its own (it may still collide).
fn valid_part() -> impl Strategy<Value = PartGen> {
    let who = prop_oneof![
        (0usize..IDENTITIES.len()).prop_map(|i| WhoGen::Chat(Ident::Pool(i))),
        (0usize..ADDRESSES.len(), 0usize..PROXIES.len())
            .prop_map(|(address, proxy)| WhoGen::Bind { address, proxy }),
    ];
    who.prop_map(|who| PartGen {
        who,
        attrs: None,
        role: RolePick::Default,
    })
}

/// Mostly valid set-up steps: conversations with participants and address
/// configurations, so that the steps after them have something to act on.
fn prelude_op() -> impl Strategy<Value = Op> {
    let svc = prop_oneof![3 => Just(SvcPick::Idx(0)), 1 => Just(SvcPick::Idx(1))];
    let create = (
        svc.clone(),
        prop::option::of((0u8..4).prop_map(Name::Text)),
        prop::option::weighted(0.5, (0usize..UNIQUE_NAMES.len()).prop_map(Uniq::Pool)),
        prop::collection::vec(valid_part(), 0..=4),
    )
        .prop_map(|(svc, friendly, unique, parts)| Op::CreateConversation {
            svc,
            acting: None,
            friendly,
            unique,
            attrs: None,
            state: None,
            with: Some(parts),
        });
    let config = (svc.clone(), 0usize..PROXIES.len(), channel(), auto_kind()).prop_map(
        |(svc, proxy, channel, kind)| Op::CreateAddressConfiguration {
            svc,
            proxy,
            channel,
            enabled: true,
            kind,
        },
    );
    let post = (svc, 0usize..16, 0usize..IDENTITIES.len(), 0u8..8).prop_map(
        |(svc, conv, author, body)| Op::PostMessage {
            svc,
            acting: None,
            conv: ConvPick::Own(conv),
            author: Author::Identity(author),
            body: Body::Text(body),
            media: 0,
            attrs: None,
        },
    );
    prop_oneof![5 => create, 1 => config, 3 => post]
}

/// One generated case: a short prelude, then up to 34 steps of anything.
fn case() -> impl Strategy<Value = Vec<Op>> {
    (
        prop::collection::vec(prelude_op(), 1..=6),
        prop::collection::vec(op(), 1..=34),
    )
        .prop_map(|(mut prelude, body)| {
            prelude.extend(body);
            prelude
        })
}

// ---------------------------------------------------------------------------
// Running and comparing.

fn shown(command: &Command) -> String {
    let s = format!("{command:?}");
    if s.len() > 600 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(600).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

fn step(h: &mut Harness, m: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    if let Op::Reopen = op {
        let before = h.digest();
        h.reopen();
        prop_assert_eq!(h.digest(), before, "reopening changed the read models");
        return Ok(());
    }
    let (acting, command) = m.build(op);
    let expected = m.predict(acting.as_deref(), &command);
    let head = h.head();
    let got = h.exec_as(acting.as_deref(), command.clone());
    match (expected, got) {
        (Ok(plan), Ok(outcome)) => {
            let got_kinds = common::kinds(&outcome);
            prop_assert_eq!(
                &got_kinds,
                &plan.kinds,
                "events of {} as {:?}",
                shown(&command),
                acting
            );
            prop_assert!(!outcome.deduplicated);
            // The scope the log's index re-derives from the first record is
            // the command's own.
            if let Some((header, event)) = outcome.records.first() {
                prop_assert_eq!(
                    idempotency_scope_of_first_record(&header.service_sid, event),
                    command.idempotency_scope(),
                    "idempotency scope of {}",
                    shown(&command)
                );
            }
            m.apply(plan.change, &outcome)?;
        }
        (Err(want), Err(got)) => {
            let got_m = engine_err(&got);
            prop_assert!(
                agrees(&want, &got_m),
                "{} as {:?}: model refuses with {:?}, engine with {:?}",
                shown(&command),
                acting,
                want,
                got
            );
            prop_assert_eq!(h.head(), head, "a refused command moved the head");
        }
        (Ok(plan), Err(got)) => {
            return Err(TestCaseError::fail(format!(
                "{} as {:?}: model accepts ({:?}), engine refuses with {:?}",
                shown(&command),
                acting,
                plan.kinds,
                got
            )));
        }
        (Err(want), Ok(outcome)) => {
            return Err(TestCaseError::fail(format!(
                "{} as {:?}: model refuses with {:?}, engine appends {:?}",
                shown(&command),
                acting,
                want,
                common::kinds(&outcome)
            )));
        }
    }
    Ok(())
}

fn not_found<T: std::fmt::Debug>(r: Result<T, QueryError>, kind: &str) -> bool {
    matches!(r, Err(QueryError::NotFound { kind: k, .. }) if k == kind)
}

/// Every query the model can answer, compared with the engine's answer.
fn check(h: &Harness, m: &Model) -> Result<(), TestCaseError> {
    h.engine().read(|rm| check_queries(rm, m))
}

fn check_queries(rm: &ReadModels, m: &Model) -> Result<(), TestCaseError> {
    let everything = PageRequest::with_size(PAGE_SIZE_MAX);
    for s in &m.services {
        let svc = &s.sid;
        for cs in &m.all_convs {
            let by_sid = ConversationRef::Sid(*cs);
            let Some(mc) = s.convs.get(cs) else {
                prop_assert!(not_found(rm.get_conversation(svc, &by_sid), "conversation"));
                prop_assert!(not_found(
                    rm.participants(svc, &by_sid, &everything),
                    "conversation"
                ));
                prop_assert!(not_found(
                    rm.messages(svc, &by_sid, Order::Asc, &everything),
                    "conversation"
                ));
                continue;
            };
            let conv = rm
                .get_conversation(svc, &by_sid)
                .map_err(|e| TestCaseError::fail(format!("{cs}: {e}")))?;
            let row = conv.row();
            prop_assert_eq!(&row.friendly_name, &mc.friendly_name);
            prop_assert_eq!(&row.unique_name, &mc.unique_name);
            prop_assert_eq!(&row.attributes, &mc.attributes);
            prop_assert_eq!(row.state, mc.state);
            prop_assert_eq!(conv.next_message_index(), mc.next_index);
            prop_assert_eq!(conv.last_activity(), mc.last_activity);
            prop_assert_eq!(row.date_created, mc.created_at);

            // Participants, ordered by SID.
            let got: Vec<_> = rm
                .participants(svc, &by_sid, &everything)
                .unwrap()
                .items
                .into_iter()
                .map(|p| {
                    let who = match p.kind {
                        ParticipantKind::Chat { identity, .. } => Who::Chat(identity),
                        ParticipantKind::Messaging(b) => Who::Bind {
                            address: b.address,
                            proxy: b.proxy_address,
                        },
                    };
                    (
                        p.sid,
                        who,
                        p.user_sid,
                        p.role_sid,
                        p.attributes,
                        p.last_read_message_index,
                    )
                })
                .collect();
            let want: Vec<_> = mc
                .parts
                .iter()
                .map(|(ps, p)| {
                    (
                        *ps,
                        p.who.clone(),
                        p.user,
                        p.role,
                        p.attributes.clone(),
                        p.horizon,
                    )
                })
                .collect();
            prop_assert_eq!(got, want, "participants of {}", cs);

            // Conversation-scoped webhooks, by SID.
            let hooks: BTreeSet<WebhookSid> = conv.webhooks().keys().copied().collect();
            prop_assert_eq!(&hooks, &mc.webhooks, "webhooks of {}", cs);

            // Messages: all of them oldest first, then the latest page.
            let shape = |rows: Vec<projections::MessageRow>| -> Vec<_> {
                rows.into_iter()
                    .map(|r| {
                        (
                            r.sid,
                            r.index,
                            r.author,
                            r.participant_sid,
                            r.body,
                            r.media.len(),
                            r.attributes,
                        )
                    })
                    .collect()
            };
            let want_of = |lo: u64, hi: u64, take: usize, from_end: bool| -> Vec<_> {
                let mut v: Vec<_> = mc
                    .msgs
                    .range(lo..=hi)
                    .map(|(i, mm)| {
                        (
                            mm.sid,
                            *i,
                            mm.author.clone(),
                            mm.participant,
                            mm.body.clone(),
                            mm.media,
                            mm.attributes.clone(),
                        )
                    })
                    .collect();
                if from_end {
                    v = v.split_off(v.len().saturating_sub(take));
                } else {
                    v.truncate(take);
                }
                v
            };
            let all = rm.messages(svc, &by_sid, Order::Asc, &everything).unwrap();
            prop_assert_eq!(shape(all.items), want_of(0, u64::MAX, PAGE_SIZE_MAX, false));
            let latest = rm
                .messages(svc, &by_sid, Order::Desc, &PageRequest::with_size(2))
                .unwrap();
            let mut want_latest = want_of(0, u64::MAX, 2, true);
            want_latest.reverse();
            prop_assert_eq!(shape(latest.items), want_latest);
            for mm in mc.msgs.values() {
                prop_assert_eq!(rm.message(svc, &by_sid, &mm.sid).unwrap().sid, mm.sid);
            }
        }

        // Lookups by unique name.
        for name in UNIQUE_NAMES {
            let r = ConversationRef::UniqueName(name.to_string());
            match s.resolve(&r) {
                Some(cs) => prop_assert_eq!(rm.get_conversation(svc, &r).unwrap().row().sid, cs),
                None => prop_assert!(not_found(rm.get_conversation(svc, &r), "conversation")),
            }
        }

        // The conversation list, oldest first.
        let listed: Vec<_> = rm
            .list_conversations(svc, None, &everything)
            .unwrap()
            .items
            .into_iter()
            .map(|r| r.sid)
            .collect();
        let mut want: Vec<_> = s.convs.iter().map(|(cs, c)| (c.created_at, *cs)).collect();
        want.sort();
        prop_assert_eq!(
            listed,
            want.into_iter().map(|(_, cs)| cs).collect::<Vec<_>>()
        );

        // Bindings: the open holder.
        for proxy in PROXIES {
            for address in ADDRESSES {
                prop_assert_eq!(
                    rm.participant_by_binding(svc, proxy, address).unwrap(),
                    s.open_holder(proxy, address),
                    "binding ({}, {})",
                    proxy,
                    address
                );
            }
            match s.configs.get(*proxy) {
                Some((channel, enabled, kind)) => {
                    let row = rm.address_configuration_by_address(svc, proxy).unwrap();
                    prop_assert_eq!(row.address_type, *channel);
                    prop_assert_eq!(row.auto_creation.enabled, *enabled);
                    prop_assert_eq!(row.auto_creation.kind, *kind);
                }
                None => prop_assert!(not_found(
                    rm.address_configuration_by_address(svc, proxy),
                    "address configuration"
                )),
            }
        }
        for address in ADDRESSES {
            let got: Vec<_> = rm
                .participant_conversations_by_address(svc, address, &everything)
                .unwrap()
                .items
                .into_iter()
                .map(|(c, p)| (c.sid, p.sid))
                .collect();
            let mut want: Vec<_> = s
                .convs
                .iter()
                .flat_map(|(cs, c)| {
                    c.parts
                        .iter()
                        .filter(
                            |(_, p)| matches!(&p.who, Who::Bind { address: a, .. } if a == address),
                        )
                        .map(|(ps, _)| (*cs, *ps))
                })
                .collect();
            want.sort();
            prop_assert_eq!(got, want, "conversations of address {}", address);
        }

        // Users and each identity's conversations, with unread counts.
        for identity in IDENTITIES {
            match s.users.get(*identity) {
                Some((u, role)) => {
                    let row = rm.user_by_identity(svc, identity).unwrap();
                    prop_assert_eq!(row.sid, *u);
                    prop_assert_eq!(row.role_sid, *role);
                }
                None => prop_assert!(not_found(rm.user_by_identity(svc, identity), "user")),
            }
            let got: Vec<_> = rm
                .user_conversations(svc, identity, &everything)
                .unwrap()
                .items
                .into_iter()
                .map(|u| {
                    (
                        u.conversation_sid,
                        u.participant_sid,
                        u.last_read_message_index,
                        u.unread_messages_count,
                        u.conversation_state,
                        u.unique_name,
                        u.last_activity,
                    )
                })
                .collect();
            let mut want: Vec<_> = s
                .convs
                .iter()
                .filter_map(|(cs, c)| {
                    let ps = c.chat(identity)?;
                    let p = &c.parts[&ps];
                    Some((
                        *cs,
                        ps,
                        p.horizon,
                        c.unread(p.horizon),
                        c.state,
                        c.unique_name.clone(),
                        c.last_activity,
                    ))
                })
                .collect();
            want.sort_by_key(|w| (Reverse(w.6), w.0));
            prop_assert_eq!(got, want, "conversations of {}", identity);
        }
        for u in &m.all_users {
            let live = s.users.values().any(|(x, _)| x == u);
            let got = rm.user(svc, u);
            if live {
                prop_assert_eq!(got.unwrap().sid, *u);
            } else {
                prop_assert!(not_found(got, "user"));
            }
        }
        for r in &m.all_roles {
            let got = rm.role(svc, r);
            if s.roles.contains_key(r) {
                prop_assert_eq!(got.unwrap().sid, *r);
            } else {
                prop_assert!(not_found(got, "role"));
            }
        }
    }
    Ok(())
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut h = Harness::new();
    let mut m = Model::default();
    let setup = [
        Op::CreateService(Name::Text(0)),
        Op::CreateService(Name::Text(1)),
    ];
    for op in setup.iter().chain(ops) {
        step(&mut h, &mut m, op)?;
        check(&h, &m)?;
    }

    // A fold of the whole log gives the live read models, row for row and
    // in memory.
    let head = h.head();
    let folded = fold_records(
        h.engine().log().read_range(0..head.next_position),
        &mut |_| {},
    )
    .map_err(|e| TestCaseError::fail(format!("fold: {e}")))?;
    let live = h.digest();
    let folded_digest =
        state_digest(&folded).map_err(|e| TestCaseError::fail(format!("fold digest: {e}")))?;
    prop_assert_eq!(folded_digest, live, "fold of the log vs live rows");
    prop_assert!(
        h.engine().read(|rm| *rm == folded),
        "the in-memory read models differ from a fold of the log"
    );

    // The log's indexes agree with the log, before and after a rebuild.
    check_indexes(h.engine().log().db(), IndexView::Snapshot)
        .map_err(|e| TestCaseError::fail(format!("index check: {e}")))?;

    // A rebuild from the log gives the same rows, and the same answers.
    h.rebuild();
    check_indexes(h.engine().log().db(), IndexView::Snapshot)
        .map_err(|e| TestCaseError::fail(format!("index check after rebuild: {e}")))?;
    prop_assert_eq!(h.digest(), live, "rebuild vs live rows");
    prop_assert_eq!(h.head(), head);
    check(&h, &m)?;
    Ok(())
}

/// The property: every generated sequence agrees with the model.
#[test]
fn engine_agrees_with_the_model() {
    let config = ProptestConfig {
        cases: 256,
        max_shrink_iters: 1_000,
        ..ProptestConfig::default()
    };
    common::run_cases(config, case(), |ops| run(ops));
}
