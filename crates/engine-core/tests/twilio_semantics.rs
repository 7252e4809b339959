//! Semantics found wrong against Twilio's: a chat identity joining a
//! conversation needs `joinConversation` (a service permission), adding
//! someone else needs `addParticipant` (a conversation permission); a
//! delivery status only moves forward; conversation timers have Twilio's
//! minimums; a participant who has read nothing has no unread count
//! (Twilio's null), not every message. (Typing in a closed conversation:
//! `typing_indicators.rs`.)

mod common;

use common::Harness;
use engine_core::CommandError;
use events::limits::{TIMER_CLOSED_MICROS_MIN, TIMER_INACTIVE_MICROS_MIN};
use events::*;
use projections::PageRequest;

fn denied(identity: &str, permission: Permission) -> CommandError {
    CommandError::PermissionDenied {
        identity: identity.to_string(),
        permission: Some(permission),
    }
}

/// A service whose users `alice` (creator, so channel admin, of the
/// returned conversation) and `bob` exist with the default service role.
fn service_with_conversation(h: &mut Harness) -> (ServiceSid, ConversationSid) {
    let s = h.ok(CreateService::new("joining"));
    for identity in ["alice", "bob", "carol"] {
        h.ok(CreateUser::new(s, identity));
    }
    let c = h
        .exec_as(Some("alice"), CreateConversation::new(s))
        .expect("alice may create a conversation");
    (s, c)
}

#[test]
fn a_user_joins_a_conversation_with_join_conversation_in_its_service_role() {
    let mut h = Harness::new();
    let (s, c) = service_with_conversation(&mut h);
    // Bob is no participant, so has no conversation role and no
    // addParticipant; his service role (service user) grants joinConversation.
    let bob = h
        .exec_as(
            Some("bob"),
            AddParticipant::new(s, c, ParticipantSpec::chat("bob")),
        )
        .expect("bob joins by himself");
    let joined = h.engine().read(|rm| {
        rm.get_conversation(&s, &ConversationRef::Sid(c))
            .unwrap()
            .participant_by_identity("bob")
            .map(|p| p.sid)
    });
    assert_eq!(joined, Some(bob));
}

#[test]
fn joining_without_join_conversation_is_denied_and_writes_nothing() {
    let mut h = Harness::new();
    let (s, c) = service_with_conversation(&mut h);
    let service_user = h.role(s, "service user");
    h.ok(UpdateRole::new(
        s,
        service_user,
        vec![Permission::CreateConversation, Permission::EditOwnUserInfo],
    ));
    let head = h.head();
    let got = h
        .exec_as(
            Some("bob"),
            AddParticipant::new(s, c, ParticipantSpec::chat("bob")),
        )
        .unwrap_err();
    assert_eq!(got, denied("bob", Permission::JoinConversation));
    assert_eq!(h.head(), head, "a refusal wrote something");
}

#[test]
fn adding_someone_else_needs_add_participant_in_the_conversation_role() {
    let mut h = Harness::new();
    let (s, c) = service_with_conversation(&mut h);
    // Bob may join himself, but joinConversation does not let a
    // non-participant add anyone else.
    let got = h
        .exec_as(
            Some("bob"),
            AddParticipant::new(s, c, ParticipantSpec::chat("carol")),
        )
        .unwrap_err();
    assert_eq!(got, denied("bob", Permission::AddParticipant));
    // Alice, the creator (channel admin), may add Carol.
    h.exec_as(
        Some("alice"),
        AddParticipant::new(s, c, ParticipantSpec::chat("carol")),
    )
    .expect("a channel admin adds a participant");
    // Bob joined as a channel user, which has no addParticipant.
    h.exec_as(
        Some("bob"),
        AddParticipant::new(s, c, ParticipantSpec::chat("bob")),
    )
    .expect("bob joins");
    let head = h.head();
    let got = h
        .exec_as(
            Some("bob"),
            AddParticipant::new(s, c, ParticipantSpec::binding("+15550001", "+15559999")),
        )
        .unwrap_err();
    assert_eq!(got, denied("bob", Permission::AddParticipant));
    assert_eq!(h.head(), head);
}

