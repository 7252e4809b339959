//! Paged lists: every list walks page by page to exactly its unpaged
//! listing, a walk stays exact while items are added (a token names a key,
//! not an offset), and a bad page size or token is a typed `QueryError`.

mod support;

use events::limits::{PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX};
use events::*;
use projections::{Order, Page, PageRequest, QueryError, ReadModels, RowMap};
use proptest::prelude::*;

/// The service every list but `Services` lives in.
const SERVICE: ServiceSid = ServiceSid([1; 16]);
/// The conversation that holds the participants, messages and receipts.
const MAIN: ConversationSid = ConversationSid([2; 16]);
/// The message whose receipts are listed.
const RECEIPTED: MessageSid = MessageSid([3; 16]);
/// The chat identity that joins a conversation per `ByIdentity` item.
const WALKER: &str = "walker";
/// The binding address that joins a conversation per `ByAddress` item.
const WALKER_ADDRESS: &str = "+15550000000";
/// A SID no fixture creates.
const MISSING: ServiceSid = ServiceSid([0xee; 16]);
/// Most items a proptest case puts in a list before its walk: several
/// pages at the page sizes it draws.
const ITEMS_MAX: usize = 12;
/// Largest page size a proptest case draws: small, so walks have pages.
const CASE_PAGE_SIZE_MAX: usize = 5;
/// Most items a case adds between two pages of a walk.
const APPENDS_PER_PAGE_MAX: usize = 3;

/// Read models built by applying events, as the engine does.
struct Fixture {
    rm: ReadModels,
    rows: RowMap,
    /// Seeds fresh SIDs, so SID order differs from creation order.
    next_seed: u64,
    /// The next message index of `MAIN`.
    next_index: u64,
}

impl Fixture {
    /// A service holding `MAIN`, whose message `RECEIPTED` exists.
    fn new() -> Self {
        let mut f = Fixture {
            rm: ReadModels::new(),
            rows: RowMap::new(),
            next_seed: 0,
            next_index: 0,
        };
        f.apply(
            SERVICE,
            Event::ServiceCreated {
                friendly_name: "paging".into(),
            },
        );
        f.conversation(MAIN);
        f.message_sid(RECEIPTED);
        f
    }

    fn apply(&mut self, service: ServiceSid, event: Event) {
        support::apply_next(&mut self.rm, &mut self.rows, service, event);
        // Messages are read from the rows written, as from the engine's store.
        self.rm.set_cold(std::sync::Arc::new(self.rows.clone()));
    }

    fn seed(&mut self) -> Vec<u8> {
        self.next_seed += 1;
        self.next_seed.to_le_bytes().to_vec()
    }

    fn conversation(&mut self, sid: ConversationSid) {
        self.apply(SERVICE, support::conversation_created(sid));
    }

    fn participant(&mut self, conversation: ConversationSid, kind: ParticipantKind) {
        let participant_sid = ParticipantSid::derive(&self.seed());
        self.apply(
            SERVICE,
            Event::ParticipantAdded {
                conversation_sid: conversation,
                participant_sid,
                kind,
                user_sid: None,
                attributes: "{}".into(),
                role_sid: None,
            },
        );
    }

    fn message_sid(&mut self, message_sid: MessageSid) {
        let index = self.next_index;
        self.next_index += 1;
        self.apply(
            SERVICE,
            Event::MessageAdded {
                conversation_sid: MAIN,
                message_sid,
                index,
                author: "system".into(),
                participant_sid: None,
                body: Some(format!("m{index}")),
                media: vec![],
                attributes: "{}".into(),
            },
        );
    }

