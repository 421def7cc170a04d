//! What `flow run` shows while a run goes and when it ends: a live status
//! line on a terminal, one plain line per event otherwise, and a summary
//! table.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use clap::ValueEnum;
use flow_host::observe::{format_delay, format_duration};
use flow_host::{Event, NodeReport, NodeStatus, Observer, RunReport, WorkflowSpec};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{logging, table};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// A live status line on a terminal, plain lines otherwise
    Auto,
    /// A live status line, redrawn in place
    Live,
    /// One line per event (attempt started, node finished, retry)
    Plain,
    /// Nothing until the run ends
    Off,
}

impl ProgressMode {
    /// `Auto` made concrete for the standard output at hand.
    pub fn resolve(self) -> Self {
        match self {
            ProgressMode::Auto if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
                ProgressMode::Live
            }
            ProgressMode::Auto => ProgressMode::Plain,
            mode => mode,
        }
    }
}

/// Counts of the nodes of a run by state, and the nodes running now.
#[derive(Debug, Default)]
struct Board {
    total: usize,
    succeeded: usize,
    failed: usize,
    skipped: usize,
    cancelled: usize,
    /// Nodes with an attempt under way, in the order they started.
    running: Vec<(String, u32)>,
}

impl Board {
    fn finished(&self) -> usize {
        self.succeeded + self.failed + self.skipped + self.cancelled
    }

    /// `12 done · 1 failed · 2 running · 5 pending · running: a, b#2`
    fn summary(&self) -> String {
        let pending = self
            .total
            .saturating_sub(self.finished() + self.running.len());
        let mut parts = vec![format!("{} done", self.succeeded)];
        for (count, name) in [
            (self.failed, "failed"),
            (self.skipped, "skipped"),
            (self.cancelled, "cancelled"),
        ] {
            if count > 0 {
                parts.push(format!("{count} {name}"));
            }
        }
        parts.push(format!("{} running", self.running.len()));
        parts.push(format!("{pending} pending"));
        let mut text = parts.join(" · ");
        if !self.running.is_empty() {
            const SHOWN: usize = 4;
            let names: Vec<String> = self
                .running
                .iter()
                .take(SHOWN)
                .map(|(node, attempt)| match attempt {
                    1 => node.clone(),
                    n => format!("{node} (attempt {n})"),
                })
                .collect();
            text.push_str(" · now: ");
            text.push_str(&names.join(", "));
            if self.running.len() > SHOWN {
                text.push_str(&format!(" and {} more", self.running.len() - SHOWN));
            }
        }
        text
    }
}

/// Shows a run's progress as its events arrive.
pub struct Progress {
    mode: ProgressMode,
    board: Mutex<Board>,
    bar: Option<ProgressBar>,
    actions: HashMap<String, String>,
    id_width: usize,
    action_width: usize,
}

impl Progress {
    /// A display for `spec` in `mode` (already resolved).
    pub fn new(spec: &WorkflowSpec, mode: ProgressMode) -> Self {
        let mut mode = mode;
        let bar = (mode == ProgressMode::Live).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(spec.nodes.len() as u64),
                ProgressDrawTarget::stdout(),
            );
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed:>4} [{bar:24}] {pos}/{len} {wide_msg}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        // indicatif draws nothing where stdout is not a terminal.
        let bar = match bar {
            Some(bar) if bar.is_hidden() => {
                mode = ProgressMode::Plain;
                None
            }
            bar => bar,
        };
        if let Some(bar) = &bar {
            logging::suspend_for(bar.clone());
        }
        Self {
            mode,
            board: Mutex::new(Board {
                total: spec.nodes.len(),
                ..Board::default()
            }),
            bar,
            actions: spec
                .nodes
                .iter()
                .map(|node| (node.id.clone(), node.action.clone()))
                .collect(),
            id_width: spec.nodes.iter().map(|n| n.id.len()).max().unwrap_or(0),
            action_width: spec.nodes.iter().map(|n| n.action.len()).max().unwrap_or(0),
        }
    }

    /// Removes the live line; call when the run has ended.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            logging::suspend_for_none();
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }

    /// The action of a node, or of the map node of an element
    /// (`node[3]`).
    fn action(&self, node: &str) -> &str {
        let node = node.split_once('[').map_or(node, |(node, _)| node);
        self.actions.get(node).map(String::as_str).unwrap_or("")
    }

    fn columns(&self, mark: &str, node: &str, action: &str, detail: &str) -> String {
        format!(
            "  {mark:<7}  {node:<id_width$}  {action:<action_width$}  {detail}",
            id_width = self.id_width,
            action_width = self.action_width,
        )
    }
}

