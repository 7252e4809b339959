//! The per-user subscription index: after random joins, leaves, deletes,
//! closes, posts, reads, user deletions and reopens, each identity's
//! `user_conversations` holds exactly the conversations it is a
//! participant in — newest activity first, with exact unread counts, the
//! same page by page — and nothing of the other service's.

mod common;

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BTreeMap;

use common::Harness;
use engine_core::{CommandError, CommandOutcome};
use events::*;
use projections::PageRequest;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

const IDENTITIES: &[&str] = &["ann", "ben", "cat", "dan"];

#[derive(Debug, Clone)]
enum Op {
    Create { svc: usize },
    CreateWith { svc: usize, who: Vec<usize> },
    Join { svc: usize, conv: usize, who: usize },
    Leave { svc: usize, conv: usize, who: usize },
    Delete { svc: usize, conv: usize },
    Close { svc: usize, conv: usize },
    Post { svc: usize, conv: usize, who: usize },
    Read { svc: usize, conv: usize, who: usize },
    DeleteUser { svc: usize, who: usize },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let svc = prop_oneof![3 => Just(0usize), 1 => Just(1usize)];
    let who = 0usize..IDENTITIES.len();
    let conv = 0usize..8;
    prop_oneof![
        8 => svc.clone().prop_map(|svc| Op::Create { svc }),
        8 => (svc.clone(), prop::collection::vec(who.clone(), 0..=4))
            .prop_map(|(svc, who)| Op::CreateWith { svc, who }),
        24 => (svc.clone(), conv.clone(), who.clone())
            .prop_map(|(svc, conv, who)| Op::Join { svc, conv, who }),
        12 => (svc.clone(), conv.clone(), who.clone())
            .prop_map(|(svc, conv, who)| Op::Leave { svc, conv, who }),
        4 => (svc.clone(), conv.clone()).prop_map(|(svc, conv)| Op::Delete { svc, conv }),
        4 => (svc.clone(), conv.clone()).prop_map(|(svc, conv)| Op::Close { svc, conv }),
        16 => (svc.clone(), conv.clone(), who.clone())
            .prop_map(|(svc, conv, who)| Op::Post { svc, conv, who }),
        8 => (svc.clone(), conv.clone(), who.clone())
            .prop_map(|(svc, conv, who)| Op::Read { svc, conv, who }),
        4 => (svc, who).prop_map(|(svc, who)| Op::DeleteUser { svc, who }),
        1 => Just(Op::Reopen),
    ]
}

/// One conversation as the test sees it.
#[derive(Debug, Clone, Default)]
struct Conv {
    closed: bool,
    last_activity: u64,
    messages: u64,
    /// identity → (participant, horizon)
    members: BTreeMap<&'static str, (ParticipantSid, Option<u64>)>,
}

#[derive(Debug, Default)]
struct Svc {
    /// Every conversation created, in order; `None` once deleted.
    convs: Vec<(ConversationSid, Option<Conv>)>,
    /// identity → user, while it exists.
    users: BTreeMap<&'static str, UserSid>,
}

impl Svc {
    fn pick(&self, i: usize) -> Option<usize> {
        (!self.convs.is_empty()).then(|| i % self.convs.len())
    }

    fn learn_users(&mut self, outcome: &CommandOutcome) {
        for e in outcome.events() {
            if let Event::UserCreated {
                user_sid, identity, ..
            } = e
            {
                let who = IDENTITIES.iter().find(|i| **i == identity).unwrap();
                self.users.insert(who, *user_sid);
            }
        }
    }
}

fn at(outcome: &CommandOutcome) -> u64 {
    outcome.records[0].0.recorded_at
}

