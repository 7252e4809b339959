//! Command-line parsing: a pure function from arguments to a [`Task`].

use std::fmt;

/// What `cargo xtask` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// Print the help text.
    Help,
    /// Check (and as root, install) the system packages RocksDB's build needs.
    Setup,
    /// Run setup, then the server (the main job) with these arguments.
    Serve {
        /// Forwarded verbatim to `colloquy-server`, after cargo's `--`.
        server_args: Vec<String>,
    },
    /// Run setup, then the whole test suite.
    Test {
        /// Whether to run `cargo fmt --check` and clippy before the tests.
        lint: bool,
    },
    /// Run setup, then the attack campaign (the `attacks` tests of
    /// engine-core and replay-tool) with more trials.
    Attack(AttackArgs),
    /// Run one bench of the root package with the workspace's crates
    /// optimised in the dev profile (no release build of RocksDB).
    Bench(BenchArgs),
}

/// The options of `cargo xtask bench`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchArgs {
    /// The bench target, e.g. `engine_write` (a file of `benches/`).
    pub name: String,
    /// Whether cargo runs with `--offline`.
    pub offline: bool,
    /// Forwarded verbatim to the bench binary, after cargo's `--` (e.g. a
    /// criterion filter).
    pub bench_args: Vec<String>,
}

/// The options of `cargo xtask attack`; each becomes an environment
/// variable of the attack tests (`None` leaves the tests' default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttackArgs {
    /// Trials per attack (`COLLOQUY_ATTACK_TRIALS`).
    pub trials: Option<u64>,
    /// Only this attack (`COLLOQUY_ATTACK`); the tests reject unknown names.
    pub attack: Option<String>,
    /// The campaign seed (`COLLOQUY_ATTACK_SEED`, decimal or `0x` hex).
    pub seed: Option<String>,
}

