//! Selecting records: by service, conversation (SID or unique name),
//! participant (SID, identity or address), event type, position and time.

use std::collections::{BTreeSet, HashMap, HashSet};

use clap::Args;
use engine_core::log::scan::{check_event, CANCEL_CHECK_RECORDS};
use engine_core::LogReader;
use events::{
    ConversationSid, Event, MessageSid, ParticipantKind, ParticipantSid, RecordHeader, ServiceSid,
    TimestampMicros, UserSid,
};

use crate::error::ToolError;
use crate::progress::Progress;
use crate::render::EVENT_TYPES;
use crate::timefmt::parse_rfc3339;

/// A conversation as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversationArg {
    /// A `CH…` SID.
    Sid(ConversationSid),
    /// A `unique_name`.
    Name(String),
}

impl ConversationArg {
    /// A `CH…` SID if it parses as one, otherwise a unique name.
    pub fn parse(s: &str) -> ConversationArg {
        match s.parse() {
            Ok(sid) => ConversationArg::Sid(sid),
            Err(_) => ConversationArg::Name(s.to_string()),
        }
    }
}

/// Parses a `--service` value.
pub fn parse_service(s: &str) -> Result<ServiceSid, ToolError> {
    s.parse()
        .map_err(|e| ToolError::Usage(format!("--service {s:?}: {e}")))
}

/// One stretch of positions during which a conversation held a unique name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameUse {
    /// The service.
    pub service: ServiceSid,
    /// The conversation.
    pub conversation: ConversationSid,
    /// The position of the event that gave it the name.
    pub from: u64,
    /// That event's `recorded_at`.
    pub from_at: TimestampMicros,
    /// The position of the event that took it away, if any, and its
    /// `recorded_at`.
    pub to: Option<(u64, TimestampMicros)>,
}

impl NameUse {
    /// Whether the name was held after folding position `p`.
    pub fn held_at_position(&self, p: u64) -> bool {
        self.from <= p && self.to.is_none_or(|(to, _)| to > p)
    }

    /// Whether the name was held after folding every record up to time `t`.
    pub fn held_at_time(&self, t: TimestampMicros) -> bool {
        self.from_at <= t && self.to.is_none_or(|(_, at)| at > t)
    }
}

/// Finds every conversation that held `name` as its unique name in
/// positions `0..end` (optionally in one service), by replaying the
/// ConversationCreated/Updated/Removed and ServiceDeleted events.
pub fn name_uses(
    log: &LogReader,
    name: &str,
    service: Option<ServiceSid>,
    end: u64,
    quiet: bool,
) -> Result<Vec<NameUse>, ToolError> {
    let total = log.stored_end()?.min(end);
    let progress = Progress::new(quiet, "names", total);
    let mut uses: Vec<NameUse> = Vec::new();
    // conversation → index into `uses` of its open use of `name`.
    let mut open: HashMap<ConversationSid, usize> = HashMap::new();
    let mut scan = log.scan(0..end);
    let mut n = 0u64;
    while let Some(item) = scan.next_record() {
        let s = item?;
        n += 1;
        if n % CANCEL_CHECK_RECORDS == 0 {
            progress.set(n);
        }
        let h = &s.view.header;
        if service.is_some_and(|svc| svc != h.service_sid) {
            continue;
        }
        let position = h.position;
        let relevant = h.conversation_sid.is_some() || !open.is_empty();
        if !relevant {
            continue;
        }
        let event = check_event(&s.view)?;
        match &event {
            Event::ConversationCreated {
                conversation_sid,
                unique_name,
                ..
            }
            | Event::ConversationUpdated {
                conversation_sid,
                unique_name,
                ..
            } => {
                if unique_name.as_deref() != Some(name) {
                    close(
                        &mut uses,
                        &mut open,
                        conversation_sid,
                        (position, h.recorded_at),
                    );
                } else if !open.contains_key(conversation_sid) {
                    open.insert(*conversation_sid, uses.len());
                    uses.push(NameUse {
                        service: h.service_sid,
                        conversation: *conversation_sid,
                        from: position,
                        from_at: h.recorded_at,
                        to: None,
                    });
                }
            }
            Event::ConversationRemoved { conversation_sid } => close(
                &mut uses,
                &mut open,
                conversation_sid,
                (position, h.recorded_at),
            ),
            Event::ServiceDeleted => {
                let gone: Vec<ConversationSid> = open
                    .iter()
                    .filter(|(_, i)| uses[**i].service == h.service_sid)
                    .map(|(c, _)| *c)
                    .collect();
                for c in gone {
                    close(&mut uses, &mut open, &c, (position, h.recorded_at));
                }
            }
            _ => {}
        }
    }
    progress.finish();
    Ok(uses)
}

