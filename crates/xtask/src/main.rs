//! `cargo xtask`: Colloquy's project entry point.
//!
//! Dependency-free on purpose (std only), so it builds in seconds on a cold
//! machine before anything else: `setup` checks the system packages
//! RocksDB's build needs, `demo` runs the quickstart example and `test` runs
//! every check CI runs. See `cargo xtask --help`.

mod cli;
mod process;
mod setup;

use std::fmt;
use std::process::{ExitCode, Stdio};

use cli::{Task, UsageError};
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
        Task::Demo { example_args } => demo(&example_args),
        Task::Test { lint } => test(lint),
    }
}

/// The example `cargo xtask demo` runs, from the root `colloquy` package.
const DEMO_PACKAGE: &str = "colloquy";
const DEMO_EXAMPLE: &str = "quickstart";

fn demo_args(example_args: &[String]) -> Vec<String> {
    let mut args: Vec<String> = ["run", "--package", DEMO_PACKAGE, "--example", DEMO_EXAMPLE]
        .map(String::from)
        .to_vec();
    if !example_args.is_empty() {
        args.push("--".to_string());
        args.extend(example_args.iter().cloned());
    }
    args
}

fn demo(example_args: &[String]) -> Result<(), Error> {
    setup::run()?;
    run_step("demo", &mut cargo(demo_args(example_args)))
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
    fn demo_forwards_arguments_to_the_example() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "run --package colloquy --example quickstart"),
            (
                &["--data", "x"],
                "run --package colloquy --example quickstart -- --data x",
            ),
        ];
        for (forwarded, expected) in cases {
            let forwarded: Vec<String> = forwarded.iter().map(|s| s.to_string()).collect();
            assert_eq!(demo_args(&forwarded).join(" "), *expected);
        }
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
