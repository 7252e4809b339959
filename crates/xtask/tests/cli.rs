//! The built `xtask` binary: help and usage errors, with their exit codes.
//! (Setup, serve and test run real toolchains and package managers, so they
//! are exercised through their unit-tested parts instead.)

use std::process::{Command, Output, Stdio};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the xtask binary runs")
}

#[test]
fn help_lists_the_commands_and_exits_zero() {
    for args in [
        &[][..],
        &["--help"],
        &["-h"],
        &["help"],
        &["test", "--help"],
    ] {
        let output = xtask(args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        for command in ["setup", "serve", "test", "--no-lint", "bench"] {
            assert!(stdout.contains(command), "{args:?}: help lacks {command}");
        }
    }
}

#[test]
fn usage_errors_exit_two_and_name_the_argument() {
    let cases: &[(&[&str], &str)] = &[
        (&["frobnicate"], "`frobnicate`"),
        (&["test", "--lint"], "`--lint`"),
        (&["setup", "now"], "`now`"),
        (&["bench"], "bench name"),
        (&["bench", "--release", "open"], "`--release`"),
    ];
    for (args, needle) in cases {
        let output = xtask(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(stderr.contains("cargo xtask --help"), "{args:?}: {stderr}");
    }
}
