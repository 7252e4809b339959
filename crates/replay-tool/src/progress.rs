//! Progress bars for long walks: drawn on stderr only when it is a
//! terminal, never when piped, and never with `--quiet`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// How often the bar redraws, per second.
pub const REDRAWS_PER_SECOND: u8 = 10;
/// How often the spinner of a bar without a known length ticks.
pub const SPINNER_TICK: Duration = Duration::from_millis(100);

/// A progress bar over records, or nothing.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar for `total` records labelled `what`, if stderr is a terminal
    /// and `quiet` is off; otherwise a no-op.
    pub fn new(quiet: bool, what: &str, total: u64) -> Progress {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(
            Some(total),
            ProgressDrawTarget::stderr_with_hz(REDRAWS_PER_SECOND),
        );
        let style = ProgressStyle::with_template(
            "{msg:>9} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} records \
             ({rate}, ETA {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} records/s", state.per_sec());
            },
        );
        bar.set_style(style);
        bar.set_message(what.to_string());
        bar.enable_steady_tick(SPINNER_TICK);
        Progress { bar: Some(bar) }
    }

    /// Whether a bar is drawn.
    pub fn is_visible(&self) -> bool {
        self.bar.is_some()
    }

    /// Sets the records done so far.
    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    /// Sets the total, once known.
    pub fn set_total(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