impl AttackArgs {
    /// The environment the attack tests read.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = Vec::new();
        if let Some(trials) = self.trials {
            env.push(("COLLOQUY_ATTACK_TRIALS", trials.to_string()));
        }
        if let Some(attack) = &self.attack {
            env.push(("COLLOQUY_ATTACK", attack.clone()));
        }
        if let Some(seed) = &self.seed {
            env.push(("COLLOQUY_ATTACK_SEED", seed.clone()));
        }
        env
    }
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
                       compiler, clang and libclang) and the browser-demo
                       test's (chromium, chromedriver). If one is missing: as
                       root, install them with apt-get; otherwise print the
                       exact command to run and exit with status 2 (only a
                       warning when just the browser is missing: that test
                       skips).
    serve [ARGS...]    Run setup, then the server, the main job
                       (cargo run -p server --bin colloquy-server): the
                       Twilio Conversations REST API and WebSocket on
                       127.0.0.1:8080, data in ./data. ARGS, after an
                       optional leading `--`, go to the server (--help).
    test [--no-lint]   Run setup, then all tests, in order:
                         fmt     cargo fmt --all -- --check
                         clippy  cargo clippy --workspace --all-targets -- -D warnings
                         clippy-minimal
                                 the same for engine-core --no-default-features
                         test    cargo test --workspace
                       --no-lint skips fmt and clippy.
    attack [--trials N] [--attack NAME] [--seed S]
                       Run setup, then the attack campaign (crashes, torn
                       and bit-flipped files, a full disk) against the
                       engine and the auditor:
                         cargo test -p engine-core --test attacks
                         cargo test -p replay-tool --test attacks
                       with N trials per attack (default: the tests' own,
                       a few dozen), only the attack NAME (e.g. flip-wal),
                       and campaign seed S (decimal or 0x hex; a failing
                       trial prints the seed that reproduces it). Prints
                       one table row per attack and checker at the end.
                       See docs/RELIABILITY.md.
    bench NAME [--offline] [-- ARGS...]
                       Run the bench NAME of benches/ (engine_write,
                       latency, memory, open, fanout, verify, log_append,
                       reactor, pre_event_hooks, server_ws)
                       optimised without a release build: the dev profile
                       with Colloquy's own crates at opt-level 3, one
                       codegen unit, no debug assertions or overflow
                       checks, and incremental builds off, so RocksDB's
                       C++ (already optimised by the dev profile) is not
                       rebuilt:
                         CARGO_PROFILE_DEV_INCREMENTAL=false cargo
                           --config profile.dev.package.<crate>.opt-level=3
                           (and codegen-units, debug-assertions,
                           overflow-checks, for each workspace crate)
                           bench --profile dev --bench NAME [-- ARGS]
                       --offline is passed to cargo; ARGS go to the bench
                       (e.g. a criterion filter). Each bench prints a
                       summary table (figure, same-run baseline, ratio,
                       target, met) last. See docs/BENCHMARKS.md.
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
        "serve" => {
            let forwarded = match rest {
                [separator, tail @ ..] if separator == "--" => tail,
                all => all,
            };
            Ok(Task::Serve {
                server_args: forwarded.to_vec(),
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
        "attack" => parse_attack(rest),
        "bench" => parse_bench(rest),
        other => Err(UsageError(format!(
            "unknown command `{other}` (expected setup, serve, test, attack, bench or help)"
        ))),
    }
}

/// Parses `bench NAME [--offline] [-- ARGS...]`.
fn parse_bench(rest: &[String]) -> Result<Task, UsageError> {
    let (ours, forwarded) = match rest.iter().position(|w| w == "--") {
        Some(i) => (&rest[..i], rest[i + 1..].to_vec()),
        None => (rest, Vec::new()),
    };
    let mut name = None;
    let mut offline = false;
    for word in ours {
        match word.as_str() {
            flag if is_help_flag(flag) => return Ok(Task::Help),
            "--offline" => offline = true,
            flag if flag.starts_with('-') => {
                return Err(UsageError(format!(
                    "unknown option `{flag}` for `bench` (expected --offline, or `--` before the bench's own)"
                )))
            }
            bench if name.is_none() => name = Some(bench.to_string()),
            extra => {
                return Err(UsageError(format!(
                    "`bench` takes one bench name, got a second: `{extra}`"
                )))
            }
        }
    }
    let name = name.ok_or_else(|| {
        UsageError("`bench` needs a bench name, e.g. `bench engine_write`".into())
    })?;
    Ok(Task::Bench(BenchArgs {
        name,
        offline,
        bench_args: forwarded,
    }))
}

/// Parses `attack`'s options: `--trials N`, `--attack NAME` and
/// `--seed S`, each also as `--option=value`.
fn parse_attack(rest: &[String]) -> Result<Task, UsageError> {
    let mut args = AttackArgs::default();
    let mut words = rest.iter();
    while let Some(word) = words.next() {
        if is_help_flag(word) {
            return Ok(Task::Help);
        }
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_string())),
            None => (word.as_str(), None),
        };
        if !matches!(flag, "--trials" | "--attack" | "--seed") {
            return Err(UsageError(format!(
                "unknown option `{word}` for `attack` (expected --trials, --attack or --seed)"
            )));
        }
        let value = match inline.or_else(|| words.next().cloned()) {
            Some(value) if !value.is_empty() => value,
            _ => return Err(UsageError(format!("`{flag}` needs a value"))),
        };
        match flag {
            "--trials" => {
                let trials = value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        UsageError(format!("`--trials {value}` is not a positive whole number"))
                    })?;
                args.trials = Some(trials);
            }
            "--attack" => args.attack = Some(value),
            _ => {
                let valid = match value.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16).is_ok(),
                    None => value.parse::<u64>().is_ok(),
                };
                if !valid {
                    return Err(UsageError(format!(
                        "`--seed {value}` is not a 64-bit number (decimal or 0x hex)"
                    )));
                }
                args.seed = Some(value);
            }
        }
    }
    Ok(Task::Attack(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Task {
        Task::Serve {
            server_args: args.iter().map(|s| s.to_string()).collect(),
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
            (&["serve"], serve(&[])),
            (&["serve", "--"], serve(&[])),
            (&["serve", "a", "--b"], serve(&["a", "--b"])),
            (&["serve", "--", "--help"], serve(&["--help"])),
            (&["serve", "--help"], serve(&["--help"])),
            (&["serve", "--", "--", "x"], serve(&["--", "x"])),
            (&["test"], Task::Test { lint: true }),
            (&["test", "--no-lint"], Task::Test { lint: false }),
            (
                &["test", "--no-lint", "--no-lint"],
                Task::Test { lint: false },
            ),
            (&["test", "-h"], Task::Help),
            (&["attack"], Task::Attack(AttackArgs::default())),
            (&["attack", "--help"], Task::Help),
            (
                &[
                    "attack", "--trials", "2000", "--attack", "flip-wal", "--seed", "0x2a",
                ],
                Task::Attack(AttackArgs {
                    trials: Some(2000),
                    attack: Some("flip-wal".into()),
                    seed: Some("0x2a".into()),
                }),
            ),
            (
                &["bench", "latency"],
                Task::Bench(BenchArgs {
                    name: "latency".into(),
                    offline: false,
                    bench_args: vec![],
                }),
            ),
            (
                &["bench", "--offline", "engine_write", "--", "Sync", "--help"],
                Task::Bench(BenchArgs {
                    name: "engine_write".into(),
                    offline: true,
                    bench_args: vec!["Sync".into(), "--help".into()],
                }),
            ),
            (&["bench", "open", "--help"], Task::Help),
            (
                &["attack", "--trials=5", "--seed=7"],
                Task::Attack(AttackArgs {
                    trials: Some(5),
                    attack: None,
                    seed: Some("7".into()),
                }),
            ),
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
            (&["attack", "--trails", "5"], "`--trails`"),
            (&["attack", "--trials"], "`--trials`"),
            (&["attack", "--trials", "0"], "`--trials 0`"),
            (&["attack", "--trials", "many"], "`--trials many`"),
            (&["attack", "--seed", "0xzz"], "`--seed 0xzz`"),
            (&["attack", "--attack="], "`--attack`"),
            (&["bench"], "bench name"),
            (&["bench", "--release", "open"], "`--release`"),
            (&["bench", "open", "latency"], "`latency`"),
        ];
        for (args, needle) in cases {
            let err = parse(args.iter().copied()).expect_err(&format!("{args:?} should fail"));
            assert!(err.0.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn help_lists_every_command() {
        for command in [
            "setup",
            "serve",
            "test",
            "--no-lint",
            "attack",
            "--trials",
            "--seed",
            "bench",
            "--offline",
            "help",
        ] {
            assert!(HELP.contains(command), "help does not mention {command}");
        }
    }
}
