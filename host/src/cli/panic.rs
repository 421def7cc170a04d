//! What a panic (a bug in flow) prints: a short message and where to report
//! it, or also a backtrace with `--verbose`.

use std::backtrace::Backtrace;
use std::cell::Cell;

thread_local! {
    /// Set while a call whose panics are caught and reported runs.
    static EXPECTED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, whose panics the caller catches and reports as errors (sled
/// panics on some damaged files): the hook stays silent meanwhile.
pub fn expected<T>(f: impl FnOnce() -> T) -> T {
    EXPECTED.with(|flag| flag.set(true));
    let result = f();
    EXPECTED.with(|flag| flag.set(false));
    result
}

/// Replaces the default panic message.
pub fn install(verbose: bool) {
    std::panic::set_hook(Box::new(move |info| {
        if EXPECTED.with(Cell::get) {
            return;
        }
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
        super::out::eprint(format_args!(
            "error: flow stopped on an internal error{place}: {message}\n\
             This is a bug in flow. What the run database holds is kept, and \
             `flow resume RUN_ID` continues an interrupted run."
        ));
        if verbose {
            super::out::eprint(format_args!("backtrace:\n{}", Backtrace::force_capture()));
        } else {
            super::out::eprint(
                "Please report it with the output of the same command run with --verbose.",
            );
        }
    }));
}