/// Runs one op on the engine and the model; the engine must accept
/// exactly what the model accepts.
fn step(
    h: &mut Harness,
    services: &[ServiceSid; 2],
    model: &mut [Svc; 2],
    op: &Op,
) -> Result<(), TestCaseError> {
    let svc_of = |svc: &usize| (services[*svc], *svc);
    let refused = |r: Result<CommandOutcome, CommandError>, what: &str| match r {
        Err(_) => Ok(()),
        Ok(o) => Err(TestCaseError::fail(format!(
            "{what}: expected a refusal, got {:?}",
            common::kinds(&o)
        ))),
    };
    match op {
        Op::Reopen => h.reopen(),
        Op::Create { svc } => {
            let (s, i) = svc_of(svc);
            let out = h.ok(Command::from(CreateConversation::new(s)));
            let conv = Conv {
                last_activity: at(&out),
                ..Conv::default()
            };
            model[i]
                .convs
                .push((out.conversation_sid().unwrap(), Some(conv)));
        }
        Op::CreateWith { svc, who } => {
            let (s, i) = svc_of(svc);
            let command =
                Command::CreateConversationWithParticipants(CreateConversationWithParticipants {
                    service: s,
                    spec: ConversationSpec::default(),
                    participants: who
                        .iter()
                        .map(|w| ParticipantSpec::chat(IDENTITIES[*w]))
                        .collect(),
                });
            let mut distinct = who.clone();
            distinct.sort();
            distinct.dedup();
            if distinct.len() < who.len() {
                return refused(h.exec(command), "a repeated identity");
            }
            let out = h.ok(command);
            model[i].learn_users(&out);
            let mut conv = Conv {
                last_activity: at(&out),
                ..Conv::default()
            };
            for (w, p) in who.iter().zip(out.participant_sids()) {
                conv.members.insert(IDENTITIES[*w], (p, None));
            }
            model[i]
                .convs
                .push((out.conversation_sid().unwrap(), Some(conv)));
        }
        Op::Join { svc, conv, who } => {
            let (s, i) = svc_of(svc);
            let Some(c) = model[i].pick(*conv) else {
                return Ok(());
            };
            let (cs, ref state) = model[i].convs[c];
            let identity = IDENTITIES[*who];
            let command =
                Command::from(AddParticipant::new(s, cs, ParticipantSpec::chat(identity)));
            let ok = state
                .as_ref()
                .is_some_and(|c| !c.closed && !c.members.contains_key(identity));
            if !ok {
                return refused(h.exec(command), "a join");
            }
            let out = h.ok(command);
            model[i].learn_users(&out);
            let p = out.participant_sids()[0];
            let conv = model[i].convs[c].1.as_mut().unwrap();
            conv.members.insert(identity, (p, None));
        }
        Op::Leave { svc, conv, who } => {
            let (s, i) = svc_of(svc);
            let Some(c) = model[i].pick(*conv) else {
                return Ok(());
            };
            let identity = IDENTITIES[*who];
            let (cs, state) = &mut model[i].convs[c];
            let member = state
                .as_ref()
                .and_then(|c| c.members.get(identity))
                .map(|(p, _)| *p);
            let command = |participant| {
                Command::RemoveParticipant(RemoveParticipant {
                    service: s,
                    conversation: ConversationRef::Sid(*cs),
                    participant,
                })
            };
            match member {
                None => {
                    let nobody = ParticipantSid::derive(identity.as_bytes());
                    return refused(h.exec(command(nobody)), "a leave");
                }
                Some(p) => {
                    h.ok(command(p));
                    state.as_mut().unwrap().members.remove(identity);
                }
            }
        }
        Op::Delete { svc, conv } => {
            let (s, i) = svc_of(svc);
            let Some(c) = model[i].pick(*conv) else {
                return Ok(());
            };
            let (cs, state) = &mut model[i].convs[c];
            let command = Command::DeleteConversation(DeleteConversation {
                service: s,
                conversation: ConversationRef::Sid(*cs),
            });
            if state.is_none() {
                return refused(h.exec(command), "a delete");
            }
            h.ok(command);
            *state = None;
        }
        Op::Close { svc, conv } => {
            let (s, i) = svc_of(svc);
            let Some(c) = model[i].pick(*conv) else {
                return Ok(());
            };
            let (cs, state) = &mut model[i].convs[c];
            let command = Command::UpdateConversation(UpdateConversation {
                service: s,
                conversation: ConversationRef::Sid(*cs),
                friendly_name: None,
                unique_name: None,
                attributes: None,
                state: Some(ConversationState::Closed),
                timers: None,
            });
            match state {
                None => return refused(h.exec(command), "a close"),
                Some(conv) => {
                    h.ok(command);
                    conv.closed = true;
                }
            }
        }
        Op::Post { svc, conv, who } => {
            let (s, i) = svc_of(svc);
            let Some(c) = model[i].pick(*conv) else {
                return Ok(());
            };
            let (cs, state) = &mut model[i].convs[c];
            let command = Command::from(
                PostMessage::new(s, *cs)
                    .author(IDENTITIES[*who])
                    .body("news"),
            );
            match state {
                Some(conv) if !conv.closed => {
                    let out = h.ok(command);
                    conv.messages += 1;
                    conv.last_activity = at(&out);
                }
                _ => return refused(h.exec(command), "a post"),
            }
        }
        Op::Read { svc, conv, who } => {
            let (s, i) = svc_of(svc);
            let Some(c) = model[i].pick(*conv) else {
                return Ok(());
            };
            let identity = IDENTITIES[*who];
            let (cs, state) = &mut model[i].convs[c];
            let Some((p, horizon)) = state.as_mut().and_then(|c| {
                let messages = c.messages;
                c.members
                    .get_mut(identity)
                    .map(|m| (m.0, (&mut m.1, messages)))
            }) else {
                return Ok(());
            };
            h.ok(Command::UpdateReadHorizon(UpdateReadHorizon {
                service: s,
                conversation: ConversationRef::Sid(*cs),
                participant: p,
                last_read_message_index: Some(u64::MAX),
                mode: HorizonMode::Set,
            }));
            // Clamped to the last index; nothing while there is no message.
            *horizon.0 = horizon.1.checked_sub(1);
        }
        Op::DeleteUser { svc, who } => {
            let (s, i) = svc_of(svc);
            let identity = IDENTITIES[*who];
            match model[i].users.remove(identity) {
                Some(user) => {
                    h.ok(Command::DeleteUser(DeleteUser { service: s, user }));
                }
                None => {
                    let user = UserSid::derive(identity.as_bytes());
                    return refused(
                        h.exec(Command::DeleteUser(DeleteUser { service: s, user })),
                        "a user delete",
                    );
                }
            }
        }
    }
    Ok(())
}

