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

fn clamp(span: Range<usize>, len: usize) -> Range<usize> {
    let start = span.start.min(len);
    start..span.end.clamp(start, len)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
