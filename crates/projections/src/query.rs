//! Queries over the read models: what hosts and the fan-out core read.
//!
//! Every query is scoped to one service; a SID from another service is
//! `NotFound`, exactly as if it did not exist. Lists are paged with opaque
//! page tokens that name the last item seen, so a page stays stable while
//! new items arrive.

use std::ops::Bound;

use events::limits::{PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX};
use events::*;

use crate::rows::*;
use crate::state::{Conversation, ReadModels, Service};

/// Why a query could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The named resource does not exist in this service.
    #[error("{kind} {id} not found")]
    NotFound {
        /// Resource kind, e.g. `conversation`.
        kind: &'static str,
        /// The SID or name asked for.
        id: String,
    },
    /// `page_size` is 0 or over [`PAGE_SIZE_MAX`].
    #[error("page size {0} is outside 1..={PAGE_SIZE_MAX}")]
    PageSize(usize),
    /// The page token was not issued by this query.
    #[error("malformed page token")]
    PageToken,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// Pass this to get the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// Which page of a list to return.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageRequest {
    /// Items per page: [`PAGE_SIZE_DEFAULT`] when `None`, at most [`PAGE_SIZE_MAX`].
    pub page_size: Option<usize>,
    /// The token from the previous page, or `None` for the first.
    pub page_token: Option<String>,
}

impl PageRequest {
    fn size(&self) -> Result<usize, QueryError> {
        let n = self.page_size.unwrap_or(PAGE_SIZE_DEFAULT);
        if n == 0 || n > PAGE_SIZE_MAX {
            return Err(QueryError::PageSize(n));
        }
        Ok(n)
    }
}

/// Direction of a message page, like the SDK's `getMessages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Older messages: indexes at or before the anchor (default).
    #[default]
    Backwards,
    /// Newer messages: indexes at or after the anchor.
    Forwards,
}

/// A conversation as one of a user's conversations (Twilio
/// `service_user_conversation`), with the exact unread count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserConversation {
    /// The conversation.
    pub conversation_sid: ConversationSid,
    /// The user's participant in it.
    pub participant_sid: ParticipantSid,
    /// The user's read horizon.
    pub last_read_message_index: Option<u64>,
    /// Live messages after the horizon.
    pub unread_messages_count: u64,
    /// The user's notification level there.
    pub notification_level: NotificationLevel,
    /// Conversation display name.
    pub friendly_name: Option<String>,
    /// Conversation unique name.
    pub unique_name: Option<String>,
    /// Conversation attributes.
    pub attributes: String,
    /// Conversation state.
    pub conversation_state: ConversationState,
    /// Time of the last message (or creation), µs: the list's order.
    pub last_activity: TimestampMicros,
}

/// Twilio's message `delivery` summary: receipts counted by latest status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliverySummary {
    /// Receipts of any status.
    pub total: u32,
    /// Latest status `sent`.
    pub sent: u32,
    /// Latest status `delivered`.
    pub delivered: u32,
    /// Latest status `read`.
    pub read: u32,
    /// Latest status `failed`.
    pub failed: u32,
    /// Latest status `undelivered`.
    pub undelivered: u32,
}

fn not_found(kind: &'static str, id: impl ToString) -> QueryError {
    QueryError::NotFound {
        kind,
        id: id.to_string(),
    }
}

fn conversation_ref_id(r: &ConversationRef) -> String {
    match r {
        ConversationRef::Sid(s) => s.to_string(),
        ConversationRef::UniqueName(n) => n.clone(),
    }
}

fn parse_token(token: &str) -> Result<(u64, String), QueryError> {
    let (a, b) = token.split_once(':').ok_or(QueryError::PageToken)?;
    let a: u64 = a.parse().map_err(|_| QueryError::PageToken)?;
    Ok((a, b.to_string()))
}

impl ReadModels {
    /// The service, or `NotFound`.
    pub fn get_service(&self, service: &ServiceSid) -> Result<&Service, QueryError> {
        self.services
            .get(service)
            .ok_or_else(|| not_found("service", service))
    }

    /// A conversation by SID or unique name, or `NotFound`.
    pub fn get_conversation(
        &self,
        service: &ServiceSid,
        conversation: &ConversationRef,
    ) -> Result<&Conversation, QueryError> {
        self.get_service(service)?
            .resolve(conversation)
            .ok_or_else(|| not_found("conversation", conversation_ref_id(conversation)))
    }

