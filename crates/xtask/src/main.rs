//! `cargo xtask`: Colloquy's project entry point.
//!
//! Dependency-free on purpose (std only), so it builds in seconds on a cold
//! machine before anything else: `setup` checks the system packages
//! RocksDB's build needs, `serve` runs the server (the main job), `test` runs
//! every check CI runs, `attack` runs the fault-injection campaign at
//! scale and `bench` runs one bench optimised without a release build of
//! RocksDB. See `cargo xtask --help`.

mod cli;
mod process;
mod setup;

use std::fmt;
use std::process::{ExitCode, Stdio};

use cli::{AttackArgs, BenchArgs, Task, UsageError};
use process::{cargo, run_step};

/// Why `cargo xtask` failed.
#[derive(Debug)]
pub enum Error {
    /// The arguments do not form a valid invocation.
    Usage(UsageError),
    /// System packages are missing and cannot be installed from here.
    MissingSystemPackages(String),
    /// A step (a child process) failed.
    StepFailed {
        /// The step's name, e.g. `clippy`.
        step: String,
        /// Its exit status, or why it could not start.
        detail: String,
    },
}

impl Error {
    /// The process exit status: 2 for what the user must fix before
    /// retrying (usage, missing packages), 1 for a failed step.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::MissingSystemPackages(_) => 2,
            Error::StepFailed { .. } => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(e) => write!(f, "{e}\n\nRun `cargo xtask --help` for usage."),
            Error::MissingSystemPackages(message) => write!(f, "setup failed: {message}"),
            Error::StepFailed { step, detail } => write!(f, "step `{step}` failed: {detail}"),
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

fn run() -> Result<(), Error> {
    let args = std::env::args_os()
        .skip(1)
        .map(|arg| {
            arg.into_string().map_err(|arg| {
                Error::Usage(UsageError(format!("argument {arg:?} is not valid UTF-8")))
            })
        })
        .collect::<Result<Vec<String>, Error>>()?;
    match cli::parse(args).map_err(Error::Usage)? {
        Task::Help => {
            print!("{}", cli::HELP);
            Ok(())
        }
        Task::Setup => setup::run(),
        Task::Serve { server_args } => serve(&server_args),
        Task::Test { lint } => test(lint),
        Task::Attack(args) => attack(&args),
        Task::Bench(args) => bench(&args),
    }
}

/// The workspace's own crates, optimised for `cargo xtask bench`; every
/// other package keeps the dev profile's settings (RocksDB at
/// `opt-level = 2`, already built), so nothing else is rebuilt.
const BENCH_OPTIMISED_PACKAGES: [&str; 7] = [
    "events",
    "event-log",
    "engine-core",
    "projections",
    "commands",
    "server",
    "colloquy",
];

/// The dev-profile settings `cargo xtask bench` gives each of
/// [`BENCH_OPTIMISED_PACKAGES`]: what the release profile would.
const BENCH_PACKAGE_SETTINGS: [&str; 4] = [
    "codegen-units=1",
    "debug-assertions=false",
    "overflow-checks=false",
    "opt-level=3",
];

/// cargo's arguments for `cargo xtask bench`.
fn bench_args(args: &BenchArgs) -> Vec<String> {
    let mut out = Vec::new();
    for package in BENCH_OPTIMISED_PACKAGES {
        for setting in BENCH_PACKAGE_SETTINGS {
            out.push("--config".to_string());
            out.push(format!("profile.dev.package.{package}.{setting}"));
        }
    }
    out.extend(["bench", "--profile", "dev", "--bench"].map(String::from));
    out.push(args.name.clone());
    if args.offline {
        out.push("--offline".into());
    }
    if !args.bench_args.is_empty() {
        out.push("--".into());
        out.extend(args.bench_args.iter().cloned());
    }
    out
}

/// Runs one bench with the optimised dev profile (see [`bench_args`]);
/// incremental compilation is off, as for any optimised build.
fn bench(args: &BenchArgs) -> Result<(), Error> {
    setup::run()?;
    let mut command = cargo(bench_args(args));
    command.env("CARGO_PROFILE_DEV_INCREMENTAL", "false");
    run_step("bench", &mut command)
}

/// The test binaries that hold the attack campaign: (step, package).
const ATTACK_PACKAGES: [(&str, &str); 2] = [
    ("attack engine", "engine-core"),
    ("attack auditor", "replay-tool"),
];

/// cargo's arguments for one package's attack tests.
fn attack_args(package: &str) -> Vec<String> {
    ["test", "--package", package, "--test", "attacks"]
        .map(String::from)
        .to_vec()
}

/// The header of the table `attack` prints; the tests append the rows
/// (attack, checker, trials, then one count per outcome).
const ATTACK_TABLE_HEADER: &str = "\
| attack | checker | trials | intact | loud error | vague error | silent loss | reported valid | hang | panic | stuck |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |";

/// Runs both attack test binaries (the second even if the first fails, so
/// every figure is printed), then the table of outcomes.
fn attack(args: &AttackArgs) -> Result<(), Error> {
    setup::run()?;
    let report = std::env::temp_dir().join(format!("colloquy-attacks-{}.md", std::process::id()));
    let _ = std::fs::remove_file(&report);
    let mut failed = None;
    for (step, package) in ATTACK_PACKAGES {
        let mut command = cargo(attack_args(package));
        for (key, value) in args.env() {
            command.env(key, value);
        }
        command.env("COLLOQUY_ATTACK_REPORT", &report);
        if let Err(e) = run_step(step, &mut command) {
            eprintln!("xtask: {e}");
            failed.get_or_insert(e);
        }
    }
    let rows = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    println!("{ATTACK_TABLE_HEADER}\n{rows}");
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The package and binary `cargo xtask serve` runs: the server.
const SERVE_PACKAGE: &str = "server";
const SERVE_BIN: &str = "colloquy-server";

fn serve_args(server_args: &[String]) -> Vec<String> {
    let mut args: Vec<String> = ["run", "--package", SERVE_PACKAGE, "--bin", SERVE_BIN]
        .map(String::from)
        .to_vec();
    if !server_args.is_empty() {
        args.push("--".to_string());
        args.extend(server_args.iter().cloned());
    }
    args
}

fn serve(server_args: &[String]) -> Result<(), Error> {
    setup::run()?;
    run_step("serve", &mut cargo(serve_args(server_args)))
}

/// One step of `cargo xtask test`: its name and cargo's arguments.
type Step = (&'static str, &'static [&'static str]);

const LINT_STEPS: [Step; 3] = [
    ("fmt", &["fmt", "--all", "--", "--check"]),
    (
        "clippy",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    ),
    // The library without its optional webhook adapter (and its HTTP
    // client) must build and lint clean too.
    (
        "clippy-minimal",
        &[
            "clippy",
            "--package",
            "engine-core",
            "--no-default-features",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    ),
];
const TEST_STEP: Step = ("test", &["test", "--workspace"]);

/// The steps `cargo xtask test` runs, in order.
fn test_steps(lint: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    if lint {
        steps.extend(LINT_STEPS);
    }
    steps.push(TEST_STEP);
    steps
}

/// The rustup components the lint steps need. A toolchain installed with
/// rustup's minimal profile (as in the official Rust container images)
/// lacks them; add them when rustup is there to do it.
fn ensure_lint_components() -> Result<(), Error> {
    let missing: Vec<&str> = [("fmt", "rustfmt"), ("clippy", "clippy")]
        .into_iter()
        .filter(|(subcommand, _)| {
            let works = cargo([*subcommand, "--version"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            !works
        })
        .map(|(_, component)| component)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    match setup::find_executable("rustup".as_ref(), &path) {
        Some(rustup) => {
            let mut add = std::process::Command::new(rustup);
            add.args(["component", "add"])
                .args(&missing)
                .stdin(Stdio::null());
            run_step("components", &mut add)
        }
        // Without rustup, the fmt or clippy step reports what is missing.
        None => Ok(()),
    }
}

fn test(lint: bool) -> Result<(), Error> {
    setup::run()?;
    if lint {
        ensure_lint_components()?;
    }
    let steps = test_steps(lint);
    for (name, args) in &steps {
        run_step(name, &mut cargo(*args))?;
    }
    let names: Vec<&str> = steps.iter().map(|(name, _)| *name).collect();
    println!("xtask: all steps passed: {}", names.join(", "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_steps_in_order() {
        let names = |lint| test_steps(lint).iter().map(|(n, _)| *n).collect::<Vec<_>>();
        assert_eq!(names(true), ["fmt", "clippy", "clippy-minimal", "test"]);
        assert_eq!(names(false), ["test"]);
        let joined: Vec<String> = test_steps(true)
            .iter()
            .map(|(_, args)| args.join(" "))
            .collect();
        assert_eq!(
            joined,
            [
                "fmt --all -- --check",
                "clippy --workspace --all-targets -- -D warnings",
                "clippy --package engine-core --no-default-features --all-targets -- -D warnings",
                "test --workspace",
            ]
        );
    }

    #[test]
    fn serve_forwards_arguments_to_the_server() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "run --package server --bin colloquy-server"),
            (
                &["--listen", "127.0.0.1:9000"],
                "run --package server --bin colloquy-server -- --listen 127.0.0.1:9000",
            ),
        ];
        for (forwarded, expected) in cases {
            let forwarded: Vec<String> = forwarded.iter().map(|s| s.to_string()).collect();
            assert_eq!(serve_args(&forwarded).join(" "), *expected);
        }
    }

    #[test]
    fn attack_runs_both_campaigns_with_the_options_as_environment() {
        let joined: Vec<String> = ATTACK_PACKAGES
            .iter()
            .map(|(_, package)| attack_args(package).join(" "))
            .collect();
        assert_eq!(
            joined,
            [
                "test --package engine-core --test attacks",
                "test --package replay-tool --test attacks",
            ]
        );
        let args = AttackArgs {
            trials: Some(3000),
            attack: Some("flip-sst".into()),
            seed: Some("0x2a".into()),
        };
        assert_eq!(
            args.env(),
            [
                ("COLLOQUY_ATTACK_TRIALS", "3000".to_string()),
                ("COLLOQUY_ATTACK", "flip-sst".to_string()),
                ("COLLOQUY_ATTACK_SEED", "0x2a".to_string()),
            ]
        );
        assert!(AttackArgs::default().env().is_empty());
        let columns = |line: &str| line.matches('|').count();
        let mut lines = ATTACK_TABLE_HEADER.lines();
        assert_eq!(
            columns(lines.next().unwrap()),
            columns(lines.next().unwrap())
        );
    }

    #[test]
    fn bench_optimises_the_workspace_crates_in_the_dev_profile() {
        let args = BenchArgs {
            name: "latency".into(),
            offline: true,
            bench_args: vec!["p99".into()],
        };
        let joined = bench_args(&args).join(" ");
        assert!(
            joined.ends_with("bench --profile dev --bench latency --offline -- p99"),
            "{joined}"
        );
        for package in BENCH_OPTIMISED_PACKAGES {
            for setting in BENCH_PACKAGE_SETTINGS {
                let config = format!("--config profile.dev.package.{package}.{setting}");
                assert!(joined.contains(&config), "{joined} lacks {config}");
            }
        }
        assert!(!joined.contains("release"), "{joined}");
        let plain = BenchArgs {
            name: "open".into(),
            offline: false,
            bench_args: vec![],
        };
        assert!(bench_args(&plain).join(" ").ends_with("--bench open"));
    }

    #[test]
    fn exit_codes() {
        let usage = Error::Usage(UsageError("bad".into()));
        let missing = Error::MissingSystemPackages("clang".into());
        let failed = Error::StepFailed {
            step: "clippy".into(),
            detail: "exit status: 101".into(),
        };
        assert_eq!(usage.exit_code(), 2);
        assert_eq!(missing.exit_code(), 2);
        assert_eq!(failed.exit_code(), 1);
        assert_eq!(failed.to_string(), "step `clippy` failed: exit status: 101");
    }
}
