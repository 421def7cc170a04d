//! What a panic (a bug in flow) prints: a short message and where to report
//! it, or also a backtrace with `--verbose`.

use std::backtrace::Backtrace;

/// Replaces the default panic message.
pub fn install(verbose: bool) {
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: flow stopped on an internal error{place}: {message}\n\
             This is a bug in flow. What the run database holds is kept, and \
             `flow resume RUN_ID` continues an interrupted run."
        );
        if verbose {
            eprintln!("backtrace:\n{}", Backtrace::force_capture());
        } else {
            eprintln!("Please report it with the output of the same command run with --verbose.");
        }
    }));
}