    /// A service's conversations, oldest first, optionally only those in
    /// `state`. Errors: unknown service, bad page size or token.
    pub fn list_conversations(
        &self,
        service: &ServiceSid,
        state: Option<ConversationState>,
        page: &PageRequest,
    ) -> Result<Page<ConversationRow>, QueryError> {
        let svc = self.get_service(service)?;
        let size = page.size()?;
        let start = match &page.page_token {
            None => Bound::Unbounded,
            Some(t) => {
                let (at, sid) = parse_token(t)?;
                let sid: ConversationSid = sid.parse().map_err(|_| QueryError::PageToken)?;
                Bound::Excluded((at, sid))
            }
        };
        let mut items = Vec::with_capacity(size);
        let mut last = None;
        let mut more = false;
        for key in svc.by_created.range((start, Bound::Unbounded)) {
            let conv = &svc.conversations[&key.1];
            if state.is_some_and(|s| conv.row.state != s) {
                continue;
            }
            if items.len() == size {
                more = true;
                break;
            }
            items.push(conv.row.clone());
            last = Some(*key);
        }
        let next_page_token = match (more, last) {
            (true, Some((at, sid))) => Some(format!("{at}:{sid}")),
            _ => None,
        };
        Ok(Page {
            items,
            next_page_token,
        })
    }

    /// A conversation's participants, ordered by SID.
    pub fn participants(
        &self,
        service: &ServiceSid,
        conversation: &ConversationRef,
    ) -> Result<Vec<ParticipantRow>, QueryError> {
        Ok(self
            .get_conversation(service, conversation)?
            .participants
            .values()
            .cloned()
            .collect())
    }

    /// The participant bound to (`proxy_address`, `address`), for inbound
    /// routing. `Ok(None)` when no active conversation holds the binding.
    pub fn participant_by_binding(
        &self,
        service: &ServiceSid,
        proxy_address: &str,
        address: &str,
    ) -> Result<Option<(ConversationSid, ParticipantSid)>, QueryError> {
        let svc = self.get_service(service)?;
        // The index may still name a closed conversation (the last holder
        // of a binding nobody took since); a closed one does not hold it.
        Ok(svc
            .bindings
            .get(&(proxy_address.to_string(), address.to_string()))
            .filter(|(c, _)| {
                svc.conversations
                    .get(c)
                    .is_some_and(|c| c.row.state != ConversationState::Closed)
            })
            .copied())
    }

    /// Twilio's ParticipantConversations by chat identity: every
    /// (conversation, participant) the identity is in, ordered by SID.
    pub fn participant_conversations_by_identity(
        &self,
        service: &ServiceSid,
        identity: &str,
    ) -> Result<Vec<(ConversationRow, ParticipantRow)>, QueryError> {
        let svc = self.get_service(service)?;
        Ok(collect_pairs(svc, svc.identity_participants.get(identity)))
    }

    /// Twilio's ParticipantConversations by binding address.
    pub fn participant_conversations_by_address(
        &self,
        service: &ServiceSid,
        address: &str,
    ) -> Result<Vec<(ConversationRow, ParticipantRow)>, QueryError> {
        let svc = self.get_service(service)?;
        Ok(collect_pairs(svc, svc.address_participants.get(address)))
    }

    /// The per-user subscription index: the conversations `identity` is a
    /// participant in, with exact unread counts, newest activity first
    /// (ties by conversation SID). An identity in no conversation has an
    /// empty list. Errors: unknown service, bad page size or token.
    pub fn user_conversations(
        &self,
        service: &ServiceSid,
        identity: &str,
        page: &PageRequest,
    ) -> Result<Page<UserConversation>, QueryError> {
        let svc = self.get_service(service)?;
        let size = page.size()?;
        let user_sid = svc.user_by_identity.get(identity).copied();
        let mut all: Vec<UserConversation> = svc
            .identity_participants
            .get(identity)
            .into_iter()
            .flatten()
            .filter_map(|(c, p)| {
                let conv = svc.conversations.get(c)?;
                let part = conv.participants.get(p)?;
                let level = user_sid
                    .and_then(|u| svc.notification_levels.get(&(u, *c)).copied())
                    .unwrap_or_default();
                Some(UserConversation {
                    conversation_sid: *c,
                    participant_sid: *p,
                    last_read_message_index: part.last_read_message_index,
                    unread_messages_count: conv.unread_after(part.last_read_message_index),
                    notification_level: level,
                    friendly_name: conv.row.friendly_name.clone(),
                    unique_name: conv.row.unique_name.clone(),
                    attributes: conv.row.attributes.clone(),
                    conversation_state: conv.row.state,
                    last_activity: conv.row.last_activity,
                })
            })
            .collect();
        all.sort_by(|a, b| {
            b.last_activity
                .cmp(&a.last_activity)
                .then(a.conversation_sid.cmp(&b.conversation_sid))
        });
        let start = match &page.page_token {
            None => 0,
            Some(t) => {
                let (at, sid) = parse_token(t)?;
                let sid: ConversationSid = sid.parse().map_err(|_| QueryError::PageToken)?;
                all.partition_point(|u| {
                    u.last_activity > at || (u.last_activity == at && u.conversation_sid <= sid)
                })
            }
        };
        let rest = &all[start.min(all.len())..];
        let items: Vec<_> = rest.iter().take(size).cloned().collect();
        let next_page_token = if rest.len() > size {
            items
                .last()
                .map(|u| format!("{}:{}", u.last_activity, u.conversation_sid))
        } else {
            None
        };
        Ok(Page {
            items,
            next_page_token,
        })
    }

