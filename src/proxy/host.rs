//! A host a request may name, validated once: an LDH reg-name, a strict
//! dotted-quad IPv4 address or a bracketed IPv6 address, with at most one
//! numeric port. `Host` can only be built here, so the host the policy matched
//! is the host the dialer, SNI, upstream URI and `Host` header use.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The authority was not a valid `host[:port]`; carries no copy of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadHost;

/// Longest reg-name accepted (RFC 1035), without the optional trailing dot.
const MAX_NAME: usize = 253;
/// Longest label (RFC 1035).
const MAX_LABEL: usize = 63;

/// A validated, canonical host: lower-case name without a trailing dot, or an
/// IP address in its canonical text form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Canonical text; for IPv6 without brackets.
    text: String,
    v6: bool,
}

impl Host {
    /// The host as the policy matches it and the resolver takes it (IPv6 without brackets).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The host as a URI authority writes it (IPv6 in brackets).
    pub fn uri_host(&self) -> String {
        if self.v6 {
            format!("[{}]", self.text)
        } else {
            self.text.clone()
        }
    }

    /// Parses a host without a port: a reg-name, a dotted quad or `[IPv6]`.
    pub fn parse(s: &str) -> Result<Host, BadHost> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(BadHost)?;
            // Zone identifiers (`%25eth0`) and IPvFuture fail this parse: refused.
            let ip: Ipv6Addr = inner.parse().map_err(|_| BadHost)?;
            return Ok(Host {
                text: ip.to_string(),
                v6: true,
            });
        }
        let name = s.strip_suffix('.').unwrap_or(s);
        if ends_in_number(name) {
            // Resolvers read `0x7f.1`, `127.1` or `0177.0.0.1` as addresses; only
            // the one spelling every parser agrees on is accepted.
            let ip: Ipv4Addr = name.parse().map_err(|_| BadHost)?;
            if ip.to_string() != name {
                return Err(BadHost);
            }
            return Ok(Host {
                text: ip.to_string(),
                v6: false,
            });
        }
        if name.is_empty() || name.len() > MAX_NAME || !name.split('.').all(valid_label) {
            return Err(BadHost);
        }
        Ok(Host {
            text: name.to_ascii_lowercase(),
            v6: false,
        })
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Letters, digits and inner hyphens, 1 to 63 of them.
fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// WHATWG's "ends in a number": the last label is decimal digits or `0x` hex,
/// so URL parsers and `inet_aton` treat the whole host as an IPv4 address.
fn ends_in_number(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    let hex = last
        .strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    hex || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
}

/// `host[:port]`: the host and, when one is written, a port of 1 to 65535 in
/// plain decimal (no sign, no leading zero, not empty).
pub fn parse_authority(s: &str) -> Result<(Host, Option<u16>), BadHost> {
    let (host, port) = if s.starts_with('[') {
        match s.split_once("]:") {
            Some((h, p)) => (s.get(..=h.len()).ok_or(BadHost)?, Some(p)),
            None => (s, None),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = port.map(parse_port).transpose()?;
    Ok((Host::parse(host)?, port))
}

fn parse_port(p: &str) -> Result<u16, BadHost> {
    let digits = !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if !digits || p.starts_with('0') {
        return Err(BadHost);
    }
    p.parse().map_err(|_| BadHost)
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
