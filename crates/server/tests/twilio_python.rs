//! The official Twilio helper library for Python (`twilio` from PyPI)
//! against the server on loopback, through the seed's flows
//! (`tests/python/twilio_seed_flows.py`): only the Conversations base URL
//! changes.
//!
//! The library lives in a virtual environment outside the clone, made on
//! first run and reused: `$COLLOQUY_TWILIO_VENV`, else
//! `~/.cache/colloquy/twilio-venv`. Without python3, without its `venv`
//! module, or without access to PyPI the test prints `skipped: …` and
//! passes; once the library is installed, any mismatch fails it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::TestServer;

/// Overrides where the virtual environment lives.
const VENV_DIR_ENV: &str = "COLLOQUY_TWILIO_VENV";
/// The library version range the script is written against (its 9.x API:
/// `client.conversations.base_url`, `messages.stream(order=…)`).
const TWILIO_REQUIREMENT: &str = "twilio>=9,<10";
/// The deadline for making the environment and installing the library
/// from PyPI (a cold install downloads a few MB).
const SETUP_TIMEOUT: Duration = Duration::from_secs(300);
/// pip's socket timeout, in seconds: without PyPI access the test skips
/// in seconds rather than after pip's default minute of retries.
const PIP_TIMEOUT_SECONDS: &str = "15";
/// pip's retries per connection (its default is 5).
const PIP_RETRIES: &str = "1";
/// The deadline for the script's whole run (a few dozen requests).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a running child is polled for its exit.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A finished child: whether it succeeded, and its stdout and stderr.
struct Ran {
    success: bool,
    output: String,
}

/// Runs `command` to completion within `deadline` (killed after it).
/// `Err` when it cannot start or overruns.
fn run(command: &mut Command, deadline: Duration) -> Result<Ran, String> {
    let logs = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out_path = logs.path().join("out");
    let err_path = logs.path().join("err");
    let out = std::fs::File::create(&out_path).map_err(|e| e.to_string())?;
    let err = std::fs::File::create(&err_path).map_err(|e| e.to_string())?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{command:?} did not start: {e}"))?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{command:?} ran over {deadline:?}"));
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    Ok(Ran {
        success: status.success(),
        output: format!("{}{}", read(&out_path), read(&err_path)),
    })
}

fn venv_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(VENV_DIR_ENV) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".cache").join("colloquy").join("twilio-venv")
}

/// The virtual environment's python with `twilio` importable, made and
/// installed if needed; `Err(reason)` to skip.
fn twilio_python() -> Result<PathBuf, String> {
    match run(Command::new("python3").arg("--version"), SETUP_TIMEOUT) {
        Ok(r) if r.success => {}
        _ => return Err("python3 is not installed".to_owned()),
    }
    let venv = venv_dir();
    let python = venv.join("bin").join("python");
    let has_twilio = |python: &Path| {
        run(
            Command::new(python).args(["-c", "import twilio"]),
            SETUP_TIMEOUT,
        )
        .is_ok_and(|r| r.success)
    };
    if python.exists() && has_twilio(&python) {
        return Ok(python);
    }
    if let Some(parent) = venv.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("creating {parent:?}: {e}"))?;
    }
    let made = run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        SETUP_TIMEOUT,
    )?;
    if !made.success {
        return Err(format!(
            "python3 could not make a virtual environment:\n{}",
            made.output
        ));
    }
    let pip = run(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--timeout",
            PIP_TIMEOUT_SECONDS,
            "--retries",
            PIP_RETRIES,
            TWILIO_REQUIREMENT,
        ]),
        SETUP_TIMEOUT,
    )?;
    if !pip.success || !has_twilio(&python) {
        return Err(format!(
            "could not install {TWILIO_REQUIREMENT} from PyPI:\n{}",
            pip.output
        ));
    }
    Ok(python)
}

#[test]
fn the_twilio_python_library_runs_the_seed_flows() {
    let python = match twilio_python() {
        Ok(p) => p,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    let s = TestServer::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("python")
        .join("twilio_seed_flows.py");
    let ran = run(
        Command::new(&python)
            .arg(&script)
            .env("COLLOQUY_BASE", &s.base)
            .env("COLLOQUY_ACCOUNT_SID", &s.account_sid)
            .env("COLLOQUY_AUTH_TOKEN", &s.auth_token)
            .env("COLLOQUY_SERVICE_SID", &s.service),
        SCRIPT_TIMEOUT,
    )
    .expect("the script runs within its deadline");
    println!("{}", ran.output);
    assert!(ran.success, "the seed flows failed:\n{}", ran.output);
    assert!(
        ran.output.contains("all seed flows passed"),
        "{}",
        ran.output
    );
}
