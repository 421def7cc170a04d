//! One destination a node may reach over HTTP, and how a request is matched
//! against it.

use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;
use serde::de::{self, Deserializer};

/// A destination granted to a node: `https://api.example.com`,
/// `http://127.0.0.1:8080`, `https://*.example.org/v1/`, optionally
/// limited to some methods.
///
/// ```
/// use flow_host::runtime::HttpGrant;
///
/// let grant: HttpGrant = "https://*.example.org/v1/".parse().unwrap();
/// assert!(grant.allows("GET", "https", "api.example.org", 443, "/v1/users"));
/// assert!(!grant.allows("GET", "https", "example.org", 443, "/v1/users"));
/// assert!(!grant.allows("GET", "https", "api.example.org", 443, "/v2/"));
/// assert!(!grant.allows("GET", "http", "api.example.org", 80, "/v1/"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGrant {
    /// `http` or `https`.
    pub scheme: String,
    /// The host, lower case; `*.example.org` matches every subdomain of
    /// `example.org` (not `example.org` itself).
    pub host: String,
    /// The port: the one written, or the scheme's.
    pub port: u16,
    /// Requests' paths must start with this (`/` when none is written); a
    /// prefix without a trailing `/` matches whole segments only.
    pub path: String,
    /// Allowed methods, upper case; empty for any.
    pub methods: Vec<String>,
    /// Whether the host may resolve to a loopback, private or link-local
    /// address. Always true for a grant whose host is such an address.
    pub private: bool,
}

/// Why a grant cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GrantError(String);

impl std::str::FromStr for HttpGrant {
    type Err = GrantError;

    fn from_str(text: &str) -> Result<Self, GrantError> {
        let bad = |why: &str| {
            GrantError(format!(
                "{why} in the HTTP grant \"{text}\"; write it as \"https://api.example.com\", \
                 \"http://127.0.0.1:8080\" or \"https://*.example.org/v1/\""
            ))
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port =
            default_port(&scheme).ok_or_else(|| bad("the scheme must be http or https"))?;
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        if path.contains(['?', '#']) || has_dot_segment(path) {
            return Err(bad("a query, a fragment or a `.` segment"));
        }
        if authority.contains('@') {
            return Err(bad("user information"));
        }
        let (host, port) = split_port(authority).ok_or_else(|| bad("a bad port"))?;
        let host = host.to_ascii_lowercase();
        let name = host.strip_prefix("*.").unwrap_or(&host);
        let valid_name = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !(valid_name || (name == host && literal_ip(&host).is_some())) {
            return Err(bad("a bad host"));
        }
        let private = literal_ip(&host).is_some();
        Ok(HttpGrant {
            scheme,
            host,
            port: port.unwrap_or(default_port),
            path: path.to_string(),
            methods: Vec::new(),
            private,
        })
    }
}

impl HttpGrant {
    /// Whether a request of `method` to `scheme://host:port/path` is
    /// allowed. `host` is compared without case; a path with `.` or `..`
    /// segments is never allowed.
    pub fn allows(&self, method: &str, scheme: &str, host: &str, port: u16, path: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host_matches = match self.host.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => self.host.trim_start_matches('[').trim_end_matches(']') == host,
        };
        let path = path.split(['?', '#']).next().unwrap_or("");
        let path = if path.is_empty() { "/" } else { path };
        let path_matches = !has_dot_segment(path)
            && path.starts_with(&self.path)
            && (self.path.ends_with('/')
                || path.len() == self.path.len()
                || path[self.path.len()..].starts_with('/'));
        self.scheme.eq_ignore_ascii_case(scheme)
            && host_matches
            && self.port == port
            && path_matches
            && (self.methods.is_empty()
                || self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
    }

    /// Whether the grant names this address itself (an IP literal), so
    /// that reaching it is what the workflow asked for.
    pub fn names_address(&self) -> bool {
        literal_ip(&self.host).is_some()
    }

    /// The grant that would allow a request to `scheme://host:port`:
    /// what a refusal suggests.
    pub fn suggest(scheme: &str, host: &str, port: u16) -> String {
        let default = matches!((scheme, port), ("http", 80) | ("https", 443));
        if default {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{port}")
        }
    }
}

impl fmt::Display for HttpGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = Self::suggest(&self.scheme, &self.host, self.port);
        let path = if self.path == "/" { "" } else { &self.path };
        write!(f, "{url}{path}")?;
        if !self.methods.is_empty() {
            write!(f, " ({})", self.methods.join(", "))?;
        }
        Ok(())
    }
}

/// The port of a scheme, when none is written: 80 for `http`, 443 for
/// `https`.
pub(crate) fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The port a request goes to: the one in its URI, else its scheme's.
pub(crate) fn port_of(uri: &http::Uri) -> u16 {
    uri.port_u16()
        .or_else(|| default_port(uri.scheme_str().unwrap_or("https")))
        .unwrap_or(443)
}

