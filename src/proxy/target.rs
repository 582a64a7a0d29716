//! Where a request wants to go, read from its request line and `Host`
//! header: absolute-form (cURL with CURLOPT_PROXY), origin-form with `Host`
//! (the unix socket) and authority-form (CONNECT). Anything ambiguous is a
//! `bad_request`: two parsers that disagree on the target is how smuggling starts.

use http::{header, HeaderMap, Method, Uri};

use super::host::{parse_authority, Host};
use crate::proxy::decide::{Ask, Scheme};
use crate::proxy::pathnorm;

/// The parsed target of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scheme: Scheme,
    /// Validated: the only host the decision, the dialer and the upstream URI see.
    pub host: Host,
    pub port: Option<u16>,
    /// Normalised; empty for CONNECT.
    pub path: String,
    /// Raw query, without `?`.
    pub query: Option<String>,
}

impl Target {
    /// What this target asks the policy for: the one way an `Ask` is built.
    pub fn ask<'a>(&'a self, method: &'a Method) -> Ask<'a> {
        Ask {
            method,
            scheme: self.scheme,
            host: self.host.as_str(),
            port: self.port,
            path: &self.path,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadTarget;

pub fn parse(method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<Target, BadTarget> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let host_header = match (hosts.next(), hosts.next()) {
        (Some(h), None) => Some(h.to_str().map_err(|_| BadTarget)?),
        (None, _) => None,
        (Some(_), Some(_)) => return Err(BadTarget),
    };
    if method == Method::CONNECT {
        return connect_target(uri);
    }
    let (scheme, host, port) = match uri.scheme_str() {
        Some(s) => {
            let scheme = match s {
                "http" => Scheme::Http,
                "https" => Scheme::Https,
                _ => return Err(BadTarget),
            };
            // Userinfo, percent-escapes and extra colons all fail the host grammar.
            let authority = uri.authority().ok_or(BadTarget)?;
            let (host, port) = split_authority(authority.as_str())?;
            // The Host header, when sent, must name the same place as the URL.
            if let Some(h) = host_header {
                let (hh, hp) = split_authority(h)?;
                if hh != host || !same_port(scheme, hp, port) {
                    return Err(BadTarget);
                }
            }
            (scheme, host, port)
        }
        None => {
            let (host, port) = split_authority(host_header.ok_or(BadTarget)?)?;
            (Scheme::Http, host, port)
        }
    };
    let raw_path = uri.path();
    let path = pathnorm::normalise(if raw_path.is_empty() { "/" } else { raw_path }).map_err(|_| BadTarget)?;
    Ok(Target {
        scheme,
        host,
        port,
        path,
        query: uri.query().map(str::to_owned),
    })
}

/// A CONNECT's target: authority-form only, with a port.
fn connect_target(uri: &Uri) -> Result<Target, BadTarget> {
    let authority = uri.authority().ok_or(BadTarget)?;
    if uri.scheme().is_some()
        || uri
            .path_and_query()
            .is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty())
    {
        return Err(BadTarget);
    }
    let (host, port) = split_authority(authority.as_str())?;
    Ok(Target {
        scheme: Scheme::Connect,
        host,
        port: Some(port.ok_or(BadTarget)?),
        path: String::new(),
        query: None,
    })
}

fn same_port(scheme: Scheme, a: Option<u16>, b: Option<u16>) -> bool {
    let default = if scheme == Scheme::Https { 443 } else { 80 };
    a.unwrap_or(default) == b.unwrap_or(default)
}

/// `host[:port]`, validated by `host::parse_authority`: anything else is a `bad_request`.
fn split_authority(s: &str) -> Result<(Host, Option<u16>), BadTarget> {
    parse_authority(s).map_err(|_| BadTarget)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(hosts: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in hosts {
            h.append(header::HOST, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn targets() {
        let get = Method::GET;
        let connect = Method::CONNECT;
        let cases: &[(&str, &Method, &str, &[&str], Option<(&str, Option<u16>, &str)>)] = &[
            (
                "absolute with host",
                &get,
                "http://API.shop.example/v1/x?a=1",
                &["api.shop.example"],
                Some(("api.shop.example", None, "/v1/x")),
            ),
            (
                "absolute no host header",
                &get,
                "http://api.shop.example/v1",
                &[],
                Some(("api.shop.example", None, "/v1")),
            ),
            (
                "absolute host disagrees",
                &get,
                "http://api.shop.example/v1",
                &["evil.example"],
                None,
            ),
            (
                "absolute port disagrees",
                &get,
                "http://api.shop.example/v1",
                &["api.shop.example:8080"],
                None,
            ),
            (
                "absolute default port equal",
                &get,
                "http://api.shop.example:80/v1",
                &["api.shop.example"],
                Some(("api.shop.example", Some(80), "/v1")),
            ),
            (
                "two host headers",
                &get,
                "http://a.example/",
                &["a.example", "a.example"],
                None,
            ),
            (
                "origin form",
                &get,
                "/v1/x",
                &["a.example"],
                Some(("a.example", None, "/v1/x")),
            ),
            ("origin form no host", &get, "/v1/x", &[], None),
            ("userinfo refused", &get, "http://u@a.example/", &[], None),
            (
                "trailing dot",
                &get,
                "/",
                &["a.example."],
                Some(("a.example", None, "/")),
            ),
            ("bad host chars", &get, "/", &["a_b.example"], None),
            (
                "connect",
                &connect,
                "a.example:443",
                &["a.example:443"],
                Some(("a.example", Some(443), "")),
            ),
            ("connect no port", &connect, "a.example", &[], None),
            ("ftp scheme", &get, "ftp://a.example/", &[], None),
            (
                "host header with a second colon",
                &get,
                "/v1/x",
                &["attacker.example:x.partner.example:80"],
                None,
            ),
            (
                "absolute host header with a second colon",
                &get,
                "http://a.partner.example/v1",
                &["attacker.example:x.partner.example:80"],
                None,
            ),
            (
                "absolute authority with a second colon",
                &get,
                "http://attacker.example:x.partner.example:80/v1",
                &[],
                None,
            ),
            (
                "connect with a second colon",
                &connect,
                "attacker.example:x.partner.example:443",
                &[],
                None,
            ),
            ("connect empty port", &connect, "a.example:", &[], None),
        ];
        for (name, method, uri, hosts, want) in cases {
            let uri: Uri = match uri.parse() {
                Ok(u) => u,
                Err(_) => {
                    assert!(want.is_none(), "{name}: unparsable uri");
                    continue;
                }
            };
            let got = parse(method, &uri, &headers(hosts)).ok();
            let got = got.as_ref().map(|t| (t.host.as_str(), t.port, t.path.as_str()));
            assert_eq!(got, *want, "{name}");
        }
    }
}
