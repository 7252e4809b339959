//! Queries over the read models: what hosts and the fan-out core read.
//!
//! Every query is scoped to one service; a SID from another service is
//! `NotFound`, exactly as if it did not exist. Lists are paged with opaque
//! page tokens that name the last item seen, so a page stays stable while
//! new items arrive.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
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
    #[error("page size {0} is outside 1..={PAGE_SIZE_MAX}: ask for at most {PAGE_SIZE_MAX} items a page")]
    PageSize(usize),
    /// The page token was not issued by this list (another list's token,
    /// a truncated or edited one, or not a token at all).
    #[error(
        "page token {token:?} was not issued by the {list} list: pass back that list's \
         next_page_token unchanged, or no token for the first page"
    )]
    PageToken {
        /// The list asked for, e.g. `users`.
        list: &'static str,
        /// The token given.
        token: String,
    },
    /// A cold row (a message) could not be read from the store or does
    /// not decode: the store is damaged or unreadable. Run
    /// `replay-tool verify` on it.
    #[error("reading {table:?} failed ({reason}): run `replay-tool verify` on the store")]
    Storage {
        /// The table read.
        table: Table,
        /// The store's or the codec's error.
        reason: String,
    },
}

impl From<crate::cold::ColdError> for QueryError {
    fn from(e: crate::cold::ColdError) -> Self {
        QueryError::Storage {
            table: e.table,
            reason: e.source.to_string(),
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// Pass this to get the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

impl<T> Page<T> {
    /// The request for the page after this one, with the page size of
    /// `request` (the request that returned this page); `None` on the last
    /// page.
    pub fn next_request(&self, request: &PageRequest) -> Option<PageRequest> {
        self.next_page_token.as_ref().map(|t| PageRequest {
            page_size: request.page_size,
            page_token: Some(t.clone()),
        })
    }
}

/// Which page of a list to return.
///
/// A page token names the key of the last item served (never an offset),
/// so walking a list while items are added skips nothing that was there
/// before the walk and serves nothing twice.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageRequest {
    /// Items per page: [`PAGE_SIZE_DEFAULT`] when `None`, at most [`PAGE_SIZE_MAX`].
    pub page_size: Option<usize>,
    /// The token from the previous page, or `None` for the first.
    pub page_token: Option<String>,
}

impl PageRequest {
    /// The first page, with `page_size` items (checked when the query
    /// runs: 1..=[`PAGE_SIZE_MAX`]).
    pub fn with_size(page_size: usize) -> Self {
        PageRequest {
            page_size: Some(page_size),
            page_token: None,
        }
    }

    fn size(&self) -> Result<usize, QueryError> {
        let n = self.page_size.unwrap_or(PAGE_SIZE_DEFAULT);
        if n == 0 || n > PAGE_SIZE_MAX {
            return Err(QueryError::PageSize(n));
        }
        Ok(n)
    }

    /// The key the token names, or `None` for the first page. Errors with
    /// [`QueryError::PageToken`] unless the token was issued by `list`.
    fn after<K: PageKey>(&self, list: &'static str) -> Result<Option<K>, QueryError> {
        let Some(token) = &self.page_token else {
            return Ok(None);
        };
        token
            .strip_prefix(list)
            .and_then(|rest| rest.strip_prefix(TOKEN_SEPARATOR))
            .and_then(K::decode)
            .map(Some)
            .ok_or_else(|| QueryError::PageToken {
                list,
                token: token.clone(),
            })
    }
}

/// Separates a token's list name from its key, and the parts of a
/// composite key. SIDs (hex) and numbers never contain it.
const TOKEN_SEPARATOR: char = ':';

/// A key a page token can name: the sort key of a list's items.
trait PageKey: Sized {
    fn encode(&self) -> String;
    fn decode(text: &str) -> Option<Self>;
}

macro_rules! page_key_via_str {
    ($($t:ty),*) => {$(
        impl PageKey for $t {
            fn encode(&self) -> String {
                self.to_string()
            }
            fn decode(text: &str) -> Option<Self> {
                text.parse().ok()
            }
        }
    )*};
}
page_key_via_str!(
    u64,
    ServiceSid,
    ConversationSid,
    ParticipantSid,
    UserSid,
    RoleSid,
    AddressConfigurationSid
);

impl<A: PageKey, B: PageKey> PageKey for (A, B) {
    fn encode(&self) -> String {
        format!("{}{TOKEN_SEPARATOR}{}", self.0.encode(), self.1.encode())
    }
    fn decode(text: &str) -> Option<Self> {
        let (a, b) = text.split_once(TOKEN_SEPARATOR)?;
        Some((A::decode(a)?, B::decode(b)?))
    }
}

/// Takes up to `size` items from `keyed` (already positioned after the
/// request's token, in list order); the next token names the last one
/// taken, and is issued only if another item follows.
fn page_of<K: PageKey, T>(
    list: &'static str,
    keyed: impl Iterator<Item = (K, T)>,
    size: usize,
) -> Page<T> {
    let mut items = Vec::with_capacity(size);
    let mut last = None;
    for (key, item) in keyed {
        if items.len() == size {
            return Page {
                items,
                next_page_token: last.map(|k: K| format!("{list}{TOKEN_SEPARATOR}{}", k.encode())),
            };
        }
        items.push(item);
        last = Some(key);
    }
    Page {
        items,
        next_page_token: None,
    }
}

/// A page of the list `list` over `map`, in key order, each value shown
/// as `item` makes it.
fn map_page<K: PageKey + Ord + Copy, V, T>(
    list: &'static str,
    map: &BTreeMap<K, V>,
    page: &PageRequest,
    item: impl Fn(&V) -> T,
) -> Result<Page<T>, QueryError> {
    let size = page.size()?;
    let after = page.after::<K>(list)?;
    let keyed = map.range(after_bound(after)).map(|(k, v)| (*k, item(v)));
    Ok(page_of(list, keyed, size))
}

/// The range bound that starts a list after `after` (ascending keys).
fn after_bound<K>(after: Option<K>) -> (Bound<K>, Bound<K>) {
    (
        after.map_or(Bound::Unbounded, Bound::Excluded),
        Bound::Unbounded,
    )
}

/// Twilio's `Order` of a message list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first, by message index (Twilio's default, `asc`).
    #[default]
    Asc,
    /// Newest first (`desc`): the first page holds the latest messages.
    Desc,
}

/// A conversation as one of a user's conversations (Twilio
/// `service_user_conversation`), with the exact unread count once the
/// user has a read horizon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserConversation {
    /// The conversation.
    pub conversation_sid: ConversationSid,
    /// The user's participant in it.
    pub participant_sid: ParticipantSid,
    /// The user's read horizon.
    pub last_read_message_index: Option<u64>,
    /// Live messages after the horizon; `None` while the user has no
    /// read horizon (`last_read_message_index` is `None`), as Twilio's
    /// nullable `unread_messages_count`: a participant who never read
    /// anything has no count, not every message unread.
    pub unread_messages_count: Option<u64>,
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

impl ReadModels {
    /// The service, or `NotFound`.
    pub fn get_service(&self, service: &ServiceSid) -> Result<&Service, QueryError> {
        self.service(service)
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

    /// Every service, ordered by SID. Errors: bad page size or token.
    pub fn list_services(&self, page: &PageRequest) -> Result<Page<ServiceRow>, QueryError> {
        map_page("services", &self.services, page, |s| s.row().clone())
    }

    /// A service's conversations, oldest first (ties by SID), optionally
    /// only those in `state`. Errors: unknown service, bad page size or
    /// token.
    pub fn list_conversations(
        &self,
        service: &ServiceSid,
        state: Option<ConversationState>,
        page: &PageRequest,
    ) -> Result<Page<ConversationRow>, QueryError> {
        const LIST: &str = "conversations";
        let svc = self.get_service(service)?;
        let size = page.size()?;
        let after = page.after::<(u64, ConversationSid)>(LIST)?;
        let keyed = svc
            .by_created
            .range(after_bound(after))
            .filter_map(|key| Some((*key, &svc.conversations.get(&key.1)?.row)))
            .filter(|(_, row)| state.is_none_or(|s| row.state == s))
            .map(|(key, row)| (key, row.clone()));
        Ok(page_of(LIST, keyed, size))
    }

    /// A service's users, ordered by SID. Errors: unknown service, bad
    /// page size or token.
    pub fn list_users(
        &self,
        service: &ServiceSid,
        page: &PageRequest,
    ) -> Result<Page<UserRow>, QueryError> {
        map_page(
            "users",
            &self.get_service(service)?.users,
            page,
            Clone::clone,
        )
    }

    /// A service's roles, ordered by SID. Errors: unknown service, bad
    /// page size or token.
    pub fn list_roles(
        &self,
        service: &ServiceSid,
        page: &PageRequest,
    ) -> Result<Page<RoleRow>, QueryError> {
        map_page(
            "roles",
            &self.get_service(service)?.roles,
            page,
            Clone::clone,
        )
    }

    /// A service's address configurations, ordered by SID. Errors:
    /// unknown service, bad page size or token.
    pub fn list_address_configurations(
        &self,
        service: &ServiceSid,
        page: &PageRequest,
    ) -> Result<Page<AddressConfigurationRow>, QueryError> {
        let svc = self.get_service(service)?;
        map_page(
            "address configurations",
            &svc.address_configurations,
            page,
            Clone::clone,
        )
    }

    /// A conversation's participants, ordered by SID. Errors: unknown
    /// service or conversation, bad page size or token.
    pub fn participants(
        &self,
        service: &ServiceSid,
        conversation: &ConversationRef,
        page: &PageRequest,
    ) -> Result<Page<ParticipantRow>, QueryError> {
        let conv = self.get_conversation(service, conversation)?;
        map_page("participants", &conv.participants, page, Clone::clone)
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
        Ok(svc.binding_holder(proxy_address, address).filter(|(c, _)| {
            svc.conversation_by_sid(c)
                .is_some_and(|c| c.row.state != ConversationState::Closed)
        }))
    }

    /// Twilio's ParticipantConversations by chat identity: every
    /// (conversation, participant) the identity is in, ordered by
    /// conversation SID then participant SID. Errors: unknown service, bad
    /// page size or token.
    pub fn participant_conversations_by_identity(
        &self,
        service: &ServiceSid,
        identity: &str,
        page: &PageRequest,
    ) -> Result<Page<(ConversationRow, ParticipantRow)>, QueryError> {
        let svc = self.get_service(service)?;
        pairs_page(
            svc,
            svc.identity_participants.get(identity),
            "participant conversations by identity",
            page,
        )
    }

    /// Twilio's ParticipantConversations by binding address, ordered like
    /// [`ReadModels::participant_conversations_by_identity`]. Errors:
    /// unknown service, bad page size or token.
    pub fn participant_conversations_by_address(
        &self,
        service: &ServiceSid,
        address: &str,
        page: &PageRequest,
    ) -> Result<Page<(ConversationRow, ParticipantRow)>, QueryError> {
        let svc = self.get_service(service)?;
        pairs_page(
            svc,
            svc.address_participants.get(address),
            "participant conversations by address",
            page,
        )
    }

    /// The per-user subscription index: the conversations `identity` is a
    /// participant in, with exact unread counts (`None` where it has no
    /// read horizon yet), newest activity first (ties by conversation
    /// SID). An identity in no conversation has an empty list. Errors:
    /// unknown service, bad page size or token.
    pub fn user_conversations(
        &self,
        service: &ServiceSid,
        identity: &str,
        page: &PageRequest,
    ) -> Result<Page<UserConversation>, QueryError> {
        const LIST: &str = "user conversations";
        let svc = self.get_service(service)?;
        let size = page.size()?;
        let after = page.after::<(u64, ConversationSid)>(LIST)?;
        let mut all: Vec<UserConversation> = svc
            .identity_participants(identity)
            .filter_map(|(c, p)| user_conversation_of(svc, identity, c, p))
            .collect();
        // Newest first: the key (activity, SID) with activity descending.
        let order = |u: &UserConversation| (Reverse(u.last_activity), u.conversation_sid);
        all.sort_by_key(order);
        let start = after.map_or(0, |(at, sid)| {
            all.partition_point(|u| order(u) <= (Reverse(at), sid))
        });
        let keyed = all
            .into_iter()
            .skip(start)
            .map(|u| ((u.last_activity, u.conversation_sid), u));
        Ok(page_of(LIST, keyed, size))
    }

    /// One entry of [`ReadModels::user_conversations`]: `identity`'s view
    /// of `conversation` (SID or unique name), as the list renders it.
    /// Errors: `NotFound` for an unknown service or conversation, or when
    /// `identity` is not a participant of the conversation (a user sees
    /// only the conversations it is in).
    pub fn user_conversation(
        &self,
        service: &ServiceSid,
        identity: &str,
        conversation: &ConversationRef,
    ) -> Result<UserConversation, QueryError> {
        let svc = self.get_service(service)?;
        let conv = self.get_conversation(service, conversation)?;
        conv.participant_by_identity(identity)
            .and_then(|p| user_conversation_of(svc, identity, conv.row.sid, p.sid))
            .ok_or_else(|| not_found("user conversation", conversation_ref_id(conversation)))
    }

    /// A conversation's live messages by index, in Twilio's `order`
    /// (`Asc`, oldest first, is Twilio's default). A token names the index
    /// of the last message served, so new messages never shift a walk: an
    /// `Asc` walk reaches them at its end, a `Desc` walk never sees them.
    /// Errors: unknown service or conversation, bad page size or token (a
    /// token from the other order is refused too).
    pub fn messages(
        &self,
        service: &ServiceSid,
        conversation: &ConversationRef,
        order: Order,
        page: &PageRequest,
    ) -> Result<Page<MessageRow>, QueryError> {
        let conv = self.get_conversation(service, conversation)?;
        let size = page.size()?;
        // One more than a page: whether there is a next page.
        let keyed = |rows: Vec<MessageRow>| rows.into_iter().map(|m| (m.index, m));
        Ok(match order {
            Order::Asc => {
                const LIST: &str = "messages asc";
                let after = page.after::<u64>(LIST)?;
                let rows = self.scan_messages(conv, after_bound(after), false, size + 1)?;
                page_of(LIST, keyed(rows), size)
            }
            Order::Desc => {
                const LIST: &str = "messages desc";
                let before = page.after::<u64>(LIST)?;
                let range = (
                    Bound::Unbounded,
                    before.map_or(Bound::Unbounded, Bound::Excluded),
                );
                let rows = self.scan_messages(conv, range, true, size + 1)?;
                page_of(LIST, keyed(rows), size)
            }
        })
    }

    /// One message by SID, read from the store (with its latest edit).
    /// Errors: unknown service, conversation or message;
    /// [`QueryError::Storage`] if the store cannot be read.
    pub fn message(
        &self,
        service: &ServiceSid,
        conversation: &ConversationRef,
        message: &MessageSid,
    ) -> Result<MessageRow, QueryError> {
        let conv = self.get_conversation(service, conversation)?;
        self.message_in(conv, message)?
            .ok_or_else(|| not_found("message", message))
    }

    /// A message's per-participant receipts (latest status each), ordered
    /// by participant SID. Errors: unknown service, conversation or
    /// message, bad page size or token.
    pub fn receipts(
        &self,
        service: &ServiceSid,
        conversation: &ConversationRef,
        message: &MessageSid,
        page: &PageRequest,
    ) -> Result<Page<ReceiptRow>, QueryError> {
        const LIST: &str = "receipts";
        let conv = self.get_conversation(service, conversation)?;
        let size = page.size()?;
        let after = page.after::<ParticipantSid>(LIST)?;
        let keyed =
            receipts_of(self, conv, message, after)?.map(|r| (r.participant_sid, r.clone()));
        Ok(page_of(LIST, keyed, size))
    }

    /// A message's `delivery` summary.
    pub fn delivery_summary(
        &self,
        service: &ServiceSid,
        conversation: &ConversationRef,
        message: &MessageSid,
    ) -> Result<DeliverySummary, QueryError> {
        let conv = self.get_conversation(service, conversation)?;
        let mut s = DeliverySummary::default();
        for r in receipts_of(self, conv, message, None)? {
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
            .user(user)
            .ok_or_else(|| not_found("user", user))
    }

    /// A user by identity.
    pub fn user_by_identity(
        &self,
        service: &ServiceSid,
        identity: &str,
    ) -> Result<&UserRow, QueryError> {
        self.get_service(service)?
            .user_by_identity(identity)
            .ok_or_else(|| not_found("user", identity))
    }

    /// A role by SID.
    pub fn role(&self, service: &ServiceSid, role: &RoleSid) -> Result<&RoleRow, QueryError> {
        self.get_service(service)?
            .role(role)
            .ok_or_else(|| not_found("role", role))
    }

    /// An address configuration by its address.
    pub fn address_configuration_by_address(
        &self,
        service: &ServiceSid,
        address: &str,
    ) -> Result<&AddressConfigurationRow, QueryError> {
        self.get_service(service)?
            .address_configuration_by_address(address)
            .ok_or_else(|| not_found("address configuration", address))
    }
}

/// `identity`'s [`UserConversation`] for its participant `p` of
/// conversation `c`; `None` if either is gone.
fn user_conversation_of(
    svc: &Service,
    identity: &str,
    c: ConversationSid,
    p: ParticipantSid,
) -> Option<UserConversation> {
    let conv = svc.conversations.get(&c)?;
    let part = conv.participants.get(&p)?;
    let level = svc
        .user_by_identity
        .get(identity)
        .map(|u| svc.notification_level(u, &c))
        .unwrap_or_default();
    Some(UserConversation {
        conversation_sid: c,
        participant_sid: p,
        last_read_message_index: part.last_read_message_index,
        unread_messages_count: part.last_read_message_index.map(|h| conv.unread_after(h)),
        notification_level: level,
        friendly_name: conv.row.friendly_name.clone(),
        unique_name: conv.row.unique_name.clone(),
        attributes: conv.row.attributes.clone(),
        conversation_state: conv.row.state,
        last_activity: conv.last_activity,
    })
}

/// The receipts of `message` in `conv`, by participant SID, after
/// `after`; `NotFound` if the message does not exist.
fn receipts_of<'c>(
    rm: &ReadModels,
    conv: &'c Conversation,
    message: &MessageSid,
    after: Option<ParticipantSid>,
) -> Result<impl Iterator<Item = &'c ReceiptRow> + 'c, QueryError> {
    rm.message_in(conv, message)?
        .ok_or_else(|| not_found("message", message))?;
    Ok(conv.receipts_after(message, after))
}

/// A page of ParticipantConversations from one of the service's
/// (conversation, participant) indexes.
fn pairs_page(
    svc: &Service,
    set: Option<&BTreeSet<(ConversationSid, ParticipantSid)>>,
    list: &'static str,
    page: &PageRequest,
) -> Result<Page<(ConversationRow, ParticipantRow)>, QueryError> {
    let size = page.size()?;
    let after = page.after::<(ConversationSid, ParticipantSid)>(list)?;
    let keyed = set
        .into_iter()
        .flat_map(move |set| set.range(after_bound(after)))
        .filter_map(|(c, p)| {
            let conv = svc.conversations.get(c)?;
            Some((
                (*c, *p),
                (conv.row.clone(), conv.participants.get(p)?.clone()),
            ))
        });
    Ok(page_of(list, keyed, size))
}
