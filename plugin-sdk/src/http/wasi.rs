//! The requests themselves, through `wasi:http`: started, then awaited
//! one at a time or several together.

use wasip2::http::outgoing_handler::{self, FutureIncomingResponse};
use wasip2::http::types::{
    ErrorCode, Fields, IncomingResponse, Method, OutgoingBody, OutgoingRequest, RequestOptions,
    Scheme,
};
use wasip2::io::poll::{Pollable, poll};
use wasip2::io::streams::StreamError;

use super::{HttpError, MAX_REDIRECTS, Request, Response, parse_url};

/// Sends `request` and reads its whole response.
pub(super) fn send_once(request: &Request) -> Result<Response, HttpError> {
    let pending = start(request)?;
    pending.subscribe().block();
    finish(request, pending)
}

/// Sends `requests`, at most `in_flight` waiting for their responses at
/// once, and hands each result to `each` as it arrives. A redirect's next
/// request takes the place of the one redirected, so that following it
/// holds up no other.
pub(super) fn send_concurrently(
    requests: &[Request],
    in_flight: usize,
    mut each: impl FnMut(usize, Result<Response, HttpError>),
) {
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut next = 0;
    loop {
        start_more(requests, in_flight, &mut next, &mut waiting, &mut each);
        if waiting.is_empty() {
            return;
        }
        let pollables: Vec<&Pollable> = waiting.iter().map(|w| &w.pollable).collect();
        let mut ready = poll(&pollables);
        // Removed from the back, so that the indices still to remove stay
        // where they are.
        ready.sort_unstable_by(|a, b| b.cmp(a));
        let mut arrived = Vec::new();
        let mut hops = Vec::new();
        for position in ready {
            let Waiting {
                index,
                hop,
                left,
                pollable,
                pending,
            } = waiting.swap_remove(position as usize);
            // The pollable is a child of the response: it goes first.
            drop(pollable);
            let request = hop.as_ref().unwrap_or(&requests[index]);
            let outcome = finish(request, pending)
                .and_then(|response| Ok((request.next_hop(&response, left)?, response)));
            match outcome {
                Ok((Some(next), _)) => hops.push((index, left - 1, next)),
                Ok((None, response)) => arrived.push((index, Ok(response))),
                Err(error) => arrived.push((index, Err(error))),
            }
        }
        // Redirects and the next requests go out first, so that they wait
        // on the network while `each` works.
        for (index, left, hop) in hops {
            match start(&hop) {
                Ok(pending) => waiting.push(Waiting {
                    index,
                    left,
                    pollable: pending.subscribe(),
                    pending,
                    hop: Some(hop),
                }),
                Err(error) => arrived.push((index, Err(error))),
            }
        }
        start_more(requests, in_flight, &mut next, &mut waiting, &mut each);
        for (index, result) in arrived {
            each(index, result);
        }
    }
}

/// A request sent, and what its response is awaited by.
struct Waiting {
    /// Its place in the requests.
    index: usize,
    /// The request a redirect led to, when it is not the one at `index`.
    hop: Option<Request>,
    /// How many more redirects may be followed.
    left: usize,
    pollable: Pollable,
    pending: FutureIncomingResponse,
}

/// Starts the requests from `next` on until `in_flight` wait for their
/// responses; one that cannot start goes to `each` at once.
fn start_more(
    requests: &[Request],
    in_flight: usize,
    next: &mut usize,
    waiting: &mut Vec<Waiting>,
    each: &mut impl FnMut(usize, Result<Response, HttpError>),
) {
    while waiting.len() < in_flight && *next < requests.len() {
        match start(&requests[*next]) {
            Ok(pending) => waiting.push(Waiting {
                index: *next,
                hop: None,
                left: MAX_REDIRECTS,
                pollable: pending.subscribe(),
                pending,
            }),
            Err(error) => each(*next, Err(error)),
        }
        *next += 1;
    }
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
    // GET is what a new request has: one call fewer for the usual case.
    if !matches!(method, Method::Get) {
        outgoing
            .set_method(&method)
            .map_err(|()| invalid("method"))?;
    }
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
    let headers: Vec<(String, String)> = response
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
    // A body of a known length is whole once that many bytes came: no call
    // more to learn that it ended.
    let length: Option<usize> = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok());
    let mut bytes = Vec::with_capacity(length.unwrap_or(0).min(1 << 20));
    while length.is_none_or(|length| bytes.len() < length) {
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
    drop(incoming);
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
