//! Unread counts are exact: across posts, deletes of read and unread
//! messages, read-horizon moves (set back, advance, clamp past the end,
//! and no-op advances), reopening and rebuilding. A participant without a
//! read horizon has no count (`None`, Twilio's null), not every message.
//!
//! The expected figures come from a tiny oracle kept alongside: the set of
//! live message indexes, the next index, and each participant's horizon.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::Harness;
use engine_core::PostedMessage;
use events::*;
use projections::PageRequest;

/// What the test knows independently of the engine.
struct Oracle {
    live: BTreeMap<u64, MessageSid>,
    next_index: u64,
    horizons: BTreeMap<&'static str, Option<u64>>,
}

impl Oracle {
    /// `who`'s unread count: none without a horizon.
    fn unread(&self, who: &str) -> Option<u64> {
        let h = self.horizons[who]?;
        Some(self.live.range(h.saturating_add(1)..).count() as u64)
    }

    /// Where a requested horizon lands: never past the last index ever
    /// given, and nowhere while no message was ever posted.
    fn clamp(&self, index: Option<u64>) -> Option<u64> {
        let last = self.next_index.checked_sub(1)?;
        index.map(|i| i.min(last))
    }
}

struct Room {
    h: Harness,
    service: ServiceSid,
    conversation: ConversationSid,
    participants: BTreeMap<&'static str, ParticipantSid>,
    oracle: Oracle,
}

impl Room {
    fn new() -> Room {
        let mut h = Harness::new();
        let service = h.ok(CreateService::new("unread"));
        let conversation = h.ok(CreateConversation::new(service));
        let mut participants = BTreeMap::new();
        let mut horizons = BTreeMap::new();
        for who in ["alice", "bob"] {
            let participant =
                AddParticipant::new(service, conversation, ParticipantSpec::chat(who));
            participants.insert(who, h.ok(participant));
            horizons.insert(who, None);
        }
        Room {
            h,
            service,
            conversation,
            participants,
            oracle: Oracle {
                live: BTreeMap::new(),
                next_index: 0,
                horizons,
            },
        }
    }

    fn post(&mut self, author: &str) -> u64 {
        let post = PostMessage::new(self.service, self.conversation)
            .author(author)
            .body("a message");
        let PostedMessage {
            message_sid: sid,
            index,
            ..
        } = self.h.ok(post);
        assert_eq!(
            index, self.oracle.next_index,
            "indexes are dense and never reused"
        );
        self.oracle.live.insert(index, sid);
        self.oracle.next_index += 1;
        index
    }

    fn delete(&mut self, index: u64) {
        let sid = self.oracle.live.remove(&index).expect("a live message");
        self.h
            .ok(DeleteMessage::new(self.service, self.conversation, sid));
    }

    /// Moves `who`'s horizon and returns how many records that appended.
    fn horizon(&mut self, who: &'static str, index: Option<u64>, mode: HorizonMode) -> usize {
        let outcome = self.h.ok(Command::UpdateReadHorizon(UpdateReadHorizon {
            service: self.service,
            conversation: ConversationRef::Sid(self.conversation),
            participant: self.participants[who],
            last_read_message_index: index,
            mode,
        }));
        let wanted = self.oracle.clamp(index);
        let current = self.oracle.horizons[who];
        let new = match mode {
            HorizonMode::Set => wanted,
            HorizonMode::Advance => wanted.max(current),
        };
        self.oracle.horizons.insert(who, new);
        outcome.records.len()
    }

    /// The engine's counts and horizons equal the oracle's, through both
    /// the user's conversation list and the participant rows.
    fn check(&self, when: &str) {
        self.h.engine().read(|rm| self.check_in(rm, when));
    }

