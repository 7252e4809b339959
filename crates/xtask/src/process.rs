//! Running child processes as named steps, with inherited stdio.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::Error;

/// The workspace root: two levels above this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .nth(2)
        .unwrap_or(manifest_dir)
        .to_path_buf()
}

/// A cargo invocation run from the workspace root: the binary named by the
/// `CARGO` environment variable cargo sets for `cargo run` (else `cargo`),
/// inheriting the whole environment, `CARGO_TARGET_DIR` included.
pub fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    command.args(args).current_dir(workspace_root());
    command
}

/// Renders a command the way a user would type it: explicitly set
/// environment variables first, then the program and its arguments.
pub fn display_command(command: &Command) -> String {
    let envs = command
        .get_envs()
        .filter_map(|(key, value)| value.map(|value| format!("{}={}", quote(key), quote(value))));
    let program = std::iter::once(quote(command.get_program()));
    let args = command.get_args().map(quote);
    envs.chain(program)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes a word for display when a shell would split or expand it.
fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:+,@%".contains(c));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Runs `command` as the step `step`, streaming its output, and fails with
/// an error naming the step unless it exits successfully.
pub fn run_step(step: &str, command: &mut Command) -> Result<(), Error> {
    println!("xtask: [{step}] {}", display_command(command));
    let started = Instant::now();
    let status = command.status().map_err(|e| Error::StepFailed {
        step: step.to_string(),
        detail: format!("could not start `{}`: {e}", display_command(command)),
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    if status.success() {
        println!("xtask: [{step}] passed in {elapsed:.1} s");
        Ok(())
    } else {
        Err(Error::StepFailed {
            step: step.to_string(),
            detail: format!("{status} after {elapsed:.1} s"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let root = workspace_root();
        assert!(root.join("Cargo.toml").is_file(), "{}", root.display());
        assert!(root.join("crates").join("xtask").is_dir());
    }

    #[test]
    fn commands_display_as_typed() {
        let mut install = Command::new("apt-get");
        install
            .args(["install", "-y", "g++"])
            .env("DEBIAN_FRONTEND", "noninteractive");
        let cases: &[(Command, &str)] = &[
            (
                install,
                "DEBIAN_FRONTEND=noninteractive apt-get install -y g++",
            ),
            (
                {
                    let mut c = Command::new("cargo");
                    c.args(["run", "--", "two words", "it's", ""]);
                    c
                },
                r"cargo run -- 'two words' 'it'\''s' ''",
            ),
        ];
        for (command, expected) in cases {
            assert_eq!(display_command(command), *expected);
        }
    }

    #[test]
    fn cargo_runs_from_the_workspace_root() {
        let command = cargo(["fmt", "--all"]);
        assert_eq!(command.get_current_dir(), Some(workspace_root().as_path()));
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(args, ["fmt", "--all"]);
    }

    #[test]
    fn a_failing_step_is_named_in_the_error() {
        let mut command = Command::new("/nonexistent/xtask-test-program");
        match run_step("lint", &mut command) {
            Err(Error::StepFailed { step, detail }) => {
                assert_eq!(step, "lint");
                assert!(detail.contains("could not start"), "{detail}");
            }
            other => panic!("expected a failed step, got {other:?}"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_step_exiting_non_zero_fails_with_its_status() {
        let mut command = Command::new("sh");
        command.args(["-c", "exit 3"]);
        match run_step("fmt", &mut command) {
            Err(Error::StepFailed { step, detail }) => {
                assert_eq!(step, "fmt");
                assert!(detail.contains('3'), "{detail}");
            }
            other => panic!("expected a failed step, got {other:?}"),
        }
        assert!(run_step("ok", Command::new("sh").args(["-c", "exit 0"])).is_ok());
    }
}