/// Each identity's list equals the model's, whole and page by page.
fn check(h: &Harness, services: &[ServiceSid; 2], model: &[Svc; 2]) -> Result<(), TestCaseError> {
    h.engine().read(|rm| check_lists(rm, services, model))
}

fn check_lists(
    rm: &projections::ReadModels,
    services: &[ServiceSid; 2],
    model: &[Svc; 2],
) -> Result<(), TestCaseError> {
    for (s, m) in services.iter().zip(model) {
        for identity in IDENTITIES {
            let mut want: Vec<_> = m
                .convs
                .iter()
                .filter_map(|(cs, c)| {
                    let c = c.as_ref()?;
                    let (p, horizon) = c.members.get(identity)?;
                    // No horizon, no count (Twilio's null).
                    let unread = horizon.map(|h| c.messages - 1 - h);
                    Some((*cs, *p, unread, c.last_activity))
                })
                .collect();
            want.sort_by_key(|w| (Reverse(w.3), w.0));
            let shape = |items: Vec<projections::UserConversation>| -> Vec<_> {
                items
                    .into_iter()
                    .map(|u| {
                        (
                            u.conversation_sid,
                            u.participant_sid,
                            u.unread_messages_count,
                            u.last_activity,
                        )
                    })
                    .collect()
            };
            let whole = rm
                .user_conversations(
                    s,
                    identity,
                    &PageRequest {
                        page_size: Some(100),
                        page_token: None,
                    },
                )
                .unwrap();
            prop_assert_eq!(whole.next_page_token, None);
            prop_assert_eq!(
                shape(whole.items),
                want.clone(),
                "{}'s conversations",
                identity
            );

            for size in 1..=3 {
                let mut paged = Vec::new();
                let mut token = None;
                loop {
                    let page = rm
                        .user_conversations(
                            s,
                            identity,
                            &PageRequest {
                                page_size: Some(size),
                                page_token: token,
                            },
                        )
                        .unwrap();
                    prop_assert!(page.items.len() <= size);
                    paged.extend(shape(page.items));
                    token = page.next_page_token;
                    if token.is_none() {
                        break;
                    }
                    prop_assert!(paged.len() <= want.len(), "paging does not end");
                }
                prop_assert_eq!(&paged, &want, "{} in pages of {}", identity, size);
            }

            let mut pairs: Vec<_> = rm
                .participant_conversations_by_identity(
                    s,
                    identity,
                    &PageRequest::with_size(events::limits::PAGE_SIZE_MAX),
                )
                .unwrap()
                .items
                .into_iter()
                .map(|(c, p)| (c.sid, p.sid))
                .collect();
            pairs.sort();
            let mut want_pairs: Vec<_> = want.iter().map(|w| (w.0, w.1)).collect();
            want_pairs.sort();
            prop_assert_eq!(pairs, want_pairs);
        }
    }
    Ok(())
}

#[test]
fn a_users_conversations_are_exactly_those_it_participates_in() {
    let h = RefCell::new(Harness::new());
    let config = ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&prop::collection::vec(op(), 1..=30), |ops| {
        let mut h = h.borrow_mut();
        // Fresh services for every case, in one long-lived store.
        let services = [
            h.ok(CreateService::new("subscriptions")),
            h.ok(CreateService::new("other")),
        ];
        let mut model = [Svc::default(), Svc::default()];
        for op in &ops {
            step(&mut h, &services, &mut model, op)?;
            check(&h, &services, &model)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