/// A conversation with an SMS participant and one message to it.
fn message_to_sms(h: &mut Harness) -> (ServiceSid, ConversationSid, MessageSid, ParticipantSid) {
    let s = h.ok(CreateService::new("receipts"));
    let c = h.ok(CreateConversation::new(s));
    let sms = h.ok(AddParticipant::new(
        s,
        c,
        ParticipantSpec::binding("+15550001", "+15559999"),
    ));
    let m = h.ok(PostMessage::new(s, c).body("hello")).message_sid;
    (s, c, m, sms)
}

fn status(
    h: &Harness,
    s: ServiceSid,
    c: ConversationSid,
    m: MessageSid,
    p: ParticipantSid,
) -> DeliveryStatus {
    h.engine().read(|rm| {
        rm.get_conversation(&s, &ConversationRef::Sid(c))
            .unwrap()
            .receipt(&m, &p)
            .expect("a receipt is recorded")
            .status
    })
}

#[test]
fn regression_a_late_sent_receipt_moved_a_delivered_message_back_to_sent() {
    let mut h = Harness::new();
    let (s, c, m, sms) = message_to_sms(&mut h);
    let report = |status| RecordDeliveryReceipt::new(s, c, m, sms, status);
    h.engine()
        .report_delivery_status(report(DeliveryStatus::Delivered))
        .unwrap();
    let head = h.head();
    let late = h
        .engine()
        .report_delivery_status(report(DeliveryStatus::Sent))
        .expect("a late receipt is accepted");
    assert_eq!(late.records.len(), 0, "a late receipt appends nothing");
    assert_eq!(h.head(), head);
    assert_eq!(status(&h, s, c, m, sms), DeliveryStatus::Delivered);
    // Idempotent: the same late report again is the same no-op.
    let again = h
        .engine()
        .report_delivery_status(report(DeliveryStatus::Sent))
        .unwrap();
    assert_eq!(again.records.len(), 0);
    assert_eq!(h.head(), head);
    // Forward still moves: delivered → read.
    let read = h
        .engine()
        .report_delivery_status(report(DeliveryStatus::Read))
        .unwrap();
    assert_eq!(read.records.len(), 1);
    assert_eq!(status(&h, s, c, m, sms), DeliveryStatus::Read);
    // Nothing moves a read message back, not even a failure report (the
    // delivered report, made before, is answered as the duplicate it is).
    for behind in [
        DeliveryStatus::Sent,
        DeliveryStatus::Delivered,
        DeliveryStatus::Undelivered,
        DeliveryStatus::Failed,
    ] {
        let outcome = h.engine().report_delivery_status(report(behind)).unwrap();
        assert!(
            outcome.records.is_empty() || outcome.deduplicated,
            "{behind:?} after read: {outcome:?}"
        );
    }
    assert_eq!(status(&h, s, c, m, sms), DeliveryStatus::Read);
    assert_eq!(h.head().next_position, head.next_position + 1);
    // The rebuilt read models agree.
    let live = h.digest();
    h.rebuild();
    assert_eq!(h.digest(), live);
    assert_eq!(status(&h, s, c, m, sms), DeliveryStatus::Read);
}

#[test]
fn an_outcome_after_sent_is_recorded_and_another_outcome_does_not_replace_it() {
    let mut h = Harness::new();
    let (s, c, m, sms) = message_to_sms(&mut h);
    let report = |status| RecordDeliveryReceipt::new(s, c, m, sms, status);
    h.engine()
        .report_delivery_status(report(DeliveryStatus::Sent))
        .unwrap();
    let undelivered = h
        .engine()
        .report_delivery_status(report(DeliveryStatus::Undelivered))
        .unwrap();
    assert_eq!(
        undelivered.records.len(),
        1,
        "sent → undelivered is forward"
    );
    let delivered = h
        .engine()
        .report_delivery_status(report(DeliveryStatus::Delivered))
        .unwrap();
    assert_eq!(
        delivered.records.len(),
        0,
        "one outcome does not replace another"
    );
    assert_eq!(status(&h, s, c, m, sms), DeliveryStatus::Undelivered);
}

