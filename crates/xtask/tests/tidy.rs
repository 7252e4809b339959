//! Tidy checks, run as tests: the workspace's shape, read from its manifests.
//!
//! The architecture is a one-way flow of crates (ARCHITECTURE.md's code
//! map). Nothing in cargo stops a crate from depending on one above it, or a
//! pure crate from pulling in RocksDB, so this test reads every
//! `crates/*/Cargo.toml` and the root `Cargo.toml` with a TOML parser and
//! checks, each from a table below:
//! - every dependency between the project's crates follows [`ALLOWED_EDGES`];
//! - every crate's directory is named after its package;
//! - every crate root (`src/lib.rs`, `src/main.rs`, or the `path` its
//!   manifest names) opens with `//!` docs;
//! - the pure crates ([`PURE_CRATES`]) link none of [`IO_CRATES`].
//!
//! Each check is a function from manifest text (and file text) to a list of
//! violations, so the tests at the bottom show each one failing on a bad
//! manifest, and the workspace test shows none fail on the real tree.

use std::fs;
use std::path::{Path, PathBuf};

/// The root package's name: it re-exports the engine, so it may use every
/// crate.
const ROOT_PACKAGE: &str = "colloquy";

/// The project's crates and, for each, the project crates it may depend on
/// (in any dependency table: a dev-dependency against the flow couples the
/// crates as surely as a normal one). A crate missing from this table fails
/// the test, so a new crate must say where it sits.
const ALLOWED_EDGES: &[(&str, &[&str])] = &[
    ("events", &[]),
    ("projections", &["events"]),
    ("commands", &["events", "projections"]),
    ("event-log", &["events"]),
    (
        "engine-core",
        &["events", "projections", "commands", "event-log"],
    ),
    (
        "replay-tool",
        &["events", "projections", "event-log", "engine-core"],
    ),
    ("server", &["events", "projections", "engine-core"]),
    (
        ROOT_PACKAGE,
        &[
            "events",
            "projections",
            "commands",
            "event-log",
            "engine-core",
            "replay-tool",
            "server",
        ],
    ),
    ("xtask", &[]),
];

/// The crates that must stay pure: no disk, no network, no threads, no
/// clock of their own (ARCHITECTURE.md: "events does no I/O", "commands
/// never writes; it only decides", "projections never write to the log").
const PURE_CRATES: &[&str] = &["events", "projections", "commands"];

/// Crates a pure crate may not link, each with why. Checked against
/// `[dependencies]` and `[build-dependencies]` (what the library links);
/// dev-dependencies only build the crate's own tests.
const IO_CRATES: &[(&str, &str)] = &[
    ("rocksdb", "storage belongs to event-log"),
    ("librocksdb-sys", "storage belongs to event-log"),
    ("tokio", "async runtimes and channels belong to engine-core"),
    ("futures-core", "streams belong to engine-core"),
    ("async-std", "an async runtime"),
    ("mio", "socket and poll I/O"),
    ("socket2", "socket I/O"),
    ("ureq", "HTTP belongs to engine-core's webhook adapter"),
    ("reqwest", "HTTP"),
    ("hyper", "HTTP"),
    (
        "crossbeam-channel",
        "threads belong to event-log and engine-core",
    ),
    ("parking_lot", "locks belong to event-log and engine-core"),
    ("rayon", "threads"),
    ("tempfile", "disk"),
    ("memmap2", "disk"),
];

/// The dependency tables of a manifest (or of one `[target.*]` section).
const DEPENDENCY_TABLES: &[&str] = &["dependencies", "dev-dependencies", "build-dependencies"];

/// The tables whose crates a library links (see [`IO_CRATES`]).
const LINKED_TABLES: &[&str] = &["dependencies", "build-dependencies"];

/// One dependency as a manifest declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dependency {
    /// The package depended on (the `package = …` rename resolved).
    package: String,
    /// The table it is declared in, e.g. `dev-dependencies` or
    /// `target.'cfg(unix)'.dependencies`.
    table: String,
    /// Whether that table is linked into the library (see [`LINKED_TABLES`]).
    linked: bool,
}

