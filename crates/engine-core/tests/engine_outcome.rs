//! `Engine::execute` builds a command's outcome from the records the writer
//! hands back with its answer, not from a read-back: those records must be
//! exactly what the log holds, for single commands, for commands of many
//! records, for concurrent posters whose requests share batches, through
//! the async path, and for a retry (which does read the log back).

mod common;

use common::*;
use engine_core::{CommandOutcome, Engine};
use events::*;

/// Concurrent posters, so that batches hold several callers' records.
const POSTERS: usize = 6;
/// Posts per poster.
const POSTS_EACH: usize = 20;

/// Panics unless `outcome`'s records are the log's records at its
/// positions, header and event.
fn assert_matches_log(engine: &Engine, outcome: &CommandOutcome) {
    let end = outcome.first_position + outcome.records.len() as u64;
    let stored: Vec<_> = engine
        .log()
        .read_range(outcome.first_position..end)
        .map(|r| {
            let record = r.expect("read the log");
            let event = record.event().expect("decode the event");
            (record.header, event)
        })
        .collect();
    assert_eq!(outcome.records, stored, "the outcome is what the log holds");
}

#[test]
fn execute_answers_the_records_the_log_holds() {
    let dir = temp_dir();
    let engine = open(dir.path());
    let run = |key: &str, command: Command| {
        let outcome = engine
            .execute(CommandEnvelope::new(key, command))
            .unwrap_or_else(|e| panic!("{key} was refused: {e}"));
        assert!(!outcome.deduplicated);
        assert_matches_log(&engine, &outcome);
        outcome
    };
    let created = run("service", CreateService::new("outcome").into());
    let service = created.records[0].0.service_sid;
    run(
        "conversation",
        CreateConversation::new(service).unique_name("c").into(),
    );
    for n in 0..3 {
        let spec = ParticipantSpec::chat(format!("user{n}"));
        run(
            &format!("participant {n}"),
            AddParticipant::new(service, "c", spec).into(),
        );
    }
    let posted = run(
        "post",
        PostMessage::new(service, "c")
            .author("user0")
            .body("hi")
            .into(),
    );
    assert!(!posted.records.is_empty());

    // Concurrent posters: each one's outcome holds its own records only.
    std::thread::scope(|scope| {
        for poster in 0..POSTERS {
            let engine = &engine;
            scope.spawn(move || {
                for n in 0..POSTS_EACH {
                    let post = PostMessage::new(service, "c")
                        .author("user1")
                        .body(format!("{poster}/{n}"));
                    let key = format!("post {poster}/{n}");
                    let outcome = engine
                        .execute(CommandEnvelope::new(key.as_str(), Command::from(post)))
                        .unwrap();
                    assert_matches_log(engine, &outcome);
                    assert!(outcome
                        .records
                        .iter()
                        .all(|(h, _)| h.command_id == CommandId::from(key.as_str())));
                }
            });
        }
    });

    // The async path answers the same way.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let post = PostMessage::new(service, "c").author("user2").body("async");
    let outcome = runtime
        .block_on(engine.execute_async(CommandEnvelope::new("async", Command::from(post))))
        .unwrap();
    assert_matches_log(&engine, &outcome);

    // A retry is answered with the first application's records.
    let post = PostMessage::new(service, "c").author("user0").body("hi");
    let retried = engine
        .execute(CommandEnvelope::new("post", Command::from(post)))
        .unwrap();
    assert!(retried.deduplicated);
    assert_eq!(retried.first_position, posted.first_position);
    assert_eq!(retried.records, posted.records);
}
