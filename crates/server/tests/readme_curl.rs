//! The README's curl examples, run as written against a live server: every
//! `sh` block after a `<!-- readme-curl` marker runs in bash with
//! `ACCOUNT_SID` and `AUTH_TOKEN` set, the README's address replaced by the
//! test server's, and `-f` on every curl, so any answer ≥ 400 fails the
//! block. Without curl or bash the test says it skipped.

mod support;

use std::process::Command;
use std::time::Duration;

use support::TestServer;

/// The address the README's examples use.
const README_BASE: &str = "http://127.0.0.1:8080";
/// The marker line before each block that is run.
const MARKER: &str = "<!-- readme-curl";
/// How long one block may take.
const BLOCK_DEADLINE: Duration = Duration::from_secs(60);

/// The `sh` blocks after each marker, in order.
fn marked_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if !line.trim_start().starts_with(MARKER) {
            continue;
        }
        assert_eq!(
            lines.next().map(str::trim),
            Some("```sh"),
            "a {MARKER} marker must be followed by a ```sh block"
        );
        let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        blocks.push(block.join("\n"));
    }
    blocks
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_readme_curl_examples_work_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md is readable");
    let blocks = marked_blocks(&readme);
    assert!(blocks.len() >= 2, "the README has its curl examples");
    if !have("curl") || !have("bash") {
        println!("skipped: curl or bash is not installed");
        return;
    }
    let server = TestServer::start();
    for block in blocks {
        let script = format!(
            "set -euo pipefail\n{}",
            block.replace(README_BASE, &server.base)
        );
        let child = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .env("ACCOUNT_SID", &server.account_sid)
            .env("AUTH_TOKEN", &server.auth_token)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("bash starts");
        // Read the output on a thread (a full pipe must not stall bash)
        // and wait for it with a deadline.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let output = rx
            .recv_timeout(BLOCK_DEADLINE)
            .unwrap_or_else(|_| panic!("a README block ran past {BLOCK_DEADLINE:?}:\n{block}"))
            .expect("bash output");
        let status = output.status;
        assert!(
            status.success(),
            "a README block failed ({status}):\n{block}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // What the blocks made is there.
    let messages = server.get("/v1/Conversations/support-1/Messages");
    assert_eq!(messages.body["messages"].as_array().map(Vec::len), Some(2));
    let conversations = server.get("/v1/Conversations");
    assert_eq!(
        conversations.body["conversations"].as_array().map(Vec::len),
        Some(2),
        "support-1 and the one the inbound SMS opened"
    );
}