#[test]
fn timers_shorter_than_twilios_minimums_are_refused() {
    let mut h = Harness::new();
    let s = h.ok(CreateService::new("timers"));
    let short_inactive = Timers {
        inactive_micros: Some(TIMER_INACTIVE_MICROS_MIN - 1),
        closed_micros: None,
    };
    let short_closed = Timers {
        inactive_micros: Some(TIMER_INACTIVE_MICROS_MIN),
        closed_micros: Some(TIMER_CLOSED_MICROS_MIN - 1),
    };
    let head = h.head();
    let got = h
        .exec(CreateConversation::with_spec(
            s,
            ConversationSpec::default().timers(short_inactive),
        ))
        .unwrap_err();
    assert_eq!(
        got,
        CommandError::TimerTooShort {
            timer: "timers.inactive",
            micros: TIMER_INACTIVE_MICROS_MIN - 1,
            min_micros: TIMER_INACTIVE_MICROS_MIN,
        }
    );
    assert_eq!(h.head(), head);

    let minimums = Timers {
        inactive_micros: Some(TIMER_INACTIVE_MICROS_MIN),
        closed_micros: Some(TIMER_CLOSED_MICROS_MIN),
    };
    let c = h.ok(CreateConversation::with_spec(
        s,
        ConversationSpec::default().timers(minimums),
    ));
    let head = h.head();
    let got = h
        .exec(UpdateConversation::new(s, c).timers(short_closed))
        .unwrap_err();
    assert_eq!(
        got,
        CommandError::TimerTooShort {
            timer: "timers.closed",
            micros: TIMER_CLOSED_MICROS_MIN - 1,
            min_micros: TIMER_CLOSED_MICROS_MIN,
        }
    );
    assert_eq!(h.head(), head);
}

/// `identity`'s read horizon and unread count in its only conversation, as
/// its conversation list (Twilio's UserConversation) reports them.
fn horizon_and_unread(h: &Harness, s: ServiceSid, identity: &str) -> (Option<u64>, Option<u64>) {
    h.engine().read(|rm| {
        let list = rm
            .user_conversations(&s, identity, &PageRequest::default())
            .unwrap()
            .items;
        assert_eq!(list.len(), 1, "{identity} is in one conversation");
        (
            list[0].last_read_message_index,
            list[0].unread_messages_count,
        )
    })
}

#[test]
fn regression_a_participant_who_never_read_had_every_message_unread() {
    let mut h = Harness::new();
    let s = h.ok(CreateService::new("unread"));
    let c = h.ok(CreateConversation::new(s));
    let alice = h.ok(AddParticipant::new(s, c, ParticipantSpec::chat("alice")));
    h.ok(AddParticipant::new(s, c, ParticipantSpec::chat("bob")));
    for n in 0..3 {
        h.ok(PostMessage::new(s, c).author("bob").body(format!("m{n}")));
    }
    // No horizon yet: Twilio's SDK reports null, not 3.
    assert_eq!(horizon_and_unread(&h, s, "alice"), (None, None));
    h.ok(UpdateReadHorizon::advance(s, c, alice, 0));
    assert_eq!(horizon_and_unread(&h, s, "alice"), (Some(0), Some(2)));
    // Clearing the horizon (Twilio's setAllMessagesUnread) makes it null again.
    h.ok(UpdateReadHorizon::set(s, c, alice, None));
    assert_eq!(horizon_and_unread(&h, s, "alice"), (None, None));
    h.rebuild();
    assert_eq!(horizon_and_unread(&h, s, "alice"), (None, None));
}
