//! Failures below the command layer reach the host typed, so it can tell
//! "reopen" from "retry" (they were all one `Storage(String)`).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{options, temp_dir};
use engine_core::{CommandError, Engine, StorageFailure};
use events::*;

#[test]
fn a_failed_write_is_typed_as_needing_a_reopen_and_the_retry_applies_once() {
    let dir = temp_dir();
    let fail = Arc::new(AtomicBool::new(false));
    let hook = {
        let fail = fail.clone();
        Arc::new(move |_: &engine_core::log::WriteInfo| {
            if fail.load(Ordering::SeqCst) {
                Err("injected write failure".to_string())
            } else {
                Ok(())
            }
        })
    };
    let engine = Engine::open(dir.path(), options().before_write_hook(hook)).unwrap();
    let service = engine
        .execute(CreateService::new("failures").keyed("service"))
        .unwrap();
    let conv = || {
        CreateConversation::new(service)
            .unique_name("c")
            .keyed("conv")
            .into_command()
    };

    fail.store(true, Ordering::SeqCst);
    let failed = engine.execute(conv()).unwrap_err();
    let CommandError::Storage(failure) = &failed else {
        panic!("a failed write is a storage failure, got {failed:?}");
    };
    assert!(
        matches!(failure, StorageFailure::WriteFailed { message } if message.contains("injected")),
        "{failure:?}"
    );
    assert!(failure.needs_reopen() && !failure.is_retryable());
    assert!(failed.to_string().contains("reopen the engine"), "{failed}");

    // Later commands are refused as poisoned, until the engine is reopened.
    fail.store(false, Ordering::SeqCst);
    let poisoned = engine
        .execute(CreateConversation::new(service).keyed("other"))
        .unwrap_err();
    assert_eq!(poisoned, CommandError::Storage(StorageFailure::Poisoned));
    drop(engine);

    let engine = Engine::open(dir.path(), options()).unwrap();
    let retried = engine.execute(conv()).unwrap();
    assert!(
        !retried.deduplicated,
        "the failed write left nothing behind"
    );
    let again = engine.execute(conv()).unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.records, retried.records);
}