/// What the tidy checks need of one manifest.
#[derive(Debug)]
struct Manifest {
    /// Where it came from, for messages.
    origin: String,
    /// `[package] name`.
    package: String,
    /// Every dependency in every table, target-specific ones included.
    dependencies: Vec<Dependency>,
    /// The crate roots the manifest names explicitly (`[lib] path`,
    /// `[[bin]] path`), relative to the crate directory.
    explicit_roots: Vec<String>,
}

/// Parses manifest text; `origin` names it in the error.
fn parse_manifest(origin: &str, text: &str) -> Result<Manifest, String> {
    let doc: toml::Table = text
        .parse()
        .map_err(|e| format!("{origin}: not valid TOML: {e}"))?;
    let package = doc
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .ok_or_else(|| format!("{origin}: has no [package] name"))?
        .to_string();

    let mut dependencies = Vec::new();
    collect_dependencies(&doc, "", &mut dependencies);
    if let Some(targets) = doc.get("target").and_then(|t| t.as_table()) {
        for (cfg, section) in targets {
            if let Some(section) = section.as_table() {
                collect_dependencies(section, &format!("target.'{cfg}'."), &mut dependencies);
            }
        }
    }

    let mut explicit_roots = Vec::new();
    let lib_path = doc.get("lib").and_then(|l| l.get("path"));
    let bin_paths = doc
        .get("bin")
        .and_then(|b| b.as_array())
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("path"));
    for path in lib_path.into_iter().chain(bin_paths) {
        let path = path
            .as_str()
            .ok_or_else(|| format!("{origin}: a target `path` is not a string"))?;
        explicit_roots.push(path.to_string());
    }

    Ok(Manifest {
        origin: origin.to_string(),
        package,
        dependencies,
        explicit_roots,
    })
}

/// Adds the dependencies of `section`'s dependency tables to `out`.
fn collect_dependencies(section: &toml::Table, prefix: &str, out: &mut Vec<Dependency>) {
    for &table in DEPENDENCY_TABLES {
        let Some(deps) = section.get(table).and_then(|t| t.as_table()) else {
            continue;
        };
        for (key, spec) in deps {
            let package = spec
                .get("package")
                .and_then(|p| p.as_str())
                .unwrap_or(key)
                .to_string();
            out.push(Dependency {
                package,
                table: format!("{prefix}{table}"),
                linked: LINKED_TABLES.contains(&table),
            });
        }
    }
}

/// The project crates `package` may depend on, or `None` when the table
/// does not list it.
fn allowed_for(package: &str) -> Option<&'static [&'static str]> {
    ALLOWED_EDGES
        .iter()
        .find(|(name, _)| *name == package)
        .map(|(_, allowed)| *allowed)
}

/// Check: every dependency on a project crate is an allowed edge.
fn check_direction(manifest: &Manifest) -> Vec<String> {
    let Some(allowed) = allowed_for(&manifest.package) else {
        return vec![format!(
            "{}: crate `{}` is not in ALLOWED_EDGES (crates/xtask/tests/tidy.rs); \
             add it with the project crates it may depend on",
            manifest.origin, manifest.package
        )];
    };
    manifest
        .dependencies
        .iter()
        .filter(|dep| {
            allowed_for(&dep.package).is_some() && !allowed.contains(&dep.package.as_str())
        })
        .map(|dep| {
            format!(
                "{}: crate `{}` depends on `{}` in [{}], against the crate flow; \
                 `{}` may use only {:?} (ARCHITECTURE.md, ALLOWED_EDGES)",
                manifest.origin,
                manifest.package,
                dep.package,
                dep.table,
                manifest.package,
                allowed
            )
        })
        .collect()
}

/// Check: the crate's directory is named after its package.
fn check_directory_name(dir_name: &str, manifest: &Manifest) -> Vec<String> {
    if dir_name == manifest.package {
        Vec::new()
    } else {
        vec![format!(
            "{}: package `{}` lives in directory `crates/{dir_name}`; rename one so they match",
            manifest.origin, manifest.package
        )]
    }
}

/// Check: a pure crate links no I/O crate.
fn check_purity(manifest: &Manifest) -> Vec<String> {
    if !PURE_CRATES.contains(&manifest.package.as_str()) {
        return Vec::new();
    }
    manifest
        .dependencies
        .iter()
        .filter(|dep| dep.linked)
        .filter_map(|dep| {
            IO_CRATES
                .iter()
                .find(|(name, _)| *name == dep.package)
                .map(|(name, why)| {
                    format!(
                        "{}: pure crate `{}` depends on `{name}` in [{}] ({why}); \
                         move the code that needs it to a crate that does I/O",
                        manifest.origin, manifest.package, dep.table
                    )
                })
        })
        .collect()
}

