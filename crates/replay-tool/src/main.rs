//! `replay-tool`: the command line of Colloquy's auditing tool — verify,
//! search, summarise and export a store's event log, rebuild its read
//! models, and show a conversation as it was at any point. The work is
//! done by the `replay_tool` library; `replay-tool --help` lists the
//! subcommands and exit codes.

use std::process::ExitCode;

fn main() -> ExitCode {
    replay_tool::main_with_args(std::env::args_os())
}
