//! Errors in workflow files, rendered the way compilers render them.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use codespan_reporting::diagnostic::{Diagnostic as Report, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term;

use super::Source;

/// One problem in a workflow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong.
    pub message: String,
    /// Where, as a byte range into the file, when known.
    pub span: Option<Range<usize>>,
    /// A short note at the span.
    pub label: Option<String>,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A problem at `span`.
    pub fn new(message: impl Into<String>, span: Option<Range<usize>>) -> Self {
        Self {
            message: message.into(),
            span,
            label: None,
            help: None,
        }
    }

    /// Adds a note shown under the span.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds advice on how to fix it.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Why a workflow file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("cannot read workflow file {}: {error}", path.display())]
    Read {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file was read but has problems.
    #[error("{}", render(file, diagnostics))]
    Invalid {
        /// The file's text.
        file: Arc<Source>,
        /// Every problem found, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

impl SpecError {
    pub(crate) fn invalid(source: &Arc<Source>, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
        SpecError::Invalid {
            file: source.clone(),
            diagnostics,
        }
    }

    /// The error as JSON: the file, and each problem with its message,
    /// line and column (from 1, when known), label and help.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            SpecError::Read { path, .. } => serde_json::json!({
                "file": path.display().to_string(),
                "errors": [{ "message": self.to_string() }],
            }),
            SpecError::Invalid { file, diagnostics } => {
                let errors: Vec<serde_json::Value> = diagnostics
                    .iter()
                    .map(|diagnostic| {
                        let (line, column) = diagnostic
                            .span
                            .as_ref()
                            .map(|span| line_column(&file.text, span.start))
                            .unzip();
                        serde_json::json!({
                            "message": diagnostic.message,
                            "line": line,
                            "column": column,
                            "label": diagnostic.label,
                            "help": diagnostic.help,
                        })
                    })
                    .collect();
                serde_json::json!({ "file": file.path.display().to_string(), "errors": errors })
            }
        }
    }

    /// The problems found (empty for [`SpecError::Read`]).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            SpecError::Read { .. } => &[],
            SpecError::Invalid { diagnostics, .. } => diagnostics,
        }
    }
}

/// Renders diagnostics as plain text with the lines they point at.
fn render(source: &Source, diagnostics: &[Diagnostic]) -> String {
    let name = source.path.display().to_string();
    let file = SimpleFile::new(name.as_str(), source.text.as_str());
    let config = term::Config {
        chars: term::Chars::ascii(),
        ..term::Config::default()
    };
    let mut out = String::new();
    for diagnostic in diagnostics {
        let mut report = Report::error().with_message(&diagnostic.message);
        match &diagnostic.span {
            Some(span) => {
                let span = clamp(span.clone(), source.text.len());
                let label = Label::primary((), span);
                let label = match &diagnostic.label {
                    Some(text) => label.with_message(text),
                    None => label,
                };
                report = report.with_labels(vec![label]);
            }
            None => {
                report = report.with_notes(vec![format!("in {name}")]);
            }
        }
        if let Some(help) = &diagnostic.help {
            report = report.with_notes(vec![format!("help: {help}")]);
        }
        let mut buffer = String::new();
        if term::emit_to_string(&mut buffer, &config, &file, &report).is_err() {
            buffer = format!("error: {}\n  --> {name}\n", diagnostic.message);
        }
        out.push_str(&buffer);
    }
    let count = diagnostics.len();
    let plural = if count == 1 { "" } else { "s" };
    out.push_str(&format!(
        "{name}: {count} error{plural}; the workflow was not run"
    ));
    out
}

/// Line and column, from 1, of byte `offset` of `text`; the column counts
/// characters.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

fn clamp(span: Range<usize>, len: usize) -> Range<usize> {
    let start = span.start.min(len);
    start..span.end.clamp(start, len)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_count_from_one() {
        let text = "ab\ncé d\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        // After the two-byte é: the third character of the line.
        assert_eq!(line_column(text, 6), (2, 3));
        assert_eq!(line_column(text, 99), (3, 1));
    }
}