    /// One page of a conversation's live messages, in ascending index
    /// order, like the SDK's `getMessages(pageSize, anchor, direction)`:
    /// `Backwards` returns the last `page_size` messages at or before
    /// `anchor` (the newest when `None`); `Forwards` the first `page_size`
    /// at or after it (the oldest when `None`). Errors: unknown service or
    /// conversation, page size 0 or over [`PAGE_SIZE_MAX`].
    pub fn messages(
        &self,
        service: &ServiceSid,
        conversation: &ConversationRef,
        page_size: usize,
        anchor: Option<u64>,
        direction: Direction,
    ) -> Result<Vec<MessageRow>, QueryError> {
        if page_size == 0 || page_size > PAGE_SIZE_MAX {
            return Err(QueryError::PageSize(page_size));
        }
        let conv = self.get_conversation(service, conversation)?;
        let out = match direction {
            Direction::Backwards => {
                let hi = anchor.map_or(Bound::Unbounded, Bound::Included);
                let mut v: Vec<_> = conv
                    .messages
                    .range((Bound::Unbounded, hi))
                    .rev()
                    .take(page_size)
                    .map(|(_, m)| m.clone())
                    .collect();
                v.reverse();
                v
            }
            Direction::Forwards => {
                let lo = anchor.map_or(Bound::Unbounded, Bound::Included);
                conv.messages
                    .range((lo, Bound::Unbounded))
                    .take(page_size)
                    .map(|(_, m)| m.clone())
                    .collect()
            }
        };
        Ok(out)
    }

    /// One message by SID.
    pub fn message(
        &self,
        service: &ServiceSid,
        conversation: &ConversationRef,
        message: &MessageSid,
    ) -> Result<&MessageRow, QueryError> {
        self.get_conversation(service, conversation)?
            .message(message)
            .ok_or_else(|| not_found("message", message))
    }

    /// A message's per-participant receipts (latest status each), ordered by participant.
    pub fn receipts(
        &self,
        service: &ServiceSid,
        conversation: &ConversationRef,
        message: &MessageSid,
    ) -> Result<Vec<ReceiptRow>, QueryError> {
        let conv = self.get_conversation(service, conversation)?;
        conv.message(message)
            .ok_or_else(|| not_found("message", message))?;
        Ok(conv
            .receipts
            .range((*message, ParticipantSid([0; 16]))..=(*message, ParticipantSid([0xff; 16])))
            .map(|(_, r)| r.clone())
            .collect())
    }

    /// A message's `delivery` summary.
    pub fn delivery_summary(
        &self,
        service: &ServiceSid,
        conversation: &ConversationRef,
        message: &MessageSid,
    ) -> Result<DeliverySummary, QueryError> {
        let mut s = DeliverySummary::default();
        for r in self.receipts(service, conversation, message)? {
            s.total += 1;
            match r.status {
                DeliveryStatus::Sent => s.sent += 1,
                DeliveryStatus::Delivered => s.delivered += 1,
                DeliveryStatus::Read => s.read += 1,
                DeliveryStatus::Failed => s.failed += 1,
                DeliveryStatus::Undelivered => s.undelivered += 1,
            }
        }
        Ok(s)
    }

    /// A user by SID.
    pub fn user(&self, service: &ServiceSid, user: &UserSid) -> Result<&UserRow, QueryError> {
        self.get_service(service)?
            .users
            .get(user)
            .ok_or_else(|| not_found("user", user))
    }

    /// A user by identity.
    pub fn user_by_identity(
        &self,
        service: &ServiceSid,
        identity: &str,
    ) -> Result<&UserRow, QueryError> {
        let svc = self.get_service(service)?;
        svc.user_by_identity
            .get(identity)
            .and_then(|u| svc.users.get(u))
            .ok_or_else(|| not_found("user", identity))
    }

    /// A role by SID.
    pub fn role(&self, service: &ServiceSid, role: &RoleSid) -> Result<&RoleRow, QueryError> {
        self.get_service(service)?
            .roles
            .get(role)
            .ok_or_else(|| not_found("role", role))
    }

    /// An address configuration by its address.
    pub fn address_configuration_by_address(
        &self,
        service: &ServiceSid,
        address: &str,
    ) -> Result<&AddressConfigurationRow, QueryError> {
        let svc = self.get_service(service)?;
        svc.address_configuration_by_address
            .get(address)
            .and_then(|sid| svc.address_configurations.get(sid))
            .ok_or_else(|| not_found("address configuration", address))
    }
}

fn collect_pairs(
    svc: &Service,
    set: Option<&std::collections::BTreeSet<(ConversationSid, ParticipantSid)>>,
) -> Vec<(ConversationRow, ParticipantRow)> {
    set.into_iter()
        .flatten()
        .filter_map(|(c, p)| {
            let conv = svc.conversations.get(c)?;
            Some((conv.row.clone(), conv.participants.get(p)?.clone()))
        })
        .collect()
}
