//! Errors of the API as RFC 9457 problem documents
//! (`application/problem+json`), and extractors whose rejections are such
//! documents too.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flow_host::store::StoreError;
use flow_host::{ExecError, SpecError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// What went wrong with a request (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; `about:blank` when the status
    /// says it all.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status's reason.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, and what to do about it.
    pub detail: String,
    /// Validation errors of a workflow file, when that is the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub errors: Option<serde_json::Value>,
}

impl Problem {
    /// A problem with this status and detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 404: no such thing.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 409: the thing is not in a state that allows this.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    /// 422: well-formed, but the workflow or the values are invalid.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    /// 500: the server failed; the detail is logged, not shown.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(target: "flow::serve", "request failed: {error}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server could not complete the request; its log says why",
        )
    }

    /// 503: the server is shutting down.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"flow\""),
            );
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::UnknownRun { .. } => Problem::not_found(error.to_string()),
            StoreError::AmbiguousRun { .. } | StoreError::EmptyRunId => {
                Problem::bad_request(error.to_string())
            }
            error => Problem::internal(error),
        }
    }
}

impl From<SpecError> for Problem {
    fn from(error: SpecError) -> Self {
        if !matches!(error, SpecError::Invalid { .. }) {
            return Problem::invalid(error.to_string());
        }
        let errors = error.to_json();
        let mut problem =
            Problem::invalid(format!("the workflow is invalid: {}", summary(&errors)));
        problem.errors = Some(errors);
        problem
    }
}

/// The first message of a validation error's `errors`, and how many more.
fn summary(json: &serde_json::Value) -> String {
    let errors = json["errors"].as_array().map_or(&[][..], Vec::as_slice);
    let first = errors
        .first()
        .and_then(|e| e["message"].as_str())
        .unwrap_or("see `errors`");
    match errors.len() {
        0 | 1 => first.to_string(),
        n => format!("{first} (and {} more)", n - 1),
    }
}

impl From<ExecError> for Problem {
    fn from(error: ExecError) -> Self {
        match error {
            ExecError::Spec(spec) => spec.into(),
            ExecError::Store(store) => store.into(),
            ExecError::NotLoaded { .. }
            | ExecError::Params(_)
            | ExecError::UnknownNode { .. }
            | ExecError::PoolTooSmall { .. } => Problem::invalid(error.to_string()),
            ExecError::NothingToResume { .. }
            | ExecError::StillRunning { .. }
            | ExecError::Changed { .. } => Problem::conflict(error.to_string()),
            ExecError::Aborted => Problem::internal(error),
        }
    }
}

/// A JSON body that may be left out (empty: `T::default()`).
#[derive(Debug)]
pub struct OptionalBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| Problem::new(rejection.status(), rejection.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalBody(T::default()));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(OptionalBody(value)),
            Err(rejection) => Err(Problem::new(rejection.status(), rejection.body_text())),
        }
    }
}

/// Query parameters; bad ones are a 400 problem that names them.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(Problem::bad_request(rejection.body_text())),
        }
    }
}

/// Path parameters; one that is not text (`%FF`) is a 400 problem.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(Problem::bad_request(rejection.body_text())),
        }
    }
}