    /// Adds one item to `list`.
    fn add(&mut self, list: List) {
        let seed = self.seed();
        let n = self.next_seed;
        match list {
            List::Services => self.apply(
                ServiceSid::derive(&seed),
                Event::ServiceCreated {
                    friendly_name: format!("s{n}"),
                },
            ),
            List::Users => self.apply(
                SERVICE,
                Event::UserCreated {
                    user_sid: UserSid::derive(&seed),
                    identity: format!("user-{n}"),
                    friendly_name: None,
                    attributes: "{}".into(),
                    role_sid: None,
                },
            ),
            List::Roles => self.apply(
                SERVICE,
                Event::RoleCreated {
                    role_sid: RoleSid::derive(&seed),
                    friendly_name: format!("role-{n}"),
                    role_type: RoleType::Conversation,
                    permissions: vec![],
                },
            ),
            List::AddressConfigurations => self.apply(
                SERVICE,
                Event::AddressConfigurationCreatedV2 {
                    address_configuration_sid: AddressConfigurationSid::derive(&seed),
                    address_type: AddressType::Sms,
                    address: format!("+1999{n:07}"),
                    friendly_name: None,
                    auto_creation: AutoCreation::default(),
                },
            ),
            List::Conversations => self.conversation(ConversationSid::derive(&seed)),
            List::Participants => self.participant(
                MAIN,
                ParticipantKind::Chat {
                    identity: format!("member-{n}"),
                    projected_address: None,
                },
            ),
            List::ByIdentity => {
                let c = ConversationSid::derive(&seed);
                self.conversation(c);
                self.participant(
                    c,
                    ParticipantKind::Chat {
                        identity: WALKER.into(),
                        projected_address: None,
                    },
                );
            }
            List::ByAddress => {
                let c = ConversationSid::derive(&seed);
                self.conversation(c);
                self.participant(
                    c,
                    ParticipantKind::Messaging(MessagingBinding {
                        address: WALKER_ADDRESS.into(),
                        proxy_address: format!("+1888{n:07}"),
                        projected_address: None,
                    }),
                );
            }
            List::Receipts => self.apply(
                SERVICE,
                Event::DeliveryReceiptRecorded {
                    conversation_sid: MAIN,
                    receipt_sid: ReceiptSid::derive(&seed),
                    message_sid: RECEIPTED,
                    participant_sid: ParticipantSid::derive(&seed),
                    status: DeliveryStatus::Sent,
                    error_code: None,
                    channel_message_sid: None,
                },
            ),
            List::MessagesAsc | List::MessagesDesc => {
                self.message_sid(MessageSid::derive(&seed));
            }
        }
    }
}

/// Every paged list, by what it lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum List {
    Services,
    Users,
    Roles,
    AddressConfigurations,
    Conversations,
    Participants,
    ByIdentity,
    ByAddress,
    Receipts,
    MessagesAsc,
    MessagesDesc,
}

const LISTS: [List; 11] = [
    List::Services,
    List::Users,
    List::Roles,
    List::AddressConfigurations,
    List::Conversations,
    List::Participants,
    List::ByIdentity,
    List::ByAddress,
    List::Receipts,
    List::MessagesAsc,
    List::MessagesDesc,
];

impl List {
    /// One page, each item shown by its key.
    fn page(
        self,
        rm: &ReadModels,
        service: &ServiceSid,
        page: &PageRequest,
    ) -> Result<Page<String>, QueryError> {
        fn keys<T>(p: Page<T>, key: impl Fn(&T) -> String) -> Page<String> {
            Page {
                items: p.items.iter().map(key).collect(),
                next_page_token: p.next_page_token,
            }
        }
        let main = ConversationRef::Sid(MAIN);
        let pair = |(c, p): &(projections::ConversationRow, projections::ParticipantRow)| {
            format!("{}/{}", c.sid, p.sid)
        };
        Ok(match self {
            List::Services => keys(rm.list_services(page)?, |s| s.sid.to_string()),
            List::Users => keys(rm.list_users(service, page)?, |u| u.sid.to_string()),
            List::Roles => keys(rm.list_roles(service, page)?, |r| r.sid.to_string()),
            List::AddressConfigurations => {
                keys(rm.list_address_configurations(service, page)?, |a| {
                    a.sid.to_string()
                })
            }
            List::Conversations => keys(rm.list_conversations(service, None, page)?, |c| {
                c.sid.to_string()
            }),
            List::Participants => keys(rm.participants(service, &main, page)?, |p| {
                p.sid.to_string()
            }),
            List::ByIdentity => keys(
                rm.participant_conversations_by_identity(service, WALKER, page)?,
                pair,
            ),
            List::ByAddress => keys(
                rm.participant_conversations_by_address(service, WALKER_ADDRESS, page)?,
                pair,
            ),
            List::Receipts => keys(rm.receipts(service, &main, &RECEIPTED, page)?, |r| {
                r.participant_sid.to_string()
            }),
            List::MessagesAsc => keys(rm.messages(service, &main, Order::Asc, page)?, |m| {
                m.index.to_string()
            }),
            List::MessagesDesc => keys(rm.messages(service, &main, Order::Desc, page)?, |m| {
                m.index.to_string()
            }),
        })
    }