    fn check_in(&self, rm: &projections::ReadModels, when: &str) {
        for (who, participant) in &self.participants {
            let list = rm
                .user_conversations(&self.service, who, &PageRequest::default())
                .unwrap()
                .items;
            assert_eq!(list.len(), 1, "{when}: {who}'s conversations");
            let uc = &list[0];
            assert_eq!(uc.conversation_sid, self.conversation);
            assert_eq!(uc.participant_sid, *participant);
            assert_eq!(
                uc.last_read_message_index, self.oracle.horizons[who],
                "{when}: {who}'s horizon"
            );
            assert_eq!(
                uc.unread_messages_count,
                self.oracle.unread(who),
                "{when}: {who}'s unread count"
            );
            assert_eq!(
                rm.user_conversation(&self.service, who, &ConversationRef::Sid(self.conversation))
                    .as_ref(),
                Ok(uc),
                "{when}: {who}'s one user conversation is its list entry"
            );
            let row = rm
                .get_conversation(&self.service, &ConversationRef::Sid(self.conversation))
                .unwrap()
                .participant(participant)
                .unwrap();
            assert_eq!(row.last_read_message_index, self.oracle.horizons[who]);
        }
        let conv = rm
            .get_conversation(&self.service, &ConversationRef::Sid(self.conversation))
            .unwrap();
        assert_eq!(conv.next_message_index(), self.oracle.next_index);
        let live: BTreeSet<u64> = rm
            .scan_messages(conv, .., false, usize::MAX)
            .unwrap()
            .iter()
            .map(|m| m.index)
            .collect();
        assert_eq!(live, self.oracle.live.keys().copied().collect());
    }
}

#[test]
fn unread_counts_are_exact_across_posts_deletes_horizon_moves_and_reopen() {
    let mut r = Room::new();
    r.check("empty");

    // Before any message a horizon has nowhere to go.
    assert_eq!(r.horizon("alice", Some(3), HorizonMode::Set), 1);
    r.check("set before any message");
    assert_eq!(r.horizon("alice", Some(3), HorizonMode::Advance), 0);
    r.check("advance before any message");

    for i in 0..5 {
        r.post(if i % 2 == 0 { "alice" } else { "bob" });
        r.check("after a post");
    }

    r.horizon("alice", Some(2), HorizonMode::Set);
    r.check("alice read up to 2");

    let last = r.oracle.next_index - 1;
    r.delete(last);
    r.check("deleted an unread message");
    r.delete(1);
    r.check("deleted a read message");

    r.horizon("alice", Some(0), HorizonMode::Set);
    r.check("set back to 0");

    assert_eq!(
        r.horizon("alice", Some(0), HorizonMode::Advance),
        0,
        "an advance that does not move appends nothing"
    );
    assert_eq!(r.horizon("alice", None, HorizonMode::Advance), 0);
    r.check("no-op advances");

    // Advance onto a deleted index, then past the end (clamped to the
    // last index ever given, itself deleted).
    r.horizon("alice", Some(1), HorizonMode::Advance);
    r.check("advanced onto a deleted index");
    r.horizon("alice", Some(1_000), HorizonMode::Advance);
    r.check("advanced past the end");
    assert_eq!(r.oracle.unread("alice"), Some(0));

    r.post("bob");
    r.post("bob");
    r.check("two new messages");

    r.h.reopen();
    r.check("after reopening");

    r.horizon("bob", Some(1_000), HorizonMode::Set);
    r.check("bob set past the end");
    r.horizon("alice", None, HorizonMode::Set);
    r.check("alice marked everything unread");

    let last = r.oracle.next_index - 1;
    r.delete(last);
    r.check("deleted the newest message");
    r.horizon("alice", Some(1_000), HorizonMode::Set);
    r.check("clamped to a deleted last index");
    r.post("alice");
    r.check("a message after the deleted last index");
    assert_eq!(r.oracle.unread("alice"), Some(1));

    r.h.rebuild();
    r.check("after a rebuild");
}

/// A participant's horizon set through `UpdateParticipant` is clamped the
/// same way, and each participant's count is its own.
#[test]
fn unread_counts_are_per_participant_and_update_participant_clamps() {
    let mut r = Room::new();
    for _ in 0..4 {
        r.post("alice");
    }
    let bob = UpdateParticipant::new(r.service, r.conversation, r.participants["bob"]);
    r.h.ok(bob.last_read_message_index(99_u64));
    let clamped = r.oracle.clamp(Some(99));
    r.oracle.horizons.insert("bob", clamped);
    r.check("bob's horizon set through UpdateParticipant");
    assert_eq!(r.oracle.unread("bob"), Some(0));
    assert_eq!(r.oracle.unread("alice"), None, "alice has read nothing yet");

    r.horizon("alice", Some(1), HorizonMode::Advance);
    r.delete(3);
    r.delete(0);
    r.check("deletes on both sides of alice's horizon");
    r.h.reopen();
    r.check("after reopening");
    let stranger = r.h.engine().read(|rm| {
        rm.user_conversation(&r.service, "mallory", &ConversationRef::Sid(r.conversation))
    });
    assert!(
        matches!(stranger, Err(projections::QueryError::NotFound { .. })),
        "a non-participant has no user conversation: {stranger:?}"
    );
}
