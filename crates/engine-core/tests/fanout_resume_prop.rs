//! Property: under random interleavings of posts, joins, leaves, user
//! updates and deletions, reads, disconnects and `since`-reconnects (with tiny queues, so sessions also
//! lag and resume on their own), every device receives exactly the events
//! its identity should see from its start on: no loss, no duplicate, in
//! log order. The expected lists come from an independent model folded
//! over the final log. The fan-out's cache of recent records varies from
//! none (every resume reads the log) through a few records (resumes read
//! the log, then the cache, then the log again past what the cache has
//! yet) to the default.

mod fanout_support;

use std::collections::HashMap;
use std::time::Duration;

use engine_core::{Engine, EngineOptions, FanoutMetrics, FanoutOptions, Session, SessionStart};
use events::*;
use fanout_support::*;
use proptest::prelude::*;

const IDENTITIES: usize = 4;
const DEVICES_PER_IDENTITY: usize = 2;
const DEVICES: usize = IDENTITIES * DEVICES_PER_IDENTITY;
const CONVERSATIONS: usize = 3;
/// Tiny queues: devices that do not read lag and resume by themselves.
const QUEUE_EVENTS: usize = 4;
const BURST_MESSAGES: usize = 6;
/// Cache sizes the fixed case runs with: none, smaller than one burst,
/// the default.
const RECENT_RECORDS: [usize; 3] = [0, 5, engine_core::fanout::RECENT_RECORDS_DEFAULT];

#[derive(Debug, Clone)]
enum Op {
    Post { conv: usize, author: usize },
    Burst { conv: usize },
    Join { conv: usize, who: usize },
    Leave { conv: usize, who: usize },
    Horizon { conv: usize, who: usize },
    UpdateUser { who: usize },
    DeleteUser { who: usize },
    DeleteConversation { conv: usize },
    Disconnect { device: usize },
    Reconnect { device: usize },
    Read { device: usize, max: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let conv = 0..CONVERSATIONS;
    let who = 0..IDENTITIES;
    let device = 0..DEVICES;
    prop_oneof![
        6 => (conv.clone(), who.clone()).prop_map(|(conv, author)| Op::Post { conv, author }),
        1 => conv.clone().prop_map(|conv| Op::Burst { conv }),
        4 => (conv.clone(), who.clone()).prop_map(|(conv, who)| Op::Join { conv, who }),
        2 => (conv.clone(), who.clone()).prop_map(|(conv, who)| Op::Leave { conv, who }),
        1 => (conv.clone(), who.clone()).prop_map(|(conv, who)| Op::Horizon { conv, who }),
        2 => who.clone().prop_map(|who| Op::UpdateUser { who }),
        1 => who.clone().prop_map(|who| Op::DeleteUser { who }),
        1 => conv.prop_map(|conv| Op::DeleteConversation { conv }),
        3 => device.clone().prop_map(|device| Op::Disconnect { device }),
        3 => device.clone().prop_map(|device| Op::Reconnect { device }),
        4 => (device, 1usize..12).prop_map(|(device, max)| Op::Read { device, max }),
    ]
}

fn identity(who: usize) -> String {
    format!("u{who}")
}

struct Device {
    identity: String,
    session: Option<Session>,
    /// The cursor saved at the last disconnect.
    cursor: Option<u64>,
    /// Expected events are those after this position (`None`: all).
    start: Option<u64>,
    received: Vec<(u64, &'static str)>,
}

impl Device {
    fn read(&mut self, max: usize) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        for _ in 0..max {
            match s.try_recv().unwrap() {
                Some(e) => self.received.push((e.cursor().unwrap(), e.name())),
                None => break,
            }
        }
    }