impl Observer for Progress {
    fn on_event(&self, event: &Event<'_>) {
        if self.mode == ProgressMode::Off {
            return;
        }
        let mut board = self.board.lock().unwrap_or_else(|e| e.into_inner());
        let line = match event {
            Event::RunStarted {
                run_id,
                workflow_id,
                nodes,
                finished,
            } => {
                board.succeeded += finished;
                Some(match finished {
                    0 => format!("run {run_id} of workflow `{workflow_id}` ({nodes} nodes)"),
                    done => format!(
                        "run {run_id} of workflow `{workflow_id}` ({nodes} nodes, {done} done before)"
                    ),
                })
            }
            // The elements of a map node show as the node's attempts and
            // retries; a line per element start would drown the rest.
            Event::AttemptStarted { node, .. } if node.contains('[') => None,
            Event::AttemptStarted { node, attempt } => {
                // A node stays among the running ones while it waits to
                // retry.
                match board.running.iter_mut().find(|(id, _)| id == node) {
                    Some(entry) => entry.1 = *attempt,
                    None => board.running.push((node.to_string(), *attempt)),
                }
                (self.mode == ProgressMode::Plain).then(|| {
                    self.columns(
                        "start",
                        node,
                        self.action(node),
                        &format!("attempt {attempt}"),
                    )
                })
            }
            Event::RetryScheduled {
                node,
                attempt,
                error,
                delay,
            } => Some(self.columns(
                "retry",
                node,
                self.action(node),
                &format!(
                    "attempt {attempt} failed: {}; retrying in {}",
                    super::out::printable(&error.message),
                    format_delay(*delay)
                ),
            )),
            Event::NodeFinished { node } => {
                board.running.retain(|(id, _)| id != &node.id);
                match node.status {
                    NodeStatus::Succeeded => board.succeeded += 1,
                    NodeStatus::Failed => board.failed += 1,
                    NodeStatus::Skipped { .. } => board.skipped += 1,
                    _ => board.cancelled += 1,
                }
                Some(node_line(node, self.id_width, self.action_width))
            }
            _ => None,
        };
        if let Some(line) = line {
            self.line(line);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(board.finished() as u64);
            bar.set_message(board.summary());
        }
    }
}

/// One line about a finished node.
pub fn node_line(node: &NodeReport, id_width: usize, action_width: usize) -> String {
    let attempts = match node.attempts {
        0 | 1 => String::new(),
        n => format!(", {n} attempts"),
    };
    let (mark, detail) = match &node.status {
        NodeStatus::Succeeded => ("ok", format!("{}{attempts}", format_duration(node.elapsed))),
        NodeStatus::Failed => (
            "FAILED",
            format!(
                "{}{attempts}: {}",
                format_duration(node.elapsed),
                super::out::printable(node.error.as_ref().map_or("", |e| e.message.as_str()))
            ),
        ),
        status @ NodeStatus::Skipped { .. } => ("skipped", status.reason().unwrap_or_default()),
        NodeStatus::Cancelled => (
            "cancel",
            format!("{}{attempts}: cancelled", format_duration(node.elapsed)),
        ),
        other => (other.name(), String::new()),
    };
    format!(
        "  {mark:<7}  {:<id_width$}  {:<action_width$}  {detail}",
        node.id, node.action
    )
}

/// Most rows the summary table shows; beyond, it keeps the nodes that did
/// not succeed.
const SUMMARY_ROWS: usize = 50;

/// The table printed when a run ends: node, status, attempts, duration,
/// fuel. `db` is the `--db` argument to repeat in hints.
pub fn print_summary(out: &mut impl Write, report: &RunReport, db: &str) -> std::io::Result<()> {
    if report.nodes.len() > SUMMARY_ROWS
        && report
            .nodes
            .iter()
            .all(|node| node.status == NodeStatus::Succeeded)
    {
        return writeln!(
            out,
            "summary: all {} nodes succeeded (each of them: flow status {}{db})",
            report.nodes.len(),
            report.run_id
        );
    }
    let mut table = table::new(&["NODE", "ACTION", "STATUS", "ATTEMPTS", "DURATION", "FUEL"]);
    let all = report.nodes.len() <= SUMMARY_ROWS;
    let mut hidden = 0;
    for node in &report.nodes {
        if !all && node.status == NodeStatus::Succeeded {
            hidden += 1;
            continue;
        }
        let ran = node.attempts > 0;
        table.add_row(vec![
            node.id.clone(),
            node.action.clone(),
            node.status.to_string(),
            node.attempts.to_string(),
            if ran {
                format_duration(node.elapsed)
            } else {
                "-".into()
            },
            node.fuel_used
                .map(|fuel| fuel.to_string())
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    table::align_right(&mut table, &[3, 4, 5]);
    writeln!(out, "summary:")?;
    table::print(out, &mut table)?;
    if hidden > 0 {
        writeln!(
            out,
            "  ({hidden} succeeded nodes not shown; all of them: flow status {}{db})",
            report.run_id
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_line_counts_nodes_by_state_and_names_the_running_ones() {
        let mut board = Board {
            total: 10,
            succeeded: 3,
            failed: 1,
            ..Board::default()
        };
        for (node, attempt) in [("a", 1), ("b", 2), ("c", 1), ("d", 1), ("e", 1)] {
            board.running.push((node.to_string(), attempt));
        }
        assert_eq!(
            board.summary(),
            "3 done · 1 failed · 5 running · 1 pending · now: a, b (attempt 2), c, d and 1 more"
        );
        board.running.clear();
        board.succeeded = 9;
        assert_eq!(board.summary(), "9 done · 1 failed · 0 running · 0 pending");
    }
}
