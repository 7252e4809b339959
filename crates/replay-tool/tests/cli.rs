//! Every subcommand end to end, on a store the Engine wrote.

mod support;

use std::collections::BTreeSet;

use engine_core::log::keys::{position_key, CF_LOG};
use engine_core::Engine;
use events::command::*;
use serde_json::Value;
use support::{build, json_lines, run, with_db, Fixture, ALICE};

fn verify_hash(f: &Fixture) -> String {
    let (code, out, err) = run(f.tool(&["verify", "--json"]));
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["last_hash"].as_str().unwrap().to_string()
}

fn dump(f: &Fixture, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["dump"];
    all.extend_from_slice(args);
    let (code, out, err) = run(f.tool(&all));
    assert_eq!(code, 0, "dump {args:?}: {err}");
    json_lines(&out)
}

fn types(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l["type"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn verify_passes_and_says_what_it_checked() {
    let f = build();
    let (code, out, err) = run(f.tool(&["verify"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("ok: {} records", f.records)), "{out}");
    for what in [
        "hash chain",
        "contiguous positions",
        "format versions (v2",
        "time span",
        "final hash",
    ] {
        assert!(out.contains(what), "{what} missing: {out}");
    }
    assert!(
        err.is_empty(),
        "no progress bar when stderr is piped: {err}"
    );

    let (code, out, _) = run(f.tool(&["verify", "--projections", "--json"]));
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["records"], f.records);
    assert_eq!(v["projections"]["match"], true);
    assert_eq!(v["format_versions"]["2"], f.records);
    assert!(v["bytes"].as_u64().unwrap() > 0);

    let (code, out, _) = run(f.tool(&["verify", "--projections", "--read-only", "--threads", "1"]));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("projections: the rebuilt read models match"),
        "{out}"
    );
}

#[test]
fn verify_names_the_position_of_a_flipped_byte() {
    let f = build();
    let target = f.before_changes - 2;
    with_db(f.path(), |db| {
        let cf = db.cf_handle(CF_LOG).unwrap();
        let mut value = db.get_cf(cf, position_key(target)).unwrap().unwrap();
        let last = value.len() - 1;
        value[last] ^= 0x20; // a byte of the payload
        db.put_cf(cf, position_key(target), value).unwrap();
    });
    let (code, out, err) = run(f.tool(&["verify"]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(&format!("position {target}")), "{out}");
    assert!(out.contains("hash does not match"), "{out}");
    let (code, out, _) = run(f.tool(&["verify", "--json", "--threads", "1"]));
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["position"], target);
    // Every reader stops at the damage with the same verdict.
    let (code, _, err) = run(f.tool(&["dump"]));
    assert_eq!(code, 1);
    assert!(err.contains(&format!("position {target}")), "{err}");
}

#[test]
fn verify_names_a_missing_record() {
    let f = build();
    let target = f.before_changes;
    with_db(f.path(), |db| {
        let cf = db.cf_handle(CF_LOG).unwrap();
        db.delete_cf(cf, position_key(target)).unwrap();
    });
    let (code, out, _) = run(f.tool(&["verify"]));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "position {target}: record missing: the next stored position is {}",
            target + 1
        )),
        "{out}"
    );
}

