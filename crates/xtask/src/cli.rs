//! Command-line parsing: a pure function from arguments to a [`Task`].

use std::fmt;

/// What `cargo xtask` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// Print the help text.
    Help,
    /// Check (and as root, install) the system packages RocksDB's build needs.
    Setup,
    /// Run setup, then the quickstart example with these arguments.
    Demo {
        /// Forwarded verbatim to the example, after cargo's `--`.
        example_args: Vec<String>,
    },
    /// Run setup, then the whole test suite.
    Test {
        /// Whether to run `cargo fmt --check` and clippy before the tests.
        lint: bool,
    },
}

/// Arguments that do not form a valid invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The help text `cargo xtask --help` prints.
pub const HELP: &str = "\
cargo xtask: Colloquy's project entry point

USAGE:
    cargo xtask <COMMAND> [OPTIONS]

COMMANDS:
    setup              Check the system packages RocksDB's build needs (a C++
                       compiler, clang and libclang). If one is missing: as
                       root, install them with apt-get; otherwise print the
                       exact command to run and exit with status 2.
    demo [ARGS...]     Run setup, then the quickstart example
                       (cargo run --example quickstart). ARGS, after an
                       optional leading `--`, are passed to the example.
    test [--no-lint]   Run setup, then all tests, in order:
                         fmt     cargo fmt --all -- --check
                         clippy  cargo clippy --workspace --all-targets -- -D warnings
                         clippy-minimal
                                 the same for engine-core --no-default-features
                         test    cargo test --workspace
                       --no-lint skips fmt and clippy.
    help               Print this help (also -h, --help).

Cargo runs with the CARGO environment variable cargo sets (else `cargo`)
and inherits the environment, CARGO_TARGET_DIR included.

EXIT STATUS:
    0  success
    1  a step failed (its name is printed)
    2  usage error, or system packages missing and not running as root
";

fn is_help_flag(arg: &str) -> bool {
    matches!(arg, "-h" | "--help" | "help")
}

/// Parses the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Task, UsageError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let args: Vec<String> = args.into_iter().map(Into::into).collect();
    let Some((command, rest)) = args.split_first() else {
        return Ok(Task::Help);
    };
    match command.as_str() {
        c if is_help_flag(c) => Ok(Task::Help),
        "setup" => match rest {
            [] => Ok(Task::Setup),
            [flag] if is_help_flag(flag) => Ok(Task::Help),
            [extra, ..] => Err(UsageError(format!(
                "`setup` takes no arguments, got `{extra}`"
            ))),
        },
        "demo" => {
            let forwarded = match rest {
                [separator, tail @ ..] if separator == "--" => tail,
                all => all,
            };
            Ok(Task::Demo {
                example_args: forwarded.to_vec(),
            })
        }
        "test" => {
            let mut lint = true;
            for arg in rest {
                match arg.as_str() {
                    "--no-lint" => lint = false,
                    flag if is_help_flag(flag) => return Ok(Task::Help),
                    other => {
                        return Err(UsageError(format!(
                            "unknown option `{other}` for `test` (expected `--no-lint`)"
                        )))
                    }
                }
            }
            Ok(Task::Test { lint })
        }
        other => Err(UsageError(format!(
            "unknown command `{other}` (expected setup, demo, test or help)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo(args: &[&str]) -> Task {
        Task::Demo {
            example_args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn valid_invocations() {
        let cases: &[(&[&str], Task)] = &[
            (&[], Task::Help),
            (&["help"], Task::Help),
            (&["-h"], Task::Help),
            (&["--help"], Task::Help),
            (&["--help", "test"], Task::Help),
            (&["setup"], Task::Setup),
            (&["setup", "--help"], Task::Help),
            (&["demo"], demo(&[])),
            (&["demo", "--"], demo(&[])),
            (&["demo", "a", "--b"], demo(&["a", "--b"])),
            (&["demo", "--", "--help"], demo(&["--help"])),
            (&["demo", "--help"], demo(&["--help"])),
            (&["demo", "--", "--", "x"], demo(&["--", "x"])),
            (&["test"], Task::Test { lint: true }),
            (&["test", "--no-lint"], Task::Test { lint: false }),
            (
                &["test", "--no-lint", "--no-lint"],
                Task::Test { lint: false },
            ),
            (&["test", "-h"], Task::Help),
        ];
        for (args, expected) in cases {
            assert_eq!(
                parse(args.iter().copied()).as_ref(),
                Ok(expected),
                "{args:?}"
            );
        }
    }

    #[test]
    fn invalid_invocations_name_the_offending_argument() {
        let cases: &[(&[&str], &str)] = &[
            (&["build"], "`build`"),
            (&["--no-lint"], "`--no-lint`"),
            (&["Setup"], "`Setup`"),
            (&["setup", "--yes"], "`--yes`"),
            (&["test", "--lint"], "`--lint`"),
            (&["test", "fmt"], "`fmt`"),
            (&["test", "--no-lint", "extra"], "`extra`"),
        ];
        for (args, needle) in cases {
            let err = parse(args.iter().copied()).expect_err(&format!("{args:?} should fail"));
            assert!(err.0.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn help_lists_every_command() {
        for command in ["setup", "demo", "test", "--no-lint", "help"] {
            assert!(HELP.contains(command), "help does not mention {command}");
        }
    }
}
