//! Level-by-level scheduling on a bounded worker pool.
//!
//! Levels come from the DAG: every node's dependencies are in lower levels,
//! so the nodes of a level can run in any order and in parallel. At most
//! `max_concurrency` node tasks exist at once (a semaphore permit is taken
//! before a task is spawned, so nothing queues beyond the pool). When a node
//! fails, no new node starts, the running ones finish, and the nodes
//! downstream of the failure are marked skipped.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use ulid::Ulid;

use super::node::{Finished, NodeTask, Shared, node_record};
use super::{ExecError, NodeReport, RunReport, WorkflowEngine};
use crate::observe::Event;
use crate::runtime::PluginRegistry;
use crate::spec::WorkflowSpec;
use crate::store::{NodeStatus, RunRecord, RunStatus, Timestamp};

pub(super) async fn run(
    engine: &WorkflowEngine,
    workflow: Arc<WorkflowSpec>,
    plugins: Arc<PluginRegistry>,
) -> Result<RunReport, ExecError> {
    let started = Instant::now();
    let run_id = Ulid::new().to_string();
    let mut record = RunRecord {
        run_id: run_id.clone(),
        workflow_id: workflow.id.clone(),
        workflow_path: workflow.source.path.clone(),
        status: RunStatus::Running,
        created_at: Timestamp::now(),
        finished_at: None,
        nodes: workflow.nodes.len(),
        error: None,
    };
    engine.store.create_run(&record, &workflow.source.text)?;
    let shared = Arc::new(Shared {
        runtime: engine.runtime.clone(),
        store: engine.store.clone(),
        observers: engine.observers.clone(),
        limits: engine.limits.clone(),
        workflow: workflow.clone(),
        run_id: run_id.clone(),
    });
    shared.notify(&Event::RunStarted {
        run_id: &run_id,
        workflow_id: &workflow.id,
        nodes: workflow.nodes.len(),
    });

    let mut state = State::new(&workflow);
    let workers = Arc::new(Semaphore::new(workflow.max_concurrency.workers()));
    let mut tasks: JoinSet<Finished> = JoinSet::new();
    let mut store_error = None;

    'levels: for level in workflow.dag.levels() {
        for &index in level {
            if state.failed.is_some() || store_error.is_some() {
                break 'levels;
            }
            let permit = workers
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let node = &workflow.nodes[index];
            let plugin = plugins
                .get(&node.action)
                .expect("actions were checked against the registry")
                .clone();
            let task = NodeTask {
                shared: shared.clone(),
                index,
                plugin,
                input: state.request(&workflow, index),
            };
            tasks.spawn(async move {
                let report = task.run().await;
                drop(permit);
                report
            });
            // Collect whatever finished meanwhile, so a failure stops the
            // level as early as possible.
            while let Some(done) = tasks.try_join_next() {
                state.finish(done, &mut store_error);
            }
        }
        while let Some(done) = tasks.join_next().await {
            state.finish(done, &mut store_error);
        }
    }
    while let Some(done) = tasks.join_next().await {
        state.finish(done, &mut store_error);
    }
    if let Some(error) = store_error {
        return Err(error);
    }

    // Skip what the failure made impossible.
    if let Some(failed) = state.failed {
        let because = workflow.nodes[failed].id.clone();
        for index in workflow.dag.downstream(failed) {
            if state.reports[index].status != NodeStatus::Pending {
                continue;
            }
            let node = &workflow.nodes[index];
            let status = NodeStatus::Skipped {
                because: because.clone(),
            };
            let mut skipped = node_record(index, node, status.clone());
            skipped.finished_at = Some(Timestamp::now());
            engine.store.put_node(&run_id, &skipped)?;
            state.reports[index].status = status;
            shared.notify(&Event::NodeFinished {
                node: &state.reports[index],
            });
        }
    }

    record.status = if state.failed.is_some() {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    record.error = state.failed.map(|index| {
        let node = &state.reports[index];
        format!(
            "node `{}` failed: {}",
            node.id,
            node.error.as_deref().unwrap_or("unknown error")
        )
    });
    record.finished_at = Some(Timestamp::now());
    engine.store.update_run(&record)?;
    engine.store.flush()?;

    let report = RunReport {
        run_id,
        workflow_id: workflow.id.clone(),
        status: record.status,
        nodes: state.reports,
        elapsed: started.elapsed(),
        sinks: workflow.dag.sinks().collect(),
    };
    shared.notify(&Event::RunFinished { report: &report });
    Ok(report)
}

/// What the scheduler knows of the run so far.
struct State {
    reports: Vec<NodeReport>,
    /// The first node that failed.
    failed: Option<usize>,
}

impl State {
    fn new(workflow: &WorkflowSpec) -> Self {
        Self {
            reports: workflow
                .nodes
                .iter()
                .map(|node| NodeReport::new(&node.id, &node.action, NodeStatus::Pending))
                .collect(),
            failed: None,
        }
    }

    /// The JSON handed to the node: `{"input": ..., "deps": {...}}`, built
    /// from the stored JSON texts without parsing them again.
    fn request(&self, workflow: &WorkflowSpec, index: usize) -> String {
        let node = &workflow.nodes[index];
        let deps = workflow.dag.dependencies(index);
        let outputs: usize = deps
            .iter()
            .map(|&dep| self.reports[dep].output.as_ref().map_or(4, |o| o.len()))
            .sum();
        let mut json = String::with_capacity(32 + node.input.len() + outputs + 16 * deps.len());
        json.push_str("{\"input\":");
        json.push_str(&node.input);
        json.push_str(",\"deps\":{");
        for (i, &dep) in deps.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            // Node ids are [A-Za-z0-9_-]: no escaping needed.
            json.push('"');
            json.push_str(&workflow.nodes[dep].id);
            json.push_str("\":");
            json.push_str(self.reports[dep].output.as_deref().unwrap_or("null"));
        }
        json.push_str("}}");
        json
    }

    fn finish(
        &mut self,
        done: Result<Finished, tokio::task::JoinError>,
        store_error: &mut Option<ExecError>,
    ) {
        let finished = match done {
            Ok(finished) => finished,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        };
        if finished.report.status == NodeStatus::Failed && self.failed.is_none() {
            self.failed = Some(finished.index);
        }
        if let (None, Some(error)) = (&store_error, finished.store_error) {
            *store_error = Some(ExecError::Store(error));
        }
        self.reports[finished.index] = finished.report;
    }
}
