//! Errors in workflow files, rendered the way compilers render them.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use codespan_reporting::diagnostic::{Diagnostic as Report, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term;

use super::{Origin, Source};

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
        /// The plugins search path the file names, when it could be read.
        plugins: Vec<PathBuf>,
        /// Where each node names its action, when it could be read: with
        /// [`SpecError::check_actions`], the actions no plugin provides are
        /// reported with the other problems.
        uses: Vec<ActionUse>,
    },
}

/// Where a node names its action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionUse {
    /// The node.
    pub node: String,
    /// The action it names.
    pub action: String,
    /// Where, in the file.
    pub span: Range<usize>,
}

impl SpecError {
    pub(crate) fn invalid(source: &Arc<Source>, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
        SpecError::Invalid {
            file: source.clone(),
            diagnostics,
            plugins: Vec::new(),
            uses: Vec::new(),
        }
    }

    pub(crate) fn with_uses(mut self, search_path: Vec<PathBuf>, actions: Vec<ActionUse>) -> Self {
        if let SpecError::Invalid { plugins, uses, .. } = &mut self {
            *plugins = search_path;
            *uses = actions;
        }
        self
    }

    /// The plugins search path of the file, when it could be read.
    pub fn plugins(&self) -> &[PathBuf] {
        match self {
            SpecError::Invalid { plugins, .. } => plugins,
            SpecError::Read { .. } => &[],
        }
    }

    /// The actions the file's nodes name, when it could be read.
    pub fn actions(&self) -> impl Iterator<Item = &str> {
        let uses: &[ActionUse] = match self {
            SpecError::Invalid { uses, .. } => uses,
            SpecError::Read { .. } => &[],
        };
        uses.iter().map(|use_| use_.action.as_str())
    }

    /// Adds a problem for each action that none of `available` (plugin
    /// names) provides, so that one report holds every problem.
    pub fn check_actions<'a>(&mut self, available: impl IntoIterator<Item = &'a str> + Clone) {
        if let SpecError::Invalid {
            diagnostics, uses, ..
        } = self
        {
            diagnostics.extend(super::validate::unknown_actions(uses, available));
            diagnostics.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
            uses.clear();
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
            SpecError::Invalid {
                file, diagnostics, ..
            } => {
                let errors: Vec<serde_json::Value> = diagnostics
                    .iter()
                    .map(|diagnostic| {
                        // A built workflow has no lines to point at.
                        let (line, column) = diagnostic
                            .span
                            .as_ref()
                            .filter(|_| file.origin == Origin::File)
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

/// Most problems rendered as text; the rest are counted (JSON lists all).
const RENDERED: usize = 20;

/// Longest line shown under a problem; a longer one is only located.
const LONGEST_LINE: usize = 240;

/// Renders diagnostics as plain text with the lines they point at.
fn render(source: &Source, diagnostics: &[Diagnostic]) -> String {
    if source.origin == Origin::Code {
        return render_built(source, diagnostics);
    }
    let name = source.path.display().to_string();
    let file = SimpleFile::new(name.as_str(), source.text.as_str());
    let config = term::Config {
        chars: term::Chars::ascii(),
        ..term::Config::default()
    };
    let mut out = String::new();
    for diagnostic in diagnostics.iter().take(RENDERED) {
        let mut report = Report::error().with_message(&diagnostic.message);
        match &diagnostic.span {
            Some(span) if line_length(&source.text, span.start) > LONGEST_LINE => {
                let (line, column) = line_column(&source.text, span.start);
                report = report.with_notes(vec![format!("at {name}:{line}:{column}")]);
            }
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
    out.push_str(&summary(&name, diagnostics.len(), "run"));
    out
}

/// The last lines: how many problems, and that nothing ran.
fn summary(name: &str, count: usize, what_not: &str) -> String {
    let mut out = String::new();
    if count > RENDERED {
        out.push_str(&format!(
            "... and {} more errors (`flow validate --json` lists them all)\n\n",
            count - RENDERED
        ));
    }
    let plural = if count == 1 { "" } else { "s" };
    out.push_str(&format!(
        "{name}: {count} error{plural}; the workflow was not {what_not}"
    ));
    out
}

/// Renders the problems of a workflow built in code: each with the table
/// and the line of the builder's rendering it is about, since there is no
/// file to point into.
fn render_built(source: &Source, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for diagnostic in diagnostics.iter().take(RENDERED) {
        out.push_str(&format!("error: {}\n", diagnostic.message));
        if let Some(span) = &diagnostic.span {
            out.push_str(&format!(
                "  = {}\n",
                built_context(&source.text, span.start)
            ));
        }
        if let Some(help) = &diagnostic.help {
            out.push_str(&format!("  = help: {help}\n"));
        }
        out.push('\n');
    }
    let name = source.path.file_name().map_or_else(
        || source.path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    out.push_str(&summary(&name, diagnostics.len(), "built"));
    out
}

/// Where `offset` of a builder's rendering is: `in [nodes.a]: retries = -1`.
fn built_context(text: &str, offset: usize) -> String {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[start..end].trim();
    if line.starts_with('[') {
        return format!("in {line}");
    }
    let table = text[..start]
        .lines()
        .rev()
        .find(|line| line.starts_with('['))
        .unwrap_or("[workflow]");
    let line: String = match line.char_indices().nth(LONGEST_LINE) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    };
    format!("in {table}: {line}")
}

/// The length in bytes of the line holding byte `offset` of `text`.
fn line_length(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    end - start
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
