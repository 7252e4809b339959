//! Turning records and events into JSON lines and readable tables.

use engine_core::log::hash_hex;
use events::{ConversationWebhookConfig, Event, ParticipantKind, RecordHeader};
use serde_json::{json, Map, Value};

use crate::timefmt::format_micros;

/// Longest text shown in a table cell, in characters, before "…".
pub const CELL_CHARS_MAX: usize = 60;

/// The declaration index of an event's variant, indexing [`EVENT_TYPES`]:
/// [`events::fast::event_variant_index`].
pub use events::fast::event_variant_index as type_index;
/// Every event type name ([`Event::type_name`]), in declaration order:
/// [`events::fast::EVENT_TYPE_NAMES`].
pub use events::fast::EVENT_TYPE_NAMES as EVENT_TYPES;

/// Lowercase hex of arbitrary bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// The event's fields as a JSON object (without the variant tag; a unit
/// variant gives `{}`).
pub fn event_fields(event: &Event) -> Value {
    match serde_json::to_value(event) {
        Ok(Value::Object(map)) if map.len() == 1 => map
            .into_iter()
            .next()
            .map(|(_, v)| v)
            .unwrap_or(Value::Null),
        Ok(Value::String(_)) => Value::Object(Map::new()),
        Ok(other) => other,
        Err(e) => json!({ "error": e.to_string() }),
    }
}

/// One record as a JSON object: where, when, who (`actor`: the acting chat
/// identity, `null` for the trusted host and for every version-1 record,
/// which did not record it), what.
pub fn record_json(header: &RecordHeader, event: &Event) -> Value {
    json!({
        "position": header.position,
        "recorded_at": format_micros(header.recorded_at),
        "recorded_at_micros": header.recorded_at,
        "service_sid": header.service_sid.to_string(),
        "conversation_sid": header.conversation_sid.map(|c| c.to_string()),
        "command_id": header.command_id.to_string(),
        "actor": header.actor,
        "type": event.type_name(),
        "event": event_fields(event),
    })
}

/// [`record_json`] as one line of text, built without an intermediate
/// `serde_json::Value` (the event's own JSON is reused, minus its variant
/// tag): the same object, key for key, several times faster.
pub fn record_json_line(header: &RecordHeader, event: &Event) -> String {
    let tagged = serde_json::to_string(event).unwrap_or_else(|e| {
        serde_json::to_string(&json!({ event.type_name(): { "error": e.to_string() } }))
            .unwrap_or_default()
    });
    let name = event.type_name();
    // `{"name":{...}}` → `{...}`; a unit variant is `"name"` → `{}`.
    let fields = tagged
        .strip_prefix(&format!("{{\"{name}\":"))
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or("{}");
    let conversation = header
        .conversation_sid
        .map_or_else(|| "null".to_string(), |c| format!("\"{c}\""));
    // A string's JSON cannot fail; "null" is the host.
    let actor = serde_json::to_string(&header.actor).unwrap_or_else(|_| "null".to_string());
    format!(
        "{{\"position\":{},\"recorded_at\":\"{}\",\"recorded_at_micros\":{},\"service_sid\":\"{}\",\
         \"conversation_sid\":{conversation},\"command_id\":\"{}\",\"actor\":{actor},\"type\":\"{name}\",\
         \"event\":{fields}}}",
        header.position,
        format_micros(header.recorded_at),
        header.recorded_at,
        header.service_sid,
        header.command_id,
    )
}

/// A hash as hex.
pub fn hash_str(hash: &events::Hash) -> String {
    hash_hex(hash)
}

/// Cuts text to [`CELL_CHARS_MAX`] characters on one line.
pub fn cell(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= CELL_CHARS_MAX {
        one_line
    } else {
        let mut s: String = one_line.chars().take(CELL_CHARS_MAX - 1).collect();
        s.push('…');
        s
    }
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("-")
}

/// Who acted, for a table cell: the identity (cut like any cell), or `-`
/// for the trusted host (and for version-1 records, which did not say).
pub fn actor_cell(actor: &Option<String>) -> String {
    cell(opt(actor))
}

/// Who a participant is, in a few words.
pub fn kind_text(kind: &ParticipantKind) -> String {
    match kind {
        ParticipantKind::Chat { identity, .. } => format!("chat {identity}"),
        ParticipantKind::Messaging(b) => format!("{} via {}", b.address, b.proxy_address),
    }
}

