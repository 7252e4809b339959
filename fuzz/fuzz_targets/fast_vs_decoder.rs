//! Differential fuzzing of the fast record path against the authoritative
//! decoder, on arbitrary bytes.
//!
//! 1. The input as stored record bytes: `events::fast::check_agreement`
//!    (fast accepts ⇒ `Record::decode` accepts with equal fields;
//!    `Record::decode` rejects ⇒ `decode_record` rejects with the same
//!    error; the event check agrees with `Record::event`).
//! 2. The input as a payload in every format version, with and without a
//!    conversation: `events::fast::check_payload_agreement` (the grammar
//!    accepts ⇒ the event decoder accepts; `check_event` gives the
//!    decoder's verdict). Random bytes almost never pass the hash check of
//!    (1), so this is what drives the grammar itself.
//!
//! A disagreement panics; libFuzzer reports it as a crash.

#![no_main]

use events::fast::{check_agreement, check_payload_agreement};
use events::sid::ConversationSid;
use events::FORMAT_VERSIONS_KNOWN;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(d) = check_agreement(data) {
        panic!("{d}");
    }
    // The conversation SID the payload names, when it has one, is the
    // 16 bytes after its one-byte variant index.
    let named = data
        .get(1..17)
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .map(ConversationSid);
    for &version in FORMAT_VERSIONS_KNOWN {
        for conversation in [None, named, Some(ConversationSid([0x22; 16]))] {
            if let Err(d) = check_payload_agreement(version, conversation, data) {
                panic!("{d}");
            }
        }
    }
});
