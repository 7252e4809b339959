//! Module layering, checked on the source (a tidy check): within each
//! listed module directory, a module depends only on the modules layered
//! before it, so there is no module cycle; and fan-out, delivery and
//! reactors never name the engine facade (they read through the narrow
//! `sources::ReadSource` the engine hands them, and reactors command through
//! `sources::CommandSink`). The cycles broken once —
//! commands' conversation ↔ participant, fan-out's hub ↔ worker,
//! event-log's event_log ↔ writer, engine ↔ fan-out / delivery — stay
//! broken. Crate-level direction is `tidy.rs`.

use std::fs;
use std::path::{Path, PathBuf};

/// Fan-out's modules, each allowed to use only those before it.
const FANOUT_LAYERS: [&str; 6] = ["mapping", "hub", "worker", "route", "replay", "session"];

/// Delivery's modules, each allowed to use only those before it (the
/// channel adapters `memory` and `webhook` use only the module root).
const DELIVERY_LAYERS: [&str; 8] = [
    "pending",
    "outbox",
    "shared",
    "recovery",
    "sender",
    "scheduler",
    "memory",
    "webhook",
];

/// The reactors' modules (the module root aside), each allowed to use only
/// those before it.
const REACTOR_LAYERS: [&str; 2] = ["store", "runner"];

/// A source directory, relative to the workspace root (`crates/…/src/…`).
/// The command handlers' modules (crate root `lib.rs` aside), each allowed
/// to use only those before it.
const COMMANDS_LAYERS: [&str; 7] = [
    "error",
    "validate",
    "service",
    "participant",
    "conversation",
    "message",
    "inbound",
];

fn src(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(dir)
}

/// The file's lines that are code (comments and doc lines left out).
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(n, l)| (n + 1, l.to_string()))
        .collect()
}

/// Whether `line` uses module `name` as a path segment (`name::`, not as
/// the tail of a longer identifier).
fn uses_module(line: &str, name: &str) -> bool {
    let needle = format!("{name}::");
    line.match_indices(&needle).any(|(i, _)| {
        !line[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Every module in `layers` uses no module layered at or after it (but
/// itself), and every module file of `dir` is in `layers`.
fn assert_layered(dir: &str, layers: &[&str]) {
    let mut found: Vec<String> = fs::read_dir(src(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".rs").map(str::to_string))
        .filter(|n| n != "mod" && n != "lib")
        .collect();
    found.sort();
    let mut listed: Vec<String> = layers.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        found, listed,
        "{dir}/: every module must have its place in the layering"
    );
    for (i, module) in layers.iter().enumerate() {
        let path = src(dir).join(format!("{module}.rs"));
        for (n, line) in code_lines(&path) {
            for later in &layers[i + 1..] {
                assert!(
                    !uses_module(&line, later),
                    "{}:{n}: {module} uses {later}, which is layered after it: {line}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn fanout_delivery_and_reactors_never_name_the_engine_facade() {
    for dir in [
        "crates/engine-core/src/fanout",
        "crates/engine-core/src/delivery",
        "crates/engine-core/src/reactor",
    ] {
        for entry in fs::read_dir(src(dir)).unwrap() {
            let path = entry.unwrap().path();
            for (n, line) in code_lines(&path) {
                let names_facade = ["crate::engine", "crate::Engine", "Engine::", "Core"]
                    .iter()
                    .any(|facade| line.contains(facade));
                assert!(
                    !names_facade,
                    "{}:{n}: fan-out, delivery and reactors take narrow inputs \
                     from the engine, never the facade: {line}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn fanout_modules_have_no_cycle() {
    assert_layered("crates/engine-core/src/fanout", &FANOUT_LAYERS);
}

#[test]
fn delivery_modules_have_no_cycle() {
    assert_layered("crates/engine-core/src/delivery", &DELIVERY_LAYERS);
}

#[test]
fn reactor_modules_have_no_cycle() {
    assert_layered("crates/engine-core/src/reactor", &REACTOR_LAYERS);
}

#[test]
fn command_handler_modules_have_no_cycle() {
    assert_layered("crates/commands/src", &COMMANDS_LAYERS);
}

#[test]
fn the_layering_check_sees_a_module_path() {
    assert!(uses_module("use super::worker::WorkerMsg;", "worker"));
    assert!(uses_module("    worker::run(x)", "worker"));
    assert!(!uses_module("use crate::fanout_worker::X;", "worker"));
    assert!(!uses_module("let reworker = 1;", "worker"));
}
