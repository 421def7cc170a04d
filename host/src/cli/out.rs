//! What commands print on stdout: buffered, and a reader that goes away
//! (`flow list | head -1`) ends the command quietly, as it does for other
//! Unix tools.

use std::io::{BufWriter, Stdout, Write};

/// Buffered standard output. Write with `writeln!(out, ...)?` and end with
/// `out.flush()?`; a closed pipe then comes back as an error that `main`
/// turns into a quiet exit.
pub fn stdout() -> BufWriter<Stdout> {
    BufWriter::with_capacity(64 << 10, std::io::stdout())
}

/// Whether an error is a closed pipe on stdout, met by a write or by
/// serde_json writing a document (whose error does not give the I/O error
/// as its source, only its kind).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let kind = match cause.downcast_ref::<std::io::Error>() {
            Some(error) => Some(error.kind()),
            None => cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind),
        };
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes `text` to stderr; errors (a closed stderr) are ignored, since
/// there is nowhere left to report them.
pub fn eprint(text: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Text from a plugin (a log line, an error), safe for a terminal: control
/// characters other than newline and tab, which could move the cursor or
/// change colours, are shown escaped (`\u{1b}`).
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| match c {
            c if unsafe_char(c) => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_told_apart_from_other_errors() {
        let closed = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&anyhow::Error::new(closed())));
        assert!(is_broken_pipe(
            &anyhow::Error::new(closed()).context("writing")
        ));
        let by_serde = serde_json::Error::io(closed());
        assert!(is_broken_pipe(&anyhow::Error::new(by_serde)));
        let other = serde_json::Error::io(std::io::Error::other("disk full"));
        assert!(!is_broken_pipe(&anyhow::Error::new(other)));
        assert!(!is_broken_pipe(&anyhow::anyhow!("broken pipe")));
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(printable("\u{1b}[31mred"), "\\u{1b}[31mred");
    }
}
