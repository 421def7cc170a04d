//! What an attempt logged and printed: the lines kept with its record, and
//! the host's log records of them.

use super::node::Shared;
use crate::runtime::{AttemptReport, LogLevel};
use crate::store::{GuestLine, LineKind};

/// The line Rust's panic handler adds after a panic's message. Backtraces
/// cannot be turned on inside the sandbox, so the advice is dropped.
const RUST_BACKTRACE_NOTE: &str = "note: run with `RUST_BACKTRACE=1`";

/// What an attempt logged and printed, as lines: its `log` records in
/// order, then stdout, then stderr, each followed by a note of what was
/// dropped over the limits.
pub(super) fn guest_lines(report: &mut AttemptReport) -> Vec<GuestLine> {
    let line = |kind, text: String| GuestLine { kind, text };
    let mut lines: Vec<GuestLine> = std::mem::take(&mut report.logs)
        .into_iter()
        .map(|record| {
            let kind = match record.level {
                LogLevel::Trace => LineKind::Trace,
                LogLevel::Debug => LineKind::Debug,
                LogLevel::Info => LineKind::Info,
                LogLevel::Warn => LineKind::Warn,
                LogLevel::Error => LineKind::Error,
            };
            line(kind, record.message)
        })
        .collect();
    if report.logs_dropped > 0 {
        lines.push(line(
            LineKind::Warn,
            format!(
                "{} more log records dropped: the plugin logged more than the limit",
                report.logs_dropped
            ),
        ));
    }
    lines.extend(
        report
            .stdout
            .lines()
            .map(|l| line(LineKind::Stdout, l.into())),
    );
    lines.extend(
        report
            .stderr
            .lines()
            .filter(|l| !l.starts_with(RUST_BACKTRACE_NOTE))
            .map(|l| line(LineKind::Stderr, l.into())),
    );
    if report.output_dropped > 0 {
        lines.push(line(
            LineKind::Warn,
            format!(
                "{} bytes of stdout and stderr dropped: the plugin printed more than the limit",
                report.output_dropped
            ),
        ));
    }
    lines
}

/// Writes what the guest logged and printed to the host's log (target
/// `flow::plugin`), one record per line of text, under its node.
pub(super) fn log_lines(shared: &Shared, node: &str, attempt: u32, lines: &[GuestLine]) {
    let (workflow, run) = (&shared.workflow.id, &shared.run_id);
    for (kind, text) in lines
        .iter()
        .flat_map(|line| line.text.lines().map(move |text| (line.kind, text)))
    {
        macro_rules! guest {
            ($level:ident $(, $field:ident = $value:expr)?) => {
                tracing::$level!(target: "flow::plugin", workflow = %workflow, run = %run, node = %node, attempt, $($field = $value,)? "{text}")
            };
        }
        match kind {
            LineKind::Trace => guest!(trace),
            LineKind::Debug => guest!(debug),
            LineKind::Info => guest!(info),
            LineKind::Warn => guest!(warn),
            LineKind::Error => guest!(error),
            LineKind::Stdout => guest!(info, stream = "stdout"),
            LineKind::Stderr => guest!(warn, stream = "stderr"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rust_backtrace_advice_is_dropped() {
        let mut report = AttemptReport::new(Ok("{}".into()));
        report.stderr = "thread '<unnamed>' panicked at src/lib.rs:1:1:\nboom\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n".into();
        let lines: Vec<String> = guest_lines(&mut report)
            .into_iter()
            .map(|line| line.text)
            .collect();
        assert_eq!(
            lines,
            ["thread '<unnamed>' panicked at src/lib.rs:1:1:", "boom"]
        );
    }
}
