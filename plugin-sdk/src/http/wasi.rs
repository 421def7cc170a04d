//! The requests themselves, through `wasi:http`: started, then awaited
//! one at a time or several together.

use wasip2::http::outgoing_handler::{self, FutureIncomingResponse};
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme,
};
use wasip2::io::poll::{Pollable, poll};
use wasip2::io::streams::StreamError;

use super::{HttpError, Request, Response, parse_url};

/// Sends `request` and reads its whole response.
pub(super) fn send_once(request: &Request) -> Result<Response, HttpError> {
    let pending = start(request)?;
    pending.subscribe().block();
    finish(request, pending)
}

/// Sends `requests`, at most `in_flight` waiting for their responses at
/// once; their results in the same order.
pub(super) fn send_concurrently(
    requests: &[Request],
    in_flight: usize,
) -> Vec<Result<Response, HttpError>> {
    let mut results: Vec<Option<Result<Response, HttpError>>> =
        requests.iter().map(|_| None).collect();
    // (index of the request, what its response is awaited by, the response)
    let mut waiting: Vec<(usize, Pollable, FutureIncomingResponse)> = Vec::new();
    let mut next = 0;
    while next < requests.len() || !waiting.is_empty() {
        while waiting.len() < in_flight && next < requests.len() {
            match start(&requests[next]) {
                Ok(pending) => waiting.push((next, pending.subscribe(), pending)),
                Err(error) => results[next] = Some(Err(error)),
            }
            next += 1;
        }
        if waiting.is_empty() {
            continue;
        }
        let pollables: Vec<&Pollable> = waiting.iter().map(|(_, pollable, _)| pollable).collect();
        let mut ready = poll(&pollables);
        // Removed from the back, so that the indices still to remove stay
        // where they are.
        ready.sort_unstable_by(|a, b| b.cmp(a));
        for position in ready {
            let (index, pollable, pending) = waiting.swap_remove(position as usize);
            // The pollable is a child of the response: it goes first.
            drop(pollable);
            results[index] = Some(finish(&requests[index], pending));
        }
    }
    results
        .into_iter()
        .map(|result| result.unwrap_or_else(|| Err(HttpError::Failed("not sent".into()))))
        .collect()
}

/// Sends the head and body of `request`; its response comes later.
fn start(request: &Request) -> Result<FutureIncomingResponse, HttpError> {
    let url = parse_url(&request.url)?;
    let mut headers: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    if !request.body.is_empty() {
        // A known length: the body goes out in one piece, not chunked.
        headers.push((
            "content-length".into(),
            request.body.len().to_string().into_bytes(),
        ));
    }
    let fields =
        Fields::from_list(&headers).map_err(|e| HttpError::Url(format!("bad header: {e:?}")))?;
    let outgoing = OutgoingRequest::new(fields);
    let method = match request.method.as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    };
    let invalid = |what: &str| HttpError::Url(format!("{}: bad {what}", request.url));
    outgoing
        .set_method(&method)
        .map_err(|()| invalid("method"))?;
    let scheme = if url.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    outgoing
        .set_authority(Some(url.authority))
        .map_err(|()| invalid("host"))?;
    outgoing
        .set_path_with_query(Some(url.path_and_query))
        .map_err(|()| invalid("path"))?;
    let body = if request.body.is_empty() {
        None
    } else {
        Some(outgoing.body().map_err(|()| invalid("body"))?)
    };
    let options = request.timeout.map(|timeout| {
        let options = RequestOptions::new();
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        options
    });
    let pending =
        outgoing_handler::handle(outgoing, options).map_err(|code| failure(request, code))?;
    if let Some(body) = body {
        let stream = body.write().map_err(|()| invalid("body"))?;
        for chunk in request.body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| HttpError::Failed(format!("sending the body: {e:?}")))?;
        }
        drop(stream);
        OutgoingBody::finish(body, None).map_err(|code| failure(request, code))?;
    }
    Ok(pending)
}

/// Reads the response of `request`, once `pending` is ready.
fn finish(request: &Request, pending: FutureIncomingResponse) -> Result<Response, HttpError> {
    let response: IncomingResponse = match pending.get() {
        Some(Ok(result)) => result.map_err(|code| failure(request, code))?,
        Some(Err(())) => return Err(HttpError::Failed("the response was taken twice".into())),
        None => return Err(HttpError::Failed("the response is not there yet".into())),
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|()| HttpError::Failed("no body".into()))?;
    let stream = incoming
        .stream()
        .map_err(|()| HttpError::Failed("no body stream".into()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(HttpError::Failed(format!(
                    "reading the response of {}: {}",
                    request.url,
                    e.to_debug_string()
                )));
            }
        }
    }
    drop(stream);
    let _ = IncomingBody::finish(incoming);
    Ok(Response {
        status,
        headers,
        body: bytes,
    })
}

/// What the host's error `code` for `request` means to the action.
fn failure(request: &Request, code: ErrorCode) -> HttpError {
    let what = format!("{} {}", request.method, request.url);
    match code {
        ErrorCode::HttpRequestDenied => HttpError::Denied(format!(
            "{what}: no grant of this node allows it (the attempt's log names the grant that would)"
        )),
        ErrorCode::DestinationIpProhibited => HttpError::Denied(format!(
            "{what}: the host resolves to an address of the host's own network"
        )),
        ErrorCode::HttpResponseBodySize(_) => HttpError::Failed(format!(
            "{what}: the response is larger than the node's http_max_response"
        )),
        ErrorCode::ConnectionRefused => HttpError::Failed(format!("{what}: connection refused")),
        ErrorCode::ConnectionTimeout => HttpError::Failed(format!("{what}: connecting timed out")),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            HttpError::Failed(format!("{what}: no response in time"))
        }
        ErrorCode::DestinationNotFound | ErrorCode::DnsError(_) | ErrorCode::DnsTimeout => {
            HttpError::Failed(format!("{what}: the host name does not resolve"))
        }
        other => HttpError::Failed(format!("{what}: {other:?}")),
    }
}
