//! Tidy checks, run as tests (in the spirit of rust-analyzer's): rules of
//! the codebase that a compiler does not enforce.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every crate's root file opens with `//!` docs on its role.
#[test]
fn every_crate_root_has_module_docs() {
    let mut roots = vec![root().join("src/lib.rs")];
    for entry in fs::read_dir(root().join("crates")).unwrap().flatten() {
        let src = entry.path().join("src");
        for name in ["lib.rs", "main.rs"] {
            if src.join(name).exists() {
                roots.push(src.join(name));
            }
        }
    }
    assert!(roots.len() >= 6, "found only {roots:?}");
    for path in roots {
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.trim_start().starts_with("//!"),
            "{} must open with //! docs saying what the crate is for",
            path.display()
        );
    }
}

/// The directory name is the crate name (`crates/engine-core` is `engine-core`).
#[test]
fn directory_name_is_crate_name() {
    for entry in fs::read_dir(root().join("crates")).unwrap().flatten() {
        let manifest = fs::read_to_string(entry.path().join("Cargo.toml")).unwrap();
        let dir = entry.file_name().into_string().unwrap();
        assert!(
            manifest.contains(&format!("name = \"{dir}\"")),
            "crates/{dir}/Cargo.toml must name the package {dir:?}"
        );
    }
}

/// Placeholders are never shipped: no `todo!`, `unimplemented!` or ignored tests.
#[test]
fn no_placeholders() {
    let mut files = Vec::new();
    for dir in ["src", "crates", "benches", "examples", "tests"] {
        rust_files(&root().join(dir), &mut files);
    }
    let banned = [
        concat!("todo", "!("),
        concat!("unimplemented", "!("),
        concat!("#[", "ignore"),
    ];
    for path in files {
        let text = fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            for b in banned {
                assert!(
                    !line.contains(b),
                    "{}:{}: {b} is a placeholder",
                    path.display(),
                    n + 1
                );
            }
        }
    }
}

/// Every limit is a documented constant whose name says its unit.
#[test]
fn limits_are_named_with_units() {
    let text = fs::read_to_string(root().join("crates/events/src/limits.rs")).unwrap();
    let units = [
        "_BYTES_",
        "_CHARS_",
        "_MICROS_",
        "_PER_",
        "PAGE_SIZE_",
        "_WITH_PARTICIPANTS_",
    ];
    let mut count = 0;
    let mut prev = "";
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("pub const ") {
            let name = rest.split(':').next().unwrap();
            assert!(
                units.iter().any(|u| name.contains(u)),
                "limit {name} must name its unit (bytes, chars, per-something, …)"
            );
            assert!(
                name.ends_with("_MAX") || name.ends_with("_MIN") || name.ends_with("_DEFAULT"),
                "limit {name} must say whether it is a maximum, a minimum or a default"
            );
            assert!(prev.starts_with("///"), "limit {name} needs a doc comment");
            count += 1;
        }
        prev = line.trim_start();
    }
    assert!(
        count >= 15,
        "expected the limits file to hold every limit, found {count}"
    );
}