    /// The unpaged listing, in the list's order, from the accessors.
    fn all(self, rm: &ReadModels) -> Vec<String> {
        let svc = rm.service(&SERVICE).unwrap();
        let main = svc.conversation_by_sid(&MAIN).unwrap();
        let pairs = |it: &mut dyn Iterator<Item = (ConversationSid, ParticipantSid)>| {
            it.map(|(c, p)| format!("{c}/{p}")).collect()
        };
        match self {
            List::Services => rm.services().map(|s| s.row().sid.to_string()).collect(),
            List::Users => svc.users().map(|u| u.sid.to_string()).collect(),
            List::Roles => svc.roles().map(|r| r.sid.to_string()).collect(),
            List::AddressConfigurations => svc
                .address_configurations()
                .map(|a| a.sid.to_string())
                .collect(),
            List::Conversations => {
                let mut all: Vec<_> = svc
                    .conversations()
                    .map(|c| (c.row().date_created, c.row().sid))
                    .collect();
                all.sort();
                all.into_iter().map(|(_, sid)| sid.to_string()).collect()
            }
            List::Participants => main.participants().map(|p| p.sid.to_string()).collect(),
            List::ByIdentity => pairs(&mut svc.identity_participants(WALKER)),
            List::ByAddress => pairs(&mut svc.address_participants(WALKER_ADDRESS)),
            List::Receipts => main
                .receipts(&RECEIPTED)
                .map(|r| r.participant_sid.to_string())
                .collect(),
            List::MessagesAsc | List::MessagesDesc => {
                let reverse = self == List::MessagesDesc;
                let all = rm.scan_messages(main, .., reverse, usize::MAX).unwrap();
                all.iter().map(|m| m.index.to_string()).collect()
            }
        }
    }
}

/// Walks `list` in pages of `size`, adding `appends[i]` items after page
/// `i`; returns the keys served.
fn walk(f: &mut Fixture, list: List, size: usize, appends: &[usize]) -> Vec<String> {
    let mut request = PageRequest::with_size(size);
    let mut served = Vec::new();
    for page_number in 0.. {
        let page = list.page(&f.rm, &SERVICE, &request).unwrap();
        assert!(page.items.len() <= size, "{list:?}: page over its size");
        served.extend(page.items.iter().cloned());
        // Every page serves at least one item, so a walk that repeats
        // itself overtakes the list and ends here.
        assert!(
            served.len() <= list.all(&f.rm).len(),
            "{list:?}: the walk served more than the list holds"
        );
        let Some(next) = page.next_request(&request) else {
            assert!(
                !page.items.is_empty() || page_number == 0,
                "{list:?}: empty page"
            );
            break;
        };
        assert_eq!(
            page.items.len(),
            size,
            "{list:?}: a short page before the end"
        );
        for _ in 0..appends.get(page_number).copied().unwrap_or(0) {
            f.add(list);
        }
        request = next;
    }
    served
}

fn fixture_with(list: List, items: usize) -> Fixture {
    let mut f = Fixture::new();
    for _ in 0..items {
        f.add(list);
    }
    f
}

#[test]
fn every_list_pages_to_its_unpaged_listing() {
    for list in LISTS {
        for items in [0, 1, 4, 5, 9] {
            for size in [1, 2, 4, 5, PAGE_SIZE_MAX] {
                let mut f = fixture_with(list, items);
                let want = list.all(&f.rm);
                assert_eq!(
                    walk(&mut f, list, size, &[]),
                    want,
                    "{list:?}, {items} added, pages of {size}"
                );
            }
        }
    }
}

#[test]
fn the_default_page_size_is_page_size_default() {
    for list in LISTS {
        let f = fixture_with(list, PAGE_SIZE_DEFAULT + 1);
        let page = list.page(&f.rm, &SERVICE, &PageRequest::default()).unwrap();
        assert_eq!(page.items.len(), PAGE_SIZE_DEFAULT, "{list:?}");
        assert!(page.next_page_token.is_some(), "{list:?}");
    }
}

