//! Words both sides of the proxy use without importing each other: the
//! refusal map, the audit line and the metrics all speak of a `Reason`; the
//! policy sets the anomaly detector's `Thresholds`. Data does not know its users.

use std::time::Duration;

/// Why a request was refused: the reason code clients and logs see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    // The client sent something wrong.
    BadRequest,
    ProxyAuthRequired,
    MalformedBody,
    BodyTooLarge,
    UnsupportedMediaType,
    RequestTimeout,
    // The policy refuses it.
    DestinationNotAllowed,
    RouteNotAllowed,
    PlainHttpRefused,
    TunnelNotAllowed,
    AddressNotAllowed,
    FieldNotAllowed,
    SensitiveValue,
    InvalidValue,
    RateLimited,
    // The upstream failed.
    UpstreamUnavailable,
    UpstreamTimeout,
    /// An OAuth2 token could not be obtained.
    CredentialUnavailable,
}

impl Reason {
    pub const fn code(self) -> &'static str {
        match self {
            Reason::BadRequest => "bad_request",
            Reason::ProxyAuthRequired => "proxy_auth_required",
            Reason::MalformedBody => "malformed_body",
            Reason::BodyTooLarge => "body_too_large",
            Reason::UnsupportedMediaType => "unsupported_media_type",
            Reason::RequestTimeout => "request_timeout",
            Reason::DestinationNotAllowed => "destination_not_allowed",
            Reason::RouteNotAllowed => "route_not_allowed",
            Reason::PlainHttpRefused => "plain_http_refused",
            Reason::TunnelNotAllowed => "tunnel_not_allowed",
            Reason::AddressNotAllowed => "address_not_allowed",
            Reason::FieldNotAllowed => "field_not_allowed",
            Reason::SensitiveValue => "sensitive_value",
            Reason::InvalidValue => "invalid_value",
            Reason::RateLimited => "rate_limited",
            Reason::UpstreamUnavailable => "upstream_unavailable",
            Reason::UpstreamTimeout => "upstream_timeout",
            Reason::CredentialUnavailable => "credential_unavailable",
        }
    }
}

/// The anomaly detector's limits, set by the policy's `monitor:` section.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub window: Duration,
    pub warmup_windows: u32,
    pub spike_factor: f64,
    pub spike_min_requests: u64,
    pub refusal_burst: u64,
    pub unknown_destinations: u64,
    pub auth_failures: u64,
    pub body_factor: f64,
    pub body_min_bytes: u64,
    pub body_warmup: u64,
    pub field_warmup: u64,
    pub max_fields_per_route: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            window: Duration::from_secs(60),
            warmup_windows: 3,
            spike_factor: 4.0,
            spike_min_requests: 30,
            refusal_burst: 20,
            unknown_destinations: 1,
            auth_failures: 5,
            body_factor: 10.0,
            body_min_bytes: 8192,
            body_warmup: 20,
            field_warmup: 20,
            max_fields_per_route: 512,
        }
    }
}