    fn reconnect(&mut self, engine: &Engine, service: ServiceSid) {
        if self.session.is_some() {
            return;
        }
        let start = match self.cursor {
            Some(c) => SessionStart::After(c),
            None => SessionStart::Beginning,
        };
        self.session = Some(engine.open_session(service, &self.identity, start).unwrap());
    }
}

/// The independent model: what each identity should see, from the log.
fn model(engine: &Engine) -> HashMap<String, Vec<(u64, &'static str)>> {
    let head = engine.log().head().next_position;
    let mut out: HashMap<String, Vec<(u64, &'static str)>> = HashMap::new();
    let mut members: HashMap<ConversationSid, HashMap<ParticipantSid, Option<String>>> =
        HashMap::new();
    let mut users: HashMap<UserSid, String> = HashMap::new();
    for record in engine.log().read_range(0..head) {
        let record = record.unwrap();
        let pos = record.header.position;
        let event = record.event().unwrap();
        let mut push = |who: &str, name: &'static str| {
            out.entry(who.to_string()).or_default().push((pos, name));
        };
        let chat = |m: &HashMap<ParticipantSid, Option<String>>| -> Vec<String> {
            m.values().flatten().cloned().collect()
        };
        let to_members =
            |c: &ConversationSid,
             members: &HashMap<ConversationSid, HashMap<ParticipantSid, Option<String>>>,
             name: &'static str,
             push: &mut dyn FnMut(&str, &'static str)| {
                if let Some(m) = members.get(c) {
                    for who in chat(m) {
                        push(&who, name);
                    }
                }
            };
        match &event {
            Event::ConversationCreated {
                conversation_sid, ..
            } => {
                members.insert(*conversation_sid, HashMap::new());
            }
            Event::ParticipantAdded {
                conversation_sid,
                participant_sid,
                kind,
                ..
            } => {
                let m = members.get_mut(conversation_sid).unwrap();
                for who in chat(m) {
                    push(&who, "participantJoined");
                }
                if let Some(id) = kind.identity() {
                    push(id, "conversationAdded");
                }
                m.insert(*participant_sid, kind.identity().map(str::to_string));
            }
            Event::ParticipantRemoved {
                conversation_sid,
                participant_sid,
            } => {
                let m = members.get_mut(conversation_sid).unwrap();
                let gone = m.remove(participant_sid).flatten();
                for who in chat(m) {
                    push(&who, "participantLeft");
                }
                if let Some(id) = gone {
                    push(&id, "conversationRemoved");
                }
            }
            Event::ConversationRemoved { conversation_sid } => {
                to_members(conversation_sid, &members, "conversationRemoved", &mut push);
                members.remove(conversation_sid);
            }
            Event::ConversationUpdated {
                conversation_sid, ..
            } => to_members(conversation_sid, &members, "conversationUpdated", &mut push),
            Event::ParticipantUpdated {
                conversation_sid, ..
            }
            | Event::ReadHorizonUpdated {
                conversation_sid, ..
            } => to_members(conversation_sid, &members, "participantUpdated", &mut push),
            Event::MessageAdded {
                conversation_sid, ..
            } => to_members(conversation_sid, &members, "messageAdded", &mut push),
            Event::MessageUpdated {
                conversation_sid, ..
            }
            | Event::DeliveryReceiptRecorded {
                conversation_sid, ..
            } => to_members(conversation_sid, &members, "messageUpdated", &mut push),
            Event::MessageRemoved {
                conversation_sid, ..
            } => to_members(conversation_sid, &members, "messageRemoved", &mut push),
            Event::UserCreated {
                user_sid, identity, ..
            } => {
                users.insert(*user_sid, identity.clone());
            }
            Event::UserUpdated { user_sid, .. } => push(&users[user_sid], "userUpdated"),
            Event::UserConversationUpdated { user_sid, .. } => {
                push(&users[user_sid], "conversationUpdated")
            }
            _ => {}
        }
    }
    out
}

fn run_case(ops: Vec<Op>, recent_records: usize) -> Result<FanoutMetrics, TestCaseError> {
    let f = open(
        EngineOptions::default().fanout(
            FanoutOptions::default()
                .session_queue_events(QUEUE_EVENTS)
                .replay_chunk_records(7)
                .recent_records(recent_records),
        ),
    );
    let convs: Vec<ConversationSid> = (0..CONVERSATIONS).map(|_| f.conversation()).collect();
    let mut deleted = [false; CONVERSATIONS];
    let mut joined: HashMap<(usize, usize), ParticipantSid> = HashMap::new();
    let mut devices: Vec<Device> = (0..DEVICES)
        .map(|d| {
            let identity = identity(d / DEVICES_PER_IDENTITY);
            let start = if d % 2 == 0 {
                SessionStart::Beginning
            } else {
                SessionStart::Live
            };
            let session = f.engine.open_session(f.service, &identity, start).unwrap();
            Device {
                identity,
                start: session.cursor().filter(|_| d % 2 == 1),
                cursor: None,
                session: Some(session),
                received: Vec::new(),
            }
        })
        .collect();

    for op in ops {
        match op {
            Op::Post { conv, author } => {
                if deleted[conv] {
                    continue;
                }
                let author = if joined.contains_key(&(conv, author)) {
                    identity(author)
                } else {
                    "system".to_string()
                };
                f.post(convs[conv], &author, "hello");
            }
            Op::Burst { conv } => {
                if deleted[conv] {
                    continue;
                }
                for _ in 0..BURST_MESSAGES {
                    f.post(convs[conv], "system", "burst");
                }
            }
            Op::Join { conv, who } => {
                if deleted[conv] || joined.contains_key(&(conv, who)) {
                    continue;
                }
                let p = f.join(convs[conv], &identity(who));
                joined.insert((conv, who), p);
            }
            Op::Leave { conv, who } => {
                if let Some(p) = joined.remove(&(conv, who)) {
                    f.run(RemoveParticipant::new(f.service, convs[conv], p));
                }
            }
            Op::Horizon { conv, who } => {
                if let Some(p) = joined.get(&(conv, who)) {
                    f.run(UpdateReadHorizon::set(f.service, convs[conv], *p, None));
                }
            }
            Op::UpdateUser { who } => {
                let user = f
                    .engine
                    .read(|rm| {
                        rm.user_by_identity(&f.service, &identity(who))
                            .map(|u| u.sid)
                    })
                    .ok();
                if let Some(user) = user {
                    let name = format!("n{}", f.head());
                    f.run(UpdateUser::new(f.service, user).friendly_name(name));
                }
            }
            Op::DeleteUser { who } => {
                let user = f
                    .engine
                    .read(|rm| {
                        rm.user_by_identity(&f.service, &identity(who))
                            .map(|u| u.sid)
                    })
                    .ok();
                if let Some(user) = user {
                    f.run(DeleteUser::new(f.service, user));
                }
            }
            Op::DeleteConversation { conv } => {
                if deleted[conv] {
                    continue;
                }
                deleted[conv] = true;
                joined.retain(|(c, _), _| *c != conv);
                f.run(DeleteConversation::new(f.service, convs[conv]));
            }
            Op::Disconnect { device } => {
                let d = &mut devices[device];
                if let Some(s) = d.session.take() {
                    d.cursor = s.cursor();
                }
            }
            Op::Reconnect { device } => devices[device].reconnect(&f.engine, f.service),
            Op::Read { device, max } => devices[device].read(max),
        }
    }

    let expected = model(&f.engine);
    for d in &mut devices {
        d.reconnect(&f.engine, f.service);
        let want: Vec<(u64, &'static str)> = expected
            .get(&d.identity)
            .into_iter()
            .flatten()
            .filter(|(p, _)| d.start.is_none_or(|s| *p > s))
            .copied()
            .collect();
        let session = d.session.as_mut().unwrap();
        let missing = want.len().saturating_sub(d.received.len());
        for e in take(session, missing, WAIT) {
            d.received.push((e.cursor().unwrap(), e.name()));
        }
        for e in rest(session, Duration::from_millis(30)) {
            d.received.push((e.cursor().unwrap(), e.name()));
        }
        prop_assert_eq!(&d.received, &want, "device of {}", d.identity);
    }
    Ok(f.engine.fanout_metrics())
}

/// A fixed interleaving that is sure to make devices lag (bursts into
/// tiny queues nobody reads) and to reconnect with cursors: the property
/// then also covers self-resume after lagging.
#[test]
fn lagging_and_reconnecting_devices_lose_nothing() {
    let mut ops = Vec::new();
    for who in 0..IDENTITIES {
        for conv in 0..CONVERSATIONS {
            ops.push(Op::Join { conv, who });
        }
    }
    ops.push(Op::Disconnect { device: 1 });
    for conv in 0..CONVERSATIONS {
        ops.push(Op::Burst { conv });
        ops.push(Op::Read { device: 2, max: 3 });
    }
    ops.push(Op::Leave { conv: 0, who: 0 });
    ops.push(Op::Reconnect { device: 1 });
    ops.push(Op::Burst { conv: 0 });
    ops.push(Op::Disconnect { device: 3 });
    ops.push(Op::DeleteConversation { conv: 1 });
    ops.push(Op::Post { conv: 2, author: 1 });
    for recent in RECENT_RECORDS {
        let metrics = run_case(ops.clone(), recent).unwrap();
        assert!(metrics.lagged >= 1, "{metrics:?}");
        assert!(metrics.resumes >= 3, "{metrics:?}");
        if recent == 0 {
            assert_eq!(metrics.replay_records_cached, 0, "{metrics:?}");
        } else {
            assert!(metrics.replay_records_cached >= 1, "{metrics:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_device_receives_exactly_its_identitys_events(
        ops in prop::collection::vec(op(), 1..60),
        recent in prop_oneof![Just(0usize), 1..40usize],
    ) {
        run_case(ops, recent)?;
    }
}
