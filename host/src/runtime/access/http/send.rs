//! Sending a granted request: resolving its host, refusing addresses of the
//! host's own network, connecting, and bounding the response.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::rustls;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use super::{HttpCounters, Sent, literal_ip, port_of};

/// How long each step of a request may take.
pub(super) struct Timeouts {
    pub(super) connect: Duration,
    pub(super) first_byte: Duration,
    pub(super) between_bytes: Duration,
}

/// Where a granted request goes, and its bounds.
pub(super) struct Target {
    pub(super) timeouts: Timeouts,
    pub(super) max_response: u64,
    /// Whether the grant lets the host resolve to a non-public address.
    pub(super) private: bool,
    pub(super) counters: Arc<HttpCounters>,
    pub(super) notes: Arc<Mutex<Vec<String>>>,
}

/// TLS with the web's root certificates, built once.
static TLS: LazyLock<tokio_rustls::TlsConnector> = LazyLock::new(|| {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
    // The ring provider supports the default protocol versions.
    tokio_rustls::TlsConnector::from(Arc::new(config.unwrap_or_else(|_| unreachable!())))
});

/// Sends `request`, granted already.
pub(super) async fn send(mut request: http::Request<WasiBody>, target: Target) -> Sent {
    let uri = request.uri().clone();
    let https = uri.scheme() == Some(&Scheme::HTTPS);
    let host = uri
        .host()
        .ok_or(HttpError::HttpRequestUriInvalid)?
        .to_string();
    let port = port_of(&uri);
    let note = |text: String| {
        target
            .notes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(text)
    };

    let addresses = resolve(&host, port, target.timeouts.connect).await?;
    let refused = addresses
        .iter()
        .find_map(|a| non_public(a.ip()).map(|k| (a.ip(), k)));
    if !target.private
        && let Some((address, kind)) = refused
    {
        // Refused, not sent.
        target.counters.refused.fetch_add(1, Ordering::Relaxed);
        target.counters.requests.fetch_sub(1, Ordering::Relaxed);
        note(format!(
            "refused {uri}: {host} resolves to {address}, a {kind} address; only a grant \
             that names the address itself (such as \"{}://{}\") or sets private = true \
             may reach the host's own network",
            uri.scheme_str().unwrap_or("https"),
            SocketAddr::new(address, port)
        ));
        return Err(HttpError::DestinationIpProhibited);
    }

    let stream = timeout(target.timeouts.connect, TcpStream::connect(&addresses[..]))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::ConnectionRefused => HttpError::ConnectionRefused,
            _ => HttpError::Connect(error),
        })?;
    let _ = stream.set_nodelay(true);
    let io: Box<dyn Stream> = if https {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let tls = timeout(target.timeouts.connect, TLS.connect(name, stream))
            .await
            .map_err(|_| HttpError::ConnectionTimeout)?
            .map_err(HttpError::Tls)?;
        Box::new(tls)
    } else {
        Box::new(stream)
    };
    let (mut sender, connection) = timeout(
        target.timeouts.connect,
        hyper::client::conn::http1::handshake(TokioIo::new(io)),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)??;

    // The request line carries the path only, not the scheme and host.
    *request.uri_mut() = uri.path_and_query().map_or_else(
        || http::Uri::from_static("/"),
        |p| {
            p.as_str()
                .parse()
                .unwrap_or_else(|_| http::Uri::from_static("/"))
        },
    );

    // The connection is driven here until the response comes, then by the
    // task wasi:http spawns for it: no task of its own.
    let mut connection = Box::pin(connection);
    let mut ended = None;
    let sending = timeout(target.timeouts.first_byte, sender.send_request(request));
    tokio::pin!(sending);
    let response = loop {
        tokio::select! {
            sent = &mut sending => break sent,
            result = &mut connection, if ended.is_none() => ended = Some(result),
        }
    };
    let response = response
        .map_err(|_| HttpError::ConnectionReadTimeout)?
        .map_err(HttpError::from)?;
    let (parts, body) = response.into_parts();
    if let Some(length) = body.size_hint().exact()
        && length > target.max_response
    {
        note(format!(
            "refused the response of {uri}: {length} bytes, over the limit of {} \
             (http_max_response)",
            target.max_response
        ));
        return Err(HttpError::HttpResponseBodySize(Some(length)));
    }
    let body = Bounded {
        inner: body,
        left: target.max_response,
        limit: target.max_response,
        counters: target.counters.clone(),
        idle: target.timeouts.between_bytes,
        timer: None,
    };
    let done = async move {
        match ended {
            Some(result) => result,
            None => connection.await,
        }
        .map_err(HttpError::from)
    };
    Ok((
        http::Response::from_parts(parts, body.boxed_unsync()),
        Box::new(done),
    ))
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// The addresses of `host`: itself when it is an IP literal.
async fn resolve(host: &str, port: u16, within: Duration) -> Result<Vec<SocketAddr>, HttpError> {
    if let Some(ip) = literal_ip(host) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found = timeout(within, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| HttpError::DnsTimeout)?
        .map_err(|_| HttpError::DestinationNotFound)?;
    let addresses: Vec<SocketAddr> = found.collect();
    if addresses.is_empty() {
        return Err(HttpError::DestinationNotFound);
    }
    Ok(addresses)
}

/// What kind of non-public address `ip` is, if it is one.
pub(crate) fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_unspecified() || a == 0 {
                Some("unspecified")
            } else if v4.is_broadcast() || v4.is_multicast() || v4.is_documentation() || a >= 240 {
                Some("reserved")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("reserved")
            } else {
                None
            }
        }
    }
}

/// A response body that counts what it passes, fails past its limit, and
/// fails when the server goes quiet for too long.
struct Bounded {
    inner: hyper::body::Incoming,
    left: u64,
    limit: u64,
    counters: Arc<HttpCounters>,
    idle: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for Bounded {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.timer = None;
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    self.counters.bytes_in.fetch_add(len, Ordering::Relaxed);
                    if len > self.left {
                        let limit = self.limit;
                        return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(
                            limit,
                        )))));
                    }
                    self.left -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(HttpError::from(error)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let idle = self.idle;
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_own_network_is_not_public() {
        for (ip, kind) in [
            ("127.0.0.1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("192.168.0.1", Some("private")),
            ("100.64.0.1", Some("private")),
            ("169.254.169.254", Some("link-local")),
            ("0.0.0.0", Some("unspecified")),
            ("::1", Some("loopback")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("fd00::1", Some("private")),
            ("fe80::1", Some("link-local")),
            ("93.184.216.34", None),
            ("2606:4700::1111", None),
        ] {
            assert_eq!(non_public(ip.parse().unwrap()), kind, "{ip}");
        }
    }
}
