//! Map nodes: a node run once per element of a list its `map` expression
//! gives, each element with its own attempts, retries and records.
//!
//! The scheduler keeps a [`MapRun`] for each map node that has started. It
//! starts elements from it while workers are free (elements and nodes share
//! the run's `max_concurrency` pool) and fewer than the node's
//! `map_concurrency` run. Each element's request is built when it starts,
//! and its item is dropped from the list then: memory grows with the
//! elements' outputs, not with copies of the list or of the dependencies.
//! When every element has ended, the node ends: its output is the list of
//! their outputs in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use jaq_json::Val;

use super::node::{Finished, NodeTask, Shared, micros, settle};
use super::shape::{self, MapInput};
use crate::report::{Failure, FailureKind, JsonText, NodeReport, NodeStatus, Timestamp};
use crate::store::{NodeRecord, element_id};

/// What earlier sessions of a resumed run left of a map node's elements.
#[derive(Debug, Default)]
pub(super) struct ElementsBefore {
    /// The output of each element that succeeded, by position.
    pub outputs: HashMap<u32, JsonText>,
    /// Attempts each element had, by position.
    pub attempts: HashMap<u32, u32>,
}

/// A map node that has started and not yet ended.
pub(super) struct MapRun {
    /// The node's index.
    pub index: usize,
    context: Val,
    /// The items of elements not yet started (started ones are taken out).
    items: Vec<Val>,
    /// The next element to consider starting.
    next: usize,
    running: usize,
    limit: usize,
    /// The output of each element that succeeded.
    outputs: Vec<Option<JsonText>>,
    /// Attempts of each element before this session of the run.
    before: HashMap<u32, u32>,
    /// Attempts of every element together.
    attempts: u32,
    fuel: Option<u64>,
    failed: usize,
    /// The first element that failed, and how.
    first_failure: Option<(usize, Failure)>,
    cancelled: bool,
    started: Instant,
    record: NodeRecord,
}

impl MapRun {
    /// Starts map node `index` over `input`'s list; elements that succeeded
    /// before a resume keep their outputs and do not run again.
    pub fn start(
        shared: &Shared,
        index: usize,
        input: MapInput,
        before: ElementsBefore,
    ) -> (Self, Result<(), crate::store::StoreError>) {
        let workflow = &shared.workflow;
        let node = &workflow.nodes[index];
        let len = input.items.len();
        let mut outputs = vec![None; len];
        for (position, output) in before.outputs {
            if let Some(slot) = outputs.get_mut(position as usize) {
                *slot = Some(output);
            }
        }
        let limit = match node.options.map_concurrency {
            0 => workflow.options.max_concurrency.workers(),
            n => n as usize,
        };
        let mut record = NodeRecord::new(index, &node.id, &node.action, NodeStatus::Running);
        record.started_at = Some(Timestamp::now());
        let attempts = before.attempts.values().sum();
        record.attempts = attempts;
        let saved = shared.persistence.put(record.clone(), None);
        shared
            .progress
            .set_node(index, &NodeStatus::Running, attempts);
        let run = Self {
            index,
            context: input.context,
            items: input.items,
            next: 0,
            running: 0,
            limit: limit.max(1),
            outputs,
            before: before.attempts,
            attempts,
            fuel: None,
            failed: 0,
            first_failure: None,
            cancelled: false,
            started: Instant::now(),
            record,
        };
        (run, saved)
    }

    /// The next element to start, if the node's `map_concurrency` allows
    /// one more.
    pub fn next_element(&mut self, shared: &Arc<Shared>) -> Option<NodeTask> {
        if self.running >= self.limit {
            return None;
        }
        let node = &shared.workflow.nodes[self.index];
        while self.next < self.items.len() {
            let position = self.next;
            self.next += 1;
            let item = std::mem::take(&mut self.items[position]);
            if self.outputs[position].is_some() {
                continue;
            }
            self.running += 1;
            let element = position as u32;
            return Some(NodeTask {
                shared: shared.clone(),
                index: self.index,
                element: Some(element),
                id: element_id(&node.id, element),
                input: shape::element(node, &self.context, item, position),
                dependencies: Vec::new(),
                previous_attempts: self.before.get(&element).copied().unwrap_or(0),
            });
        }
        None
    }

    /// Takes in an element's final report.
    pub fn take_in(&mut self, shared: &Shared, element: u32, report: NodeReport) {
        let position = element as usize;
        self.running = self.running.saturating_sub(1);
        let before = self.before.get(&element).copied().unwrap_or(0);
        self.attempts += report.attempts.saturating_sub(before);
        if let Some(fuel) = report.fuel_used {
            self.fuel = Some(self.fuel.unwrap_or(0) + fuel);
        }
        match report.status {
            NodeStatus::Succeeded => self.outputs[position] = report.output,
            NodeStatus::Cancelled => self.cancelled = true,
            _ => {
                self.failed += 1;
                if let Some(error) = report.error
                    && self
                        .first_failure
                        .as_ref()
                        .is_none_or(|(first, _)| position < *first)
                {
                    self.first_failure = Some((position, error));
                }
            }
        }
        shared
            .progress
            .set_node(self.index, &NodeStatus::Running, self.attempts);
    }

    /// Whether every element has ended.
    pub fn is_done(&self) -> bool {
        self.next >= self.items.len() && self.running == 0
    }

    /// Whether no element runs.
    pub fn is_idle(&self) -> bool {
        self.running == 0
    }

    /// Ends the node: its record and report, stored as a node's are.
    /// `stopped`: the run stops before every element ran.
    pub async fn conclude(self, shared: Arc<Shared>, stopped: bool) -> Finished {
        let node = &shared.workflow.nodes[self.index];
        let total = self.outputs.len();
        let tolerance = node.options.map_tolerance as usize;
        let (status, error, output) = if self.cancelled || stopped {
            let done = self.outputs.iter().filter(|o| o.is_some()).count();
            let failure = Failure::new(
                FailureKind::Cancelled,
                format!("the run stopped when {done} of its {total} elements had succeeded"),
            );
            (NodeStatus::Cancelled, Some(failure), None)
        } else if self.failed > tolerance {
            (
                NodeStatus::Failed,
                Some(self.failure(total, tolerance)),
                None,
            )
        } else {
            let output = JsonText::list(self.outputs.iter().map(Option::as_ref));
            (NodeStatus::Succeeded, None, Some(output))
        };
        let elapsed = self.started.elapsed();
        let mut record = self.record;
        record.status = status.clone();
        record.attempts = self.attempts;
        record.error = error.clone();
        record.output = output.clone();
        record.finished_at = Some(Timestamp::now());
        record.elapsed_us = Some(micros(elapsed));
        record.fuel_used = self.fuel;
        let mut report = NodeReport::new(&node.id, &node.action, status);
        report.attempts = self.attempts;
        report.elapsed = elapsed;
        report.output = output;
        report.error = error;
        report.fuel_used = self.fuel;
        settle(&shared, self.index, None, (record, None), report).await
    }

    /// "2 of 10000 elements failed (map_tolerance allows 0); the first,
    /// element 17: ..."
    fn failure(&self, total: usize, tolerance: usize) -> Failure {
        let (kind, first) = match &self.first_failure {
            Some((position, error)) => (
                error.kind,
                format!("; the first, element {position}: {}", error.message),
            ),
            None => (FailureKind::Fatal, String::new()),
        };
        let elements = if total == 1 { "element" } else { "elements" };
        Failure::new(
            kind,
            format!(
                "{} of {total} {elements} failed (map_tolerance allows {tolerance}){first}",
                self.failed
            ),
        )
    }
}