#[test]
fn verify_projections_fails_when_the_read_models_differ() {
    let f = build();
    with_db(f.path(), |db| {
        let cf = db.cf_handle("rm_messages").unwrap();
        let key = {
            let mut it = db.raw_iterator_cf(cf);
            it.seek_to_first();
            it.key().unwrap().to_vec()
        };
        db.delete_cf(cf, key).unwrap();
    });
    let (code, out, _) = run(f.tool(&["verify"]));
    assert_eq!(code, 0, "the log itself is sound: {out}");
    let (code, out, err) = run(f.tool(&["verify", "--projections"]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("projections FAILED"), "{out}");
    assert!(out.contains("rm_messages: first difference"), "{out}");
}

#[test]
fn at_a_past_position_shows_the_earlier_state() {
    let f = build();
    let p = f.before_changes.to_string();
    let conv = f.conversation.to_string();
    let (code, out, err) = run(f.tool(&[
        "at",
        "--conversation",
        &conv,
        "--position",
        &p,
        "--read-by",
        "1",
    ]));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["as_of"]["position"], f.before_changes);
    assert_eq!(v["conversation"]["unique_name"], "ticket-42");
    assert_eq!(v["conversation"]["attributes"], r#"{"topic":"billing"}"#);
    let roster: BTreeSet<String> = v["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        roster,
        BTreeSet::from([f.alice.to_string(), f.sms.to_string()])
    );
    let alice = v["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["sid"] == f.alice.to_string())
        .unwrap();
    assert_eq!(alice["last_read_message_index"], 1);
    assert_eq!(alice["unread_messages_count"], 1);
    let sms = v["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["sid"] == f.sms.to_string())
        .unwrap();
    assert_eq!(sms["kind"], "messaging");
    // No read horizon: no unread count (Twilio's null), not every message.
    assert_eq!(sms["last_read_message_index"], Value::Null);
    assert_eq!(sms["unread_messages_count"], Value::Null);
    assert_eq!(sms["messaging_binding"]["address"], "+15551230001");
    assert_eq!(sms["messaging_binding"]["proxy_address"], "+15559870000");
    let bodies: Vec<&str> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    // Edited later: the old body. Deleted later: still there.
    assert_eq!(bodies, ["hello", "my invoice is wrong", "let me check"]);
    assert_eq!(v["deleted_message_indexes"], serde_json::json!([]));
    assert_eq!(v["read_by"]["index"], 1);
    let read: Vec<&str> = v["read_by"]["read"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["who"].as_str().unwrap())
        .collect();
    assert_eq!(read, ["alice"]);
    assert_eq!(v["read_by"]["not_read"][0]["who"], "+15551230001");

    // Now: edits and deletes applied, bob joined, horizons moved.
    let last = (f.records - 1).to_string();
    let (code, out, _) = run(f.tool(&[
        "at",
        "--conversation",
        "ticket-42",
        "--position",
        &last,
        "--read-by",
        "2",
    ]));
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["conversation"]["sid"], conv);
    assert_eq!(v["conversation"]["attributes"], r#"{"topic":"refund"}"#);
    assert_eq!(v["participants"].as_array().unwrap().len(), 3);
    let messages = v["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["body"], "hello (edited)");
    assert_eq!(messages[0]["edits"], 1);
    assert_eq!(v["deleted_message_indexes"], serde_json::json!([1]));
    let read: BTreeSet<&str> = v["read_by"]["read"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["who"].as_str().unwrap())
        .collect();
    assert_eq!(read, BTreeSet::from(["alice", "bob"]));
}

#[test]
fn at_a_time_and_as_a_table() {
    let f = build();
    // The time of the last record before the changes.
    let lines = dump(
        &f,
        &[
            "--from-position",
            &f.before_changes.to_string(),
            "--to-position",
            &f.before_changes.to_string(),
        ],
    );
    let t = lines[0]["recorded_at"].as_str().unwrap().to_string();
    let (code, out, err) = run(f.tool(&["at", "--conversation", "ticket-42", "--time", &t]));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["as_of"]["position"], f.before_changes);
    assert_eq!(v["messages"][0]["body"], "hello");
    assert_eq!(v["messages"].as_array().unwrap().len(), 3);

    let (code, out, _) = run(f.tool(&[
        "at",
        "--conversation",
        "ticket-42",
        "--time",
        &t,
        "--format",
        "table",
        "--read-by",
        "0",
    ]));
    assert_eq!(code, 0);
    for want in [
        "PARTICIPANTS (2)",
        "MESSAGES (3)",
        "my invoice is wrong",
        "chat alice",
        "+15551230001 via +15559870000",
        "message #0 read by: alice",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }

    // Before the conversation existed, and a name nobody had.
    let (code, _, err) = run(f.tool(&[
        "at",
        "--conversation",
        &f.conversation.to_string(),
        "--position",
        "0",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("had not been created yet"), "{err}");
    let (code, _, err) = run(f.tool(&["at", "--conversation", "no-such-name", "--position", "0"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("no conversation ever had the unique name"),
        "{err}"
    );
    let (code, _, _) = run(f.tool(&["at", "--conversation", "ticket-42", "--time", "not a time"]));
    assert_eq!(code, 2);
    let (code, _, _) = run(f.tool(&["at", "--conversation", "ticket-42"]));
    assert_eq!(code, 2, "a point is required");
}

#[test]
fn dump_is_json_lines_and_every_filter_filters() {
    let f = build();
    let all = dump(&f, &[]);
    assert_eq!(all.len() as u64, f.records);
    for (i, l) in all.iter().enumerate() {
        assert_eq!(l["position"], i as u64);
        assert!(l["event"].is_object(), "{l}");
        assert!(l["recorded_at"].as_str().unwrap().ends_with('Z'));
    }
    let svc = f.service.to_string();
    let other = f.other_service.to_string();
    let conv = f.conversation.to_string();

    // --service
    let lines = dump(&f, &["--service", &other]);
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l["service_sid"] == other));
    assert_eq!(
        lines.len() + dump(&f, &["--service", &svc]).len(),
        all.len()
    );

    // --conversation by SID and by unique name
    let by_sid = dump(&f, &["--conversation", &conv]);
    assert!(by_sid.iter().all(|l| l["conversation_sid"] == conv));
    let expected = all.iter().filter(|l| l["conversation_sid"] == conv).count();
    assert_eq!(by_sid.len(), expected);
    assert_eq!(dump(&f, &["--conversation", "ticket-42"]), by_sid);
    assert_eq!(
        dump(&f, &["--conversation", "elsewhere"]).len(),
        2,
        "created and one message"
    );

    // --type
    let lines = dump(
        &f,
        &[
            "--type",
            "message_added,message_updated",
            "--type",
            "message_removed",
        ],
    );
    let t: BTreeSet<String> = types(&lines).into_iter().collect();
    assert_eq!(
        t,
        BTreeSet::from([
            "message_added".into(),
            "message_updated".into(),
            "message_removed".into()
        ])
    );
    assert_eq!(lines.len(), 4 + 1 + 1);

    // --participant by identity: alice's participant, her messages, the
    // edit of one of them, her horizons, her user.
    let lines = dump(&f, &["--participant", "alice", "--conversation", &conv]);
    let t = types(&lines);
    assert_eq!(t.iter().filter(|t| *t == "participant_added").count(), 1);
    assert_eq!(t.iter().filter(|t| *t == "message_added").count(), 2);
    assert_eq!(t.iter().filter(|t| *t == "message_updated").count(), 1);
    assert_eq!(t.iter().filter(|t| *t == "read_horizon_updated").count(), 2);
    assert!(!t.contains(&"message_removed".to_string()));
    let with_user = dump(&f, &["--identity", "alice"]);
    assert!(
        types(&with_user).contains(&"user_created".to_string()),
        "{:?}",
        types(&with_user)
    );

    // --participant by address and by SID agree: the SMS participant, its
    // message and that message's deletion.
    let by_address = dump(&f, &["--participant", "+15551230001"]);
    assert_eq!(
        types(&by_address),
        ["participant_added", "message_added", "message_removed"]
    );
    assert_eq!(dump(&f, &["--participant", &f.sms.to_string()]), by_address);

    // --from-position / --to-position
    let lines = dump(&f, &["--from-position", "3", "--to-position", "7"]);
    let positions: Vec<u64> = lines
        .iter()
        .map(|l| l["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [3, 4, 5, 6, 7]);

    // --from-time / --to-time (inclusive)
    let t0 = all[f.before_changes as usize]["recorded_at"]
        .as_str()
        .unwrap();
    let lines = dump(&f, &["--from-time", t0]);
    assert!(lines.iter().all(|l| l["recorded_at_micros"].as_u64()
        >= all[f.before_changes as usize]["recorded_at_micros"].as_u64()));
    assert_eq!(lines[0]["position"], f.before_changes);
    let lines = dump(&f, &["--to-time", t0]);
    assert_eq!(lines.last().unwrap()["position"], f.before_changes);

    // --limit and the table
    assert_eq!(dump(&f, &["--limit", "2"]).len(), 2);
    let (code, out, _) = run(f.tool(&["dump", "--format", "table", "--type", "message_added"]));
    assert_eq!(code, 0);
    assert!(out.starts_with("POSITION"), "{out}");
    assert!(out.contains("alice: hello"), "{out}");

    // Bad filters are usage errors.
    for bad in [
        &["dump", "--type", "message_posted"][..],
        &["dump", "--service", "XX123"][..],
        &["dump", "--from-time", "yesterday"][..],
        &["dump", "--conversation", "no-such-name"][..],
    ] {
        let (code, _, err) = run(f.tool(bad));
        assert_eq!(code, 2, "{bad:?}: {err}");
    }
}

#[test]
fn stats_counts_what_dump_shows() {
    let f = build();
    let all = dump(&f, &[]);
    let (code, out, _) = run(f.tool(&["stats", "--json"]));
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["records"], f.records);
    let added = types(&all).iter().filter(|t| *t == "message_added").count();
    assert_eq!(v["by_type"]["message_added"], added as u64);
    assert_eq!(v["conversations_created"], 2);
    assert_eq!(v["conversations_live"], 2);
    assert_eq!(v["participants_live"], 3);
    assert_eq!(v["by_service"].as_array().unwrap().len(), 2);
    assert!(v["disk_bytes"].as_u64().unwrap() > 0);
    assert!(v["events_per_second"].as_f64().unwrap() > 0.0);
    let (code, out, _) = run(f.tool(&["stats"]));
    assert_eq!(code, 0);
    for want in [
        "log:",
        "span:",
        "rate:",
        "TYPE",
        "message_added",
        "acme",
        "other",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
}

/// blake3(prev_hash ‖ u16le(version) ‖ header ‖ payload), from the line alone.
fn recompute(line: &Value) -> String {
    let unhex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let mut h = blake3::Hasher::new();
    h.update(&unhex(line["prev_hash"].as_str().unwrap()));
    h.update(&(line["format_version"].as_u64().unwrap() as u16).to_le_bytes());
    h.update(&unhex(line["header_hex"].as_str().unwrap()));
    h.update(&unhex(line["payload_hex"].as_str().unwrap()));
    h.finalize().to_hex().to_string()
}

#[test]
fn export_lets_a_third_party_recompute_the_chain() {
    let f = build();
    let final_hash = verify_hash(&f);
    let conv = f.conversation.to_string();
    let (code, out, err) = run(f.tool(&["export", "--conversation", &conv]));
    assert_eq!(code, 0, "{err}");
    let lines = json_lines(&out);
    let (head, records) = lines.split_last().unwrap();
    assert_eq!(head["kind"], "head");
    assert_eq!(head["last_hash"], final_hash.as_str());
    assert_eq!(head["next_position"], f.records);
    assert_eq!(records.len(), dump(&f, &["--conversation", &conv]).len());
    for r in records {
        assert_eq!(r["kind"], "record");
        assert_eq!(r["conversation_sid"], conv.as_str());
        assert_eq!(recompute(r), r["hash"].as_str().unwrap(), "{r}");
    }

    // --chain: every line links to the previous one, up to verify's hash.
    let (code, out, _) = run(f.tool(&["export", "--conversation", "ticket-42", "--chain"]));
    assert_eq!(code, 0);
    let lines = json_lines(&out);
    let (head, body) = lines.split_last().unwrap();
    let first = body[0]["position"].as_u64().unwrap();
    assert_eq!(body.len() as u64, f.records - first);
    for pair in body.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
        assert_eq!(
            pair[1]["position"].as_u64(),
            pair[0]["position"].as_u64().map(|p| p + 1)
        );
    }
    for l in body {
        assert_eq!(recompute(l), l["hash"].as_str().unwrap());
    }
    assert!(body.iter().any(|l| l["kind"] == "link"));
    assert_eq!(body.last().unwrap()["hash"], final_hash.as_str());
    assert_eq!(head["last_hash"], final_hash.as_str());

    // --to-position: the head is that record's hash.
    let p = f.before_changes.to_string();
    let (code, out, _) = run(f.tool(&["export", "--conversation", &conv, "--to-position", &p]));
    assert_eq!(code, 0);
    let lines = json_lines(&out);
    assert_eq!(lines.last().unwrap()["next_position"], f.before_changes + 1);

    let (code, _, _) = run(f.tool(&["export", "--conversation", "no-such-name"]));
    assert_eq!(code, 2);
}

#[test]
fn dump_at_and_export_say_who_acted() {
    let f = build();
    let all = dump(&f, &[]);
    // Alice posted two messages and edited one as herself; everything else,
    // the SMS message included, came from the trusted host.
    let alice_acted: Vec<(String, u64)> = all
        .iter()
        .filter(|l| l["actor"] == ALICE)
        .map(|l| {
            (
                l["type"].as_str().unwrap().to_string(),
                l["event"]["index"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        alice_acted,
        [
            ("message_added".to_string(), 0),
            ("message_added".to_string(), 2),
            ("message_updated".to_string(), 0)
        ]
    );
    for l in all.iter().filter(|l| l["actor"] != ALICE) {
        assert!(l["actor"].is_null(), "the host's records say null: {l}");
    }

    // The table has an ACTOR column: alice on her messages, - for the host.
    let (code, out, err) = run(f.tool(&["dump", "--format", "table", "--type", "message_added"]));
    assert_eq!(code, 0, "{err}");
    let mut rows = out.lines();
    let header = rows.next().unwrap();
    let actor_at = header.find("ACTOR").expect("an ACTOR column");
    let actors: Vec<&str> = rows
        .map(|row| row[actor_at..].split_whitespace().next().unwrap())
        .collect();
    assert_eq!(actors, ["-", ALICE, "-", ALICE], "{out}");

    // at: who posted and who edited each message.
    let last = (f.records - 1).to_string();
    let conv = f.conversation.to_string();
    let (code, out, err) = run(f.tool(&["at", "--conversation", &conv, "--position", &last]));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let messages = v["messages"].as_array().unwrap();
    assert_eq!(messages[0]["actor"], ALICE);
    assert_eq!(messages[0]["edited_by"], serde_json::json!([ALICE]));
    assert_eq!(messages[1]["actor"], ALICE);
    assert_eq!(messages[1]["edited_by"], serde_json::json!([]));
    assert_eq!(v["conversation"]["actor"], Value::Null);
    assert_eq!(
        v["deleted_messages"],
        serde_json::json!([{"index": 1, "position": f.before_changes + 2, "actor": null}])
    );
    for p in v["participants"].as_array().unwrap() {
        assert_eq!(p["actor"], Value::Null, "the host added {p}");
    }
    let (code, out, _) = run(f.tool(&[
        "at",
        "--conversation",
        &conv,
        "--position",
        &last,
        "--format",
        "table",
    ]));
    assert_eq!(code, 0);
    for want in [
        "ADDED_BY",
        "POSTED_BY",
        "edited ×1 (last by alice)",
        "#1 (by the host at",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }

    // export: the actor on record lines, and the hash still recomputes
    // from format_version and header_hex (version 2's header holds the
    // actor, so changing it would change the hash).
    let (code, out, err) = run(f.tool(&["export", "--conversation", &conv]));
    assert_eq!(code, 0, "{err}");
    let lines = json_lines(&out);
    let records: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "record").collect();
    assert_eq!(
        records.iter().filter(|r| r["actor"] == ALICE).count(),
        alice_acted.len()
    );
    for r in &records {
        assert_eq!(r["format_version"], 2);
        assert_eq!(recompute(r), r["hash"].as_str().unwrap(), "{r}");
        let by_dump = &all[r["position"].as_u64().unwrap() as usize];
        assert_eq!(r["actor"], by_dump["actor"]);
    }
}

#[test]
fn rebuild_needs_the_store_alone() {
    let f = build();
    let engine = Engine::open(f.path(), support::options()).unwrap();
    // Reading tools work while the host has the store open...
    let (code, out, _) = run(f.tool(&["verify", "--projections"]));
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = run(f.tool(&[
        "at",
        "--conversation",
        "ticket-42",
        "--position",
        &(f.records - 1).to_string(),
    ]));
    assert_eq!(code, 0, "{out}");
    // ...rebuild says it cannot.
    let (code, out, err) = run(f.tool(&["rebuild"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("in use by another process"), "{err}");
    assert!(err.contains("stop the host"), "{err}");
    drop(engine);

    let (code, out, err) = run(f.tool(&["rebuild"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("from {} records", f.records)),
        "{out}"
    );
    let (code, out, _) = run(f.tool(&["verify", "--projections"]));
    assert_eq!(code, 0, "{out}");

    let missing = f.path().join("nothing-here");
    let mut cmd = assert_cmd::Command::cargo_bin("replay-tool").unwrap();
    cmd.args(["rebuild", "--data"]).arg(&missing);
    let (code, _, _) = run(cmd);
    assert_eq!(code, 2);
    assert!(!missing.exists(), "rebuild must not create a store");
}

#[test]
fn every_subcommand_has_help_with_exit_codes() {
    for sub in ["verify", "dump", "stats", "at", "rebuild", "export"] {
        let mut cmd = assert_cmd::Command::cargo_bin("replay-tool").unwrap();
        cmd.args([sub, "--help"]);
        let (code, out, _) = run(cmd);
        assert_eq!(code, 0, "{sub}");
        assert!(out.contains("Exit codes:"), "{sub}: {out}");
        assert!(out.contains("--data <DIR>"), "{sub}: {out}");
    }
    let mut cmd = assert_cmd::Command::cargo_bin("replay-tool").unwrap();
    cmd.arg("--help");
    let (code, out, _) = run(cmd);
    assert_eq!(code, 0);
    for sub in [
        "verify",
        "dump",
        "stats",
        "at",
        "rebuild",
        "export",
        "Exit codes:",
    ] {
        assert!(out.contains(sub), "{sub}: {out}");
    }
    let mut cmd = assert_cmd::Command::cargo_bin("replay-tool").unwrap();
    cmd.arg("dump");
    assert_eq!(run(cmd).0, 2, "--data is required");
}

#[test]
fn reading_is_safe_while_the_host_writes() {
    let f = build();
    let engine = Engine::open(f.path(), support::options()).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                engine
                    .execute(
                        PostMessage::new(f.service, f.conversation)
                            .author("alice")
                            .body(format!("live {n}"))
                            .keyed(format!("live-{n}")),
                    )
                    .unwrap();
            }
        });
        for _ in 0..3 {
            let (code, out, err) = run(f.tool(&["verify", "--projections"]));
            assert_eq!(code, 0, "{out}{err}");
            let (code, out, err) = run(f.tool(&["dump", "--conversation", "ticket-42"]));
            assert_eq!(code, 0, "{err}");
            assert!(json_lines(&out).len() as u64 > 10);
            let (code, _, err) = run(f.tool(&["stats"]));
            assert_eq!(code, 0, "{err}");
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let head = engine.log().head().next_position;
    assert!(head > f.records, "the host kept writing");
    drop(engine);
    let (code, out, _) = run(f.tool(&["verify", "--projections"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("ok: {head} records")), "{out}");
}