/// The crate roots of a crate: those its manifest names, and
/// `src/lib.rs` / `src/main.rs` where `exists` says they are present.
fn crate_roots(manifest: &Manifest, exists: impl Fn(&str) -> bool) -> Vec<String> {
    let mut roots = manifest.explicit_roots.clone();
    for default in ["src/lib.rs", "src/main.rs"] {
        if exists(default) && !roots.iter().any(|r| r == default) {
            roots.push(default.to_string());
        }
    }
    roots
}

/// Check: one crate root's text opens with `//!` docs.
fn check_root_docs(origin: &str, root: &str, text: &str) -> Vec<String> {
    if text.starts_with("//!") {
        Vec::new()
    } else {
        vec![format!(
            "{origin}: crate root `{root}` does not open with `//!` docs; \
             start it with a paragraph on the crate's role"
        )]
    }
}

/// The workspace root: two levels above this crate.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/xtask sits two levels below the workspace root")
        .to_path_buf()
}

/// Runs every check over one crate directory (`dir_name` is `None` for the
/// root package, which lives at the workspace root, not in `crates/`).
fn check_crate(dir: &Path, dir_name: Option<&str>) -> Result<(String, Vec<String>), String> {
    let manifest_path = dir.join("Cargo.toml");
    let origin = manifest_path.display().to_string();
    let text = fs::read_to_string(&manifest_path).map_err(|e| format!("{origin}: {e}"))?;
    let manifest = parse_manifest(&origin, &text)?;

    let mut problems = check_direction(&manifest);
    problems.extend(check_purity(&manifest));
    if let Some(dir_name) = dir_name {
        problems.extend(check_directory_name(dir_name, &manifest));
    }
    let roots = crate_roots(&manifest, |path| dir.join(path).is_file());
    if roots.is_empty() {
        problems.push(format!(
            "{origin}: no crate root (src/lib.rs, src/main.rs or a target `path`)"
        ));
    }
    for root in roots {
        let path = dir.join(&root);
        match fs::read_to_string(&path) {
            Ok(source) => problems.extend(check_root_docs(&origin, &root, &source)),
            Err(e) => problems.push(format!("{}: cannot read crate root: {e}", path.display())),
        }
    }
    Ok((manifest.package, problems))
}