fn close(
    uses: &mut [NameUse],
    open: &mut HashMap<ConversationSid, usize>,
    conversation: &ConversationSid,
    at: (u64, TimestampMicros),
) {
    if let Some(i) = open.remove(conversation) {
        uses[i].to = Some(at);
    }
}

/// The distinct conversations among `uses`, in order of first use.
pub fn distinct(uses: &[NameUse]) -> Vec<(ServiceSid, ConversationSid)> {
    let mut seen = HashSet::new();
    uses.iter()
        .filter(|u| seen.insert(u.conversation))
        .map(|u| (u.service, u.conversation))
        .collect()
}

/// `dump`'s filters.
#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// Only this service (IS…).
    #[arg(long, value_name = "SID")]
    pub service: Option<String>,
    /// Only this conversation: a CH… SID or a unique_name (every
    /// conversation that ever held the name, in --service if given).
    #[arg(long, value_name = "SID|UNIQUE_NAME")]
    pub conversation: Option<String>,
    /// Only events about this participant: an MB… SID, a chat identity or
    /// an address (its participants, their messages and edits of them,
    /// receipts, and the users with that identity).
    #[arg(long, visible_alias = "identity", value_name = "SID|IDENTITY|ADDRESS")]
    pub participant: Option<String>,
    /// Only these event types (repeat or comma-separate), e.g.
    /// message_added,message_updated.
    #[arg(long = "type", value_name = "TYPE", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Only positions ≥ this.
    #[arg(long, value_name = "POSITION")]
    pub from_position: Option<u64>,
    /// Only positions ≤ this.
    #[arg(long, value_name = "POSITION")]
    pub to_position: Option<u64>,
    /// Only records at or after this RFC 3339 time.
    #[arg(long, value_name = "RFC3339")]
    pub from_time: Option<String>,
    /// Only records at or before this RFC 3339 time.
    #[arg(long, value_name = "RFC3339")]
    pub to_time: Option<String>,
}

/// Who `--participant` names, learnt as the walk goes (each participant,
/// user and message is introduced before it is referred to).
#[derive(Debug, Default)]
struct ParticipantMatch {
    /// The identity or address given, if not a SID.
    who: Option<String>,
    participants: HashSet<ParticipantSid>,
    users: HashSet<UserSid>,
    messages: HashSet<MessageSid>,
}

impl ParticipantMatch {
    fn matches(&mut self, event: &Event) -> bool {
        use Event::*;
        let who = self.who.as_deref();
        match event {
            ParticipantAdded {
                participant_sid,
                kind,
                user_sid,
                ..
            } => {
                let named = match kind {
                    ParticipantKind::Chat { identity, .. } => who == Some(identity.as_str()),
                    ParticipantKind::Messaging(b) => who == Some(b.address.as_str()),
                };
                if named {
                    self.participants.insert(*participant_sid);
                    if let Some(u) = user_sid {
                        self.users.insert(*u);
                    }
                }
                self.participants.contains(participant_sid)
            }
            ParticipantUpdated {
                participant_sid, ..
            }
            | ReadHorizonUpdated {
                participant_sid, ..
            }
            | ParticipantRemoved {
                participant_sid, ..
            }
            | DeliveryReceiptRecorded {
                participant_sid, ..
            }
            | DeliveryAttemptFailed {
                participant_sid, ..
            } => self.participants.contains(participant_sid),
            MessageAdded {
                message_sid,
                author,
                participant_sid,
                ..
            } => {
                let mine = participant_sid.is_some_and(|p| self.participants.contains(&p))
                    || who == Some(author.as_str());
                if mine {
                    self.messages.insert(*message_sid);
                }
                mine
            }
            MessageUpdated { message_sid, .. } | MessageRemoved { message_sid, .. } => {
                self.messages.contains(message_sid)
            }
            UserCreated {
                user_sid, identity, ..
            } => {
                if who == Some(identity.as_str()) {
                    self.users.insert(*user_sid);
                }
                self.users.contains(user_sid)
            }
            UserUpdated { user_sid, .. }
            | UserDeleted { user_sid }
            | UserConversationUpdated { user_sid, .. } => self.users.contains(user_sid),
            _ => false,
        }
    }
}