/// A one-line summary of an event for tables.
pub fn summary(event: &Event) -> String {
    use Event::*;
    let text = match event {
        ServiceCreated { friendly_name } | ServiceUpdated { friendly_name } => {
            format!("name {friendly_name:?}")
        }
        ServiceDeleted => String::new(),
        RoleCreated {
            role_sid,
            friendly_name,
            ..
        } => format!("{role_sid} {friendly_name:?}"),
        RoleUpdated {
            role_sid,
            permissions,
        } => format!("{role_sid} {} permissions", permissions.len()),
        RoleDeleted { role_sid } => role_sid.to_string(),
        ConversationCreated {
            friendly_name,
            unique_name,
            state,
            ..
        }
        | ConversationUpdated {
            friendly_name,
            unique_name,
            state,
            ..
        } => format!(
            "name {} unique {} state {state:?}",
            opt(friendly_name),
            opt(unique_name)
        ),
        ConversationRemoved { .. } => String::new(),
        ParticipantAdded {
            participant_sid,
            kind,
            ..
        } => format!("{participant_sid} {}", kind_text(kind)),
        ParticipantUpdated {
            participant_sid,
            attributes,
            ..
        } => format!("{participant_sid} attributes {attributes}"),
        ReadHorizonUpdated {
            participant_sid,
            last_read_message_index,
            ..
        } => match last_read_message_index {
            Some(i) => format!("{participant_sid} read up to #{i}"),
            None => format!("{participant_sid} read nothing"),
        },
        ParticipantRemoved {
            participant_sid, ..
        } => participant_sid.to_string(),
        MessageAdded {
            index,
            author,
            body,
            media,
            ..
        } => {
            let media = if media.is_empty() {
                String::new()
            } else {
                format!(" [+{} media]", media.len())
            };
            format!("#{index} {author}: {}{media}", opt(body))
        }
        MessageUpdated { index, body, .. } => format!("#{index} now: {}", opt(body)),
        MessageRemoved { index, .. } => format!("#{index}"),
        UserCreated {
            user_sid, identity, ..
        } => format!("{user_sid} {identity}"),
        UserUpdated { user_sid, .. } | UserDeleted { user_sid } => user_sid.to_string(),
        UserConversationUpdated {
            user_sid,
            notification_level,
            ..
        } => format!("{user_sid} {notification_level:?}"),
        AddressConfigurationCreated {
            address_configuration_sid,
            address,
            ..
        }
        | AddressConfigurationCreatedV2 {
            address_configuration_sid,
            address,
            ..
        } => format!("{address_configuration_sid} {address}"),
        AddressConfigurationUpdated {
            address_configuration_sid,
            ..
        }
        | AddressConfigurationUpdatedV2 {
            address_configuration_sid,
            ..
        }
        | AddressConfigurationDeleted {
            address_configuration_sid,
        } => address_configuration_sid.to_string(),
        DeliveryReceiptRecorded {
            message_sid,
            participant_sid,
            status,
            ..
        } => format!("{message_sid} to {participant_sid}: {status:?}"),
        ServiceConfigurationUpdated { .. } => "default roles".to_string(),
        DeliveryAttemptFailed {
            message_sid,
            participant_sid,
            attempt,
            error,
            ..
        } => format!("{message_sid} to {participant_sid} attempt {attempt}: {error}"),
        // The signing secret is never rendered.
        ServiceWebhooksUpdated { webhooks } => format!(
            "post-event webhook {} {:?} {}",
            opt(&webhooks.post_webhook_url),
            webhooks.method,
            webhooks
                .filters
                .iter()
                .map(|f| f.twilio_name())
                .collect::<Vec<_>>()
                .join(",")
        ),
        ConversationWebhookCreated {
            webhook_sid,
            webhook,
            ..
        } => format!("{webhook_sid} {:?} {}", webhook.target, webhook.url),
        ConversationWebhookRemoved { webhook_sid, .. } => webhook_sid.to_string(),
        ConversationStudioWebhookCreated {
            webhook_sid,
            studio,
            ..
        } => format!("{webhook_sid} studio {}", studio.flow_sid),
        ConversationWebhookUpdated {
            webhook_sid,
            webhook,
            ..
        } => match webhook {
            ConversationWebhookConfig::Url(w) => format!("{webhook_sid} {:?} {}", w.target, w.url),
            ConversationWebhookConfig::Studio(s) => format!("{webhook_sid} studio {}", s.flow_sid),
        },
    };
    cell(&text)
}

/// A plain text table: a header row and rows, columns padded to fit.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        for (i, c) in cells.iter().enumerate() {
            out.push_str(c);
            if i < last {
                let pad = widths[i] - c.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_line_is_the_same_json() {
        let header = |c: Option<events::ConversationSid>, actor: Option<&str>| RecordHeader {
            position: 7,
            recorded_at: 1_763_762_667_123_456,
            service_sid: events::ServiceSid::derive(b"s"),
            conversation_sid: c,
            command_id: events::CommandId::from_key(b"k"),
            actor: actor.map(str::to_string),
        };
        // Actors that need escaping, too.
        for actor in [None, Some("alice"), Some("q\"uote\\ 🐇\n")] {
            for e in events::fast::sample_events() {
                let h = header(e.conversation_sid(), actor);
                let line = record_json_line(&h, &e);
                let fast: Value = serde_json::from_str(&line).unwrap();
                assert_eq!(fast, record_json(&h, &e), "{e:?}");
                assert_eq!(fast["actor"].as_str(), actor, "{line}");
            }
        }
    }

    #[test]
    fn fields_drop_the_tag() {
        assert_eq!(event_fields(&Event::ServiceDeleted), json!({}));
        assert_eq!(
            event_fields(&Event::ServiceCreated {
                friendly_name: "x".into()
            }),
            json!({"friendly_name": "x"})
        );
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
        assert_eq!(
            table(&["A", "BB"], &[vec!["xyz".into(), "1".into()]]),
            "A    BB\nxyz  1\n"
        );
    }
}