#[test]
fn workspace_crates_follow_the_architecture() {
    let root = workspace_root();
    let mut problems = Vec::new();
    let mut seen = Vec::new();

    let crates_dir = root.join("crates");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&crates_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", crates_dir.display()))
        .map(|entry| entry.expect("a readable crates/ entry").path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    for dir in &dirs {
        let dir_name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("crate directory names are UTF-8");
        match check_crate(dir, Some(dir_name)) {
            Ok((package, found)) => {
                seen.push(package);
                problems.extend(found);
            }
            Err(e) => problems.push(e),
        }
    }
    match check_crate(&root, None) {
        Ok((package, found)) => {
            if package != ROOT_PACKAGE {
                problems.push(format!(
                    "the root package is `{package}`, but tidy.rs calls it `{ROOT_PACKAGE}`"
                ));
            }
            seen.push(package);
            problems.extend(found);
        }
        Err(e) => problems.push(e),
    }

    for (name, _) in ALLOWED_EDGES {
        if !seen.iter().any(|p| p == name) {
            problems.push(format!(
                "ALLOWED_EDGES names crate `{name}`, but no manifest in the workspace has that \
                 package name; remove it from the table or restore the crate"
            ));
        }
    }

    assert!(
        problems.is_empty(),
        "tidy found {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    // The walk really covered the workspace: every table entry was seen.
    assert_eq!(seen.len(), ALLOWED_EDGES.len(), "crates seen: {seen:?}");
}

// Each check fails on a bad manifest, naming the crate and the dependency.

fn manifest(text: &str) -> Manifest {
    parse_manifest("test/Cargo.toml", text).expect("test manifests parse")
}

/// Asserts that a check found exactly one problem, and that it says `needle`.
fn assert_one_problem(problems: &[String], needle: &str) {
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains(needle), "{}", problems[0]);
}

#[test]
fn direction_check_names_a_dependency_against_the_flow() {
    let bad = manifest(
        r#"
        [package]
        name = "events"
        [dependencies]
        serde = "1"
        [dev-dependencies]
        engine-core = { path = "../engine-core" }
        "#,
    );
    let problems = check_direction(&bad);
    assert_one_problem(&problems, "crate `events` depends on `engine-core`");
    assert!(
        problems[0].contains("[dev-dependencies]"),
        "{}",
        problems[0]
    );

    let fine = manifest(
        r#"
        [package]
        name = "commands"
        [dependencies]
        events.workspace = true
        projections.workspace = true
        serde = "1"
        "#,
    );
    assert_eq!(check_direction(&fine), Vec::<String>::new());
}

#[test]
fn direction_check_sees_renames_and_target_tables() {
    let renamed = manifest(
        r#"
        [package]
        name = "projections"
        [dependencies]
        decide = { package = "commands", path = "../commands" }
        "#,
    );
    let problems = check_direction(&renamed);
    assert_one_problem(&problems, "depends on `commands`");

    let targeted = manifest(
        r#"
        [package]
        name = "event-log"
        [target.'cfg(unix)'.dependencies]
        projections = { path = "../projections" }
        "#,
    );
    let problems = check_direction(&targeted);
    assert_one_problem(&problems, "target.'cfg(unix)'.dependencies");
}

#[test]
fn direction_check_refuses_a_crate_missing_from_the_table() {
    let unknown = manifest("[package]\nname = \"gateway\"\n");
    let problems = check_direction(&unknown);
    assert_one_problem(&problems, "`gateway` is not in ALLOWED_EDGES");
}

#[test]
fn directory_name_check_names_the_mismatch() {
    let m = manifest("[package]\nname = \"event_log\"\n");
    let problems = check_directory_name("event-log", &m);
    assert_one_problem(
        &problems,
        "`event_log` lives in directory `crates/event-log`",
    );
    assert_eq!(check_directory_name("event_log", &m), Vec::<String>::new());
}

#[test]
fn purity_check_names_the_io_crate() {
    let bad = manifest(
        r#"
        [package]
        name = "projections"
        [dependencies]
        tokio = { version = "1", features = ["sync"] }
        [dev-dependencies]
        tempfile = "3"
        "#,
    );
    let problems = check_purity(&bad);
    // tokio is linked; tempfile only builds tests.
    assert_one_problem(&problems, "pure crate `projections` depends on `tokio`");

    let impure_allowed =
        manifest("[package]\nname = \"event-log\"\n[dependencies]\nrocksdb = \"0.25\"\n");
    assert_eq!(check_purity(&impure_allowed), Vec::<String>::new());
}

#[test]
fn root_docs_check_names_the_undocumented_root() {
    let problems = check_root_docs(
        "x/Cargo.toml",
        "src/lib.rs",
        "#![warn(missing_docs)]\n//! late\n",
    );
    assert_one_problem(&problems, "`src/lib.rs` does not open with `//!` docs");
    assert_eq!(
        check_root_docs("x/Cargo.toml", "src/lib.rs", "//! Role.\n"),
        Vec::<String>::new()
    );
}

#[test]
fn crate_roots_include_explicit_paths_and_present_defaults() {
    let m = manifest(
        r#"
        [package]
        name = "replay-tool"
        [lib]
        path = "src/lib.rs"
        [[bin]]
        name = "replay-tool"
        path = "src/cli.rs"
        "#,
    );
    let roots = crate_roots(&m, |p| p == "src/lib.rs");
    assert_eq!(roots, ["src/lib.rs", "src/cli.rs"]);
    let none = manifest("[package]\nname = \"xtask\"\n");
    assert_eq!(crate_roots(&none, |_| false), Vec::<String>::new());
}

#[test]
fn unparsable_manifests_are_named() {
    let err = parse_manifest("bad/Cargo.toml", "[package\nname = 1").unwrap_err();
    assert!(err.starts_with("bad/Cargo.toml: not valid TOML"), "{err}");
    let err = parse_manifest("bad/Cargo.toml", "[dependencies]\n").unwrap_err();
    assert!(err.contains("has no [package] name"), "{err}");
}