/// The filters, parsed and resolved.
#[derive(Debug)]
pub struct Filter {
    service: Option<ServiceSid>,
    conversations: Option<BTreeSet<ConversationSid>>,
    participant: Option<ParticipantMatch>,
    types: Option<HashSet<&'static str>>,
    /// Positions to walk.
    pub range: std::ops::Range<u64>,
    from_time: Option<TimestampMicros>,
    to_time: Option<TimestampMicros>,
}

impl Filter {
    /// Parses the arguments; resolves a conversation's unique name by
    /// replaying the log (a note on stderr says when it matched several).
    pub fn new(args: &FilterArgs, log: &LogReader, quiet: bool) -> Result<Filter, ToolError> {
        let service = args.service.as_deref().map(parse_service).transpose()?;
        let types = if args.types.is_empty() {
            None
        } else {
            let mut set = HashSet::new();
            for t in &args.types {
                let Some(known) = EVENT_TYPES.iter().find(|k| **k == t.trim()) else {
                    return Err(ToolError::Usage(format!(
                        "unknown event type {t:?}; known types: {}",
                        EVENT_TYPES.join(", ")
                    )));
                };
                set.insert(*known);
            }
            Some(set)
        };
        let time = |s: &Option<String>, flag: &str| {
            s.as_deref()
                .map(|s| parse_rfc3339(s).map_err(|e| ToolError::Usage(format!("{flag}: {e}"))))
                .transpose()
        };
        let from_time = time(&args.from_time, "--from-time")?;
        let to_time = time(&args.to_time, "--to-time")?;
        let start = args.from_position.unwrap_or(0);
        let end = args.to_position.map_or(u64::MAX, |p| p.saturating_add(1));
        let conversations = match args.conversation.as_deref().map(ConversationArg::parse) {
            None => None,
            Some(ConversationArg::Sid(sid)) => Some(BTreeSet::from([sid])),
            Some(ConversationArg::Name(name)) => {
                let found = distinct(&name_uses(log, &name, service, u64::MAX, quiet)?);
                if found.is_empty() {
                    return Err(ToolError::Usage(format!(
                        "no conversation ever had the unique name {name:?}"
                    )));
                }
                if found.len() > 1 {
                    eprintln!(
                        "replay-tool: note: {} conversations held the unique name {name:?}: {}",
                        found.len(),
                        found
                            .iter()
                            .map(|(_, c)| c.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                Some(found.into_iter().map(|(_, c)| c).collect())
            }
        };
        let participant = args.participant.as_deref().map(|p| match p.parse() {
            Ok(sid) => ParticipantMatch {
                participants: HashSet::from([sid]),
                ..ParticipantMatch::default()
            },
            Err(_) => ParticipantMatch {
                who: Some(p.to_string()),
                ..ParticipantMatch::default()
            },
        });
        Ok(Filter {
            service,
            conversations,
            participant,
            types,
            range: start..end,
            from_time,
            to_time,
        })
    }

    /// Whether a record may match, from its header alone (cheap: no event
    /// decode). Participant filters also need to see earlier events, so
    /// they never skip the decode.
    pub fn header_may_match(&self, h: &RecordHeader) -> bool {
        if self.service.is_some_and(|s| s != h.service_sid) {
            return false;
        }
        if self.from_time.is_some_and(|t| h.recorded_at < t)
            || self.to_time.is_some_and(|t| h.recorded_at > t)
        {
            return false;
        }
        if let Some(cs) = &self.conversations {
            if !h.conversation_sid.is_some_and(|c| cs.contains(&c)) {
                return false;
            }
        }
        true
    }

    /// Whether the participant filter needs every event decoded.
    pub fn needs_every_event(&self) -> bool {
        self.participant.is_some()
    }

    /// The full decision, given the record's event. Call for every record
    /// in order when [`Filter::needs_every_event`].
    pub fn matches(&mut self, h: &RecordHeader, event: &Event) -> bool {
        // The participant filter learns from every event, so it runs first.
        let participant = match &mut self.participant {
            Some(p) => p.matches(event),
            None => true,
        };
        participant
            && self.header_may_match(h)
            && self
                .types
                .as_ref()
                .is_none_or(|t| t.contains(event.type_name()))
    }
}