#[test]
fn a_page_size_outside_one_to_page_size_max_is_refused() {
    for list in LISTS {
        let f = fixture_with(list, 1);
        for (size, ok) in [
            (0, false),
            (1, true),
            (PAGE_SIZE_MAX, true),
            (PAGE_SIZE_MAX + 1, false),
        ] {
            let got = list.page(&f.rm, &SERVICE, &PageRequest::with_size(size));
            match (ok, got) {
                (true, Ok(_)) => {}
                (false, Err(QueryError::PageSize(n))) => assert_eq!(n, size),
                (_, other) => panic!("{list:?}, page size {size}: {other:?}"),
            }
        }
    }
}

#[test]
fn a_list_of_an_unknown_service_is_not_found() {
    for list in LISTS.into_iter().filter(|l| *l != List::Services) {
        let f = fixture_with(list, 1);
        let got = list.page(&f.rm, &MISSING, &PageRequest::default());
        assert!(
            matches!(
                &got,
                Err(QueryError::NotFound {
                    kind: "service",
                    ..
                })
            ),
            "{list:?}: {got:?}"
        );
    }
}

/// A token of the first page of `list`, holding two pages.
fn first_token(list: List) -> String {
    let f = fixture_with(list, 2);
    list.page(&f.rm, &SERVICE, &PageRequest::with_size(1))
        .unwrap()
        .next_page_token
        .expect("two items make two pages")
}

#[test]
fn a_token_not_issued_by_the_list_is_a_typed_error() {
    for list in LISTS {
        let own = first_token(list);
        let mut bad = vec![
            String::new(),
            "garbage".to_string(),
            own[..own.len() - 1].to_string(),
            format!("{own}x"),
            own.replacen(':', ";", 1),
        ];
        // Every other list's token, the other message order's included.
        bad.extend(
            LISTS
                .into_iter()
                .filter(|other| *other != list)
                .map(first_token),
        );
        let f = fixture_with(list, 2);
        for token in bad {
            let request = PageRequest {
                page_size: Some(1),
                page_token: Some(token.clone()),
            };
            match list.page(&f.rm, &SERVICE, &request) {
                Err(QueryError::PageToken { token: got, .. }) => assert_eq!(got, token),
                other => panic!("{list:?}, token {token:?}: {other:?}"),
            }
        }
    }
}

#[test]
fn a_bad_token_names_the_list_and_the_fix() {
    let f = fixture_with(List::Users, 2);
    let request = PageRequest {
        page_size: None,
        page_token: Some(first_token(List::Roles)),
    };
    let err = f.rm.list_users(&SERVICE, &request).unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("users list"), "{shown}");
    assert!(shown.contains("next_page_token"), "{shown}");
}

/// Regression shape for offset tokens: a message posted between two pages
/// of a newest-first walk shifted every later page by one, serving one
/// message twice.
#[test]
fn a_desc_message_walk_is_not_shifted_by_new_messages() {
    let mut f = fixture_with(List::MessagesDesc, 4);
    let want = List::MessagesDesc.all(&f.rm);
    let served = walk(&mut f, List::MessagesDesc, 2, &[1, 1, 1]);
    assert_eq!(served, want, "the walk serves what was there, once");
}

fn strategy_list() -> impl Strategy<Value = List> {
    (0..LISTS.len()).prop_map(|i| LISTS[i])
}

proptest! {
    /// Without appends, a paged walk is the unpaged listing; with appends
    /// between pages, every item there before the walk is served exactly
    /// once, nothing is served twice, and the order is the list's.
    #[test]
    fn paged_walks_serve_every_item_once_in_order(
        list in strategy_list(),
        items in 0..=ITEMS_MAX,
        size in 1..=CASE_PAGE_SIZE_MAX,
        appends in proptest::collection::vec(0..=APPENDS_PER_PAGE_MAX, 0..ITEMS_MAX),
    ) {
        let mut f = fixture_with(list, items);
        let before = list.all(&f.rm);
        let quiet = walk(&mut f, list, size, &[]);
        prop_assert_eq!(&quiet, &before);

        let served = walk(&mut f, list, size, &appends);
        let after = list.all(&f.rm);
        for key in &before {
            prop_assert_eq!(
                served.iter().filter(|k| *k == key).count(),
                1,
                "{:?}: {} served once",
                list,
                key
            );
        }
        let in_order: Vec<_> = after.iter().filter(|k| served.contains(k)).cloned().collect();
        prop_assert_eq!(&served, &in_order, "{:?}: served in the list's order, no repeats", list);
    }
}
