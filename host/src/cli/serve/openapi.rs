//! The API's OpenAPI document, generated from the handlers' annotations.
//! docs/openapi.json is a copy, checked by a test to be current.

use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

use super::{model, nodes, problem, records, runs, system, workflows};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Flow Orchestrator API",
        description = "Start, watch and steer workflow runs of a `flow serve`. \
            Errors are RFC 9457 problem documents. When the server has a token \
            file, every path but /healthz and the dashboard's pages and assets needs `Authorization: Bearer <token>`.",
        license(name = "Apache-2.0"),
    ),
    paths(
        workflows::list, workflows::get, workflows::start,
        runs::list, runs::get, nodes::list, nodes::get, runs::logs, runs::cancel, runs::resume, runs::retry, runs::delete,
        system::events, system::health, system::metrics, system::openapi,
        records::runs, records::run, records::history,
    ),
    components(schemas(
        problem::Problem, model::RunSummary, model::Parent, model::RunPage,
        model::WorkflowSummary, model::WorkflowDetail, model::GraphNode, model::ParamInfo,
        model::StartRun, model::Retry, model::Resume, model::RunRef, model::LogLine,
        model::Logs, model::Health, model::ScheduleInfo, nodes::NodePage, nodes::NodeState,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "workflows", description = "The workflow files of the server's directory"),
        (name = "runs", description = "Recorded runs and their events"),
        (name = "server", description = "Health, metrics and this document"),
        (name = "records", description = "The stored records, as `flow status`, `flow list` and `flow logs` read them while a server holds the database; their format follows the store's"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document as docs/openapi.json holds it.
pub fn document() -> String {
    let mut text = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}
