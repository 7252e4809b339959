//! `replay-tool verify` checks the log's index column families (stream
//! index, stream versions, idempotency entries) against the log, and
//! `replay-tool rebuild` re-derives them.

mod support;

use engine_core::log::keys::{parse_stream_version_value, stream_version_value};
use engine_core::log::keys::{CF_COMMANDS, CF_STREAM, CF_STREAMS};
use support::*;

/// Damages the first entry of `column_family`: deletes it, or for the
/// stream versions, stores one version too many.
fn damage(f: &Fixture, column_family: &str) {
    with_db(f.path(), |db| {
        let cf = db.cf_handle(column_family).unwrap();
        let (key, value) = db
            .iterator_cf(cf, rocksdb::IteratorMode::Start)
            .next()
            .expect("the column family has entries")
            .unwrap();
        if column_family == CF_STREAMS {
            let version = parse_stream_version_value(&value).unwrap();
            db.put_cf(cf, key, stream_version_value(version + 1))
                .unwrap();
        } else {
            db.delete_cf(cf, key).unwrap();
        }
    });
}

#[test]
fn a_damaged_index_fails_verify_and_rebuild_re_derives_it() {
    for column_family in [CF_STREAM, CF_STREAMS, CF_COMMANDS] {
        let f = build();
        let (code, out, err) = run(f.tool(&["verify"]));
        assert_eq!(code, 0, "healthy store: {out}{err}");
        assert!(out.contains("agree with the log"), "{out}");

        damage(&f, column_family);
        for mode in [&["verify"][..], &["verify", "--read-only"][..]] {
            let (code, out, err) = run(f.tool(mode));
            assert_eq!(code, 1, "{column_family} damaged, {mode:?}: {out}{err}");
            assert!(
                err.contains(&format!("column family {column_family},")),
                "{column_family}: {err}"
            );
            assert!(err.contains("(position "), "{column_family}: {err}");
        }

        let (code, out, err) = run(f.tool(&["rebuild"]));
        assert_eq!(code, 0, "rebuild: {out}{err}");
        let (code, out, err) = run(f.tool(&["verify", "--projections"]));
        assert_eq!(code, 0, "{column_family} after rebuild: {out}{err}");
    }
}