/// `host` as an IP address, when it is one (`127.0.0.1`, `[::1]`).
pub(crate) fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Splits `host[:port]` (IPv6 in brackets); `None` for a bad port.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = match authority.rfind(':') {
        Some(at) if !authority[at..].contains(']') => {
            (&authority[..at], Some(&authority[at + 1..]))
        }
        _ => (authority, None),
    };
    match port {
        Some(port) => port
            .parse()
            .ok()
            .filter(|&p| p != 0)
            .map(|p| (host, Some(p))),
        None => Some((host, None)),
    }
}

/// Whether a path has `.` or `..` segments, written plainly or
/// percent-encoded, which a server may resolve out of a granted prefix.
fn has_dot_segment(path: &str) -> bool {
    let lower = path.to_ascii_lowercase().replace("%2e", ".");
    lower
        .split(['/', '\\'])
        .any(|segment| segment == "." || segment == "..")
        || lower.contains("%2f")
        || lower.contains("%5c")
}

/// A grant as written in a workflow file: a URL, or a table with `url` and
/// optionally `methods` and `private`.
impl<'de> Deserialize<'de> for HttpGrant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Url(String),
            Table(Table),
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            url: String,
            #[serde(default)]
            methods: Vec<String>,
            #[serde(default)]
            private: bool,
        }
        let written = Written::deserialize(deserializer).map_err(|_| {
            de::Error::custom(
                "an HTTP grant is a URL such as \"https://api.example.com\", or a table \
                 { url = \"...\", methods = [\"GET\"], private = false }",
            )
        })?;
        match written {
            Written::Url(url) => url.parse().map_err(de::Error::custom),
            Written::Table(table) => {
                let mut grant: HttpGrant = table.url.parse().map_err(de::Error::custom)?;
                for method in &table.methods {
                    if method.is_empty() || !method.chars().all(|c| c.is_ascii_alphabetic()) {
                        return Err(de::Error::custom(format!(
                            "\"{method}\" is not an HTTP method; write \"GET\", \"POST\", ..."
                        )));
                    }
                }
                grant.methods = table
                    .methods
                    .iter()
                    .map(|m| m.to_ascii_uppercase())
                    .collect();
                grant.private |= table.private;
                Ok(grant)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(text: &str) -> HttpGrant {
        text.parse().unwrap()
    }

    #[test]
    fn ports_default_to_the_schemes() {
        assert_eq!(grant("https://a.example").port, 443);
        assert_eq!(grant("http://a.example").port, 80);
        assert_eq!(grant("http://127.0.0.1:8080").port, 8080);
        assert_eq!(grant("http://[::1]:9").port, 9);
        assert!(grant("http://[::1]:9").names_address());
        assert!(!grant("https://a.example").allows("GET", "https", "a.example", 8443, "/"));
    }

    #[test]
    fn paths_match_whole_segments() {
        let g = grant("https://a.example/v1");
        assert!(g.allows("GET", "https", "a.example", 443, "/v1"));
        assert!(g.allows("GET", "https", "a.example", 443, "/v1/x?q=1"));
        assert!(!g.allows("GET", "https", "a.example", 443, "/v10"));
        assert!(!g.allows("GET", "https", "a.example", 443, "/v1/../admin"));
        assert!(!g.allows("GET", "https", "a.example", 443, "/v1/%2E%2E/admin"));
        assert!(!g.allows("GET", "https", "a.example", 443, "/v1/..%2fadmin"));
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let g = grant("https://*.example.org");
        assert!(g.allows("GET", "https", "API.example.org", 443, "/"));
        assert!(g.allows("GET", "https", "a.b.example.org", 443, "/"));
        assert!(!g.allows("GET", "https", "example.org", 443, "/"));
        assert!(!g.allows("GET", "https", "evilexample.org", 443, "/"));
    }

    #[test]
    fn methods_limit_a_grant() {
        let g: HttpGrant = toml::from_str::<toml::Table>(
            "g = { url = \"https://a.example\", methods = [\"get\"] }",
        )
        .unwrap()["g"]
            .clone()
            .try_into()
            .unwrap();
        assert!(g.allows("GET", "https", "a.example", 443, "/"));
        assert!(!g.allows("POST", "https", "a.example", 443, "/"));
        assert_eq!(g.to_string(), "https://a.example (GET)");
    }

    #[test]
    fn bad_grants_say_how_to_write_one() {
        for bad in [
            "api.example.com",
            "ftp://a.example",
            "https://",
            "https://a.example:0",
            "https://u@a.example",
            "https://a..example",
            "https://a.example/x?y",
        ] {
            let error = bad.parse::<HttpGrant>().unwrap_err().to_string();
            assert!(error.contains("write it as"), "{bad}: {error}");
        }
    }
}
