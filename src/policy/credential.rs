//! The `basic:` and `oauth2:` credential shapes, compiled. A Basic credential
//! is a fixed header built once; an OAuth2 one names a token endpoint that
//! gets a dialer of its own, with the same address checks as a destination's.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::HeaderValue;
use zeroize::Zeroizing;

use super::compile::{at, key};
use super::errors::Errors;
use super::key_age::KeyAge;
use super::locate::Step;
use super::raw::{ClientAuth, RawBasic, RawCredential, RawOAuth2};
use super::{Credential, Defaults, Secret, Source};
use crate::credentials::{block_key, OAuth2};
use crate::upstream::{ProxySide, TrustRoots, Upstream};

/// What an OAuth2 credential injects before its token arrives (`explain` shows it);
/// a request always replaces it with the real token or is refused.
const PENDING: &str = "Bearer (token fetched when a request needs it)";

/// `basic:` or `oauth2:`: exactly one, and none of the header shape's keys.
pub(super) fn compile(
    c: &RawCredential,
    out: Option<(&TrustRoots, &Arc<ProxySide>)>,
    defaults: &Defaults,
    path: &[Step],
    errs: &mut Errors,
) -> Option<Credential> {
    let shape = "a credential is one of {header, prefix, secret}, `basic:` or `oauth2:`";
    for (name, set) in [
        ("header", c.header.is_some()),
        ("prefix", c.prefix.is_some()),
        ("secret", c.secret.is_some()),
    ] {
        if set {
            errs.push(&at(path, &[key(name)]), shape);
            return None;
        }
    }
    match (&c.basic, &c.oauth2) {
        (Some(b), None) => basic(b, c.rotate_every.as_deref(), path, errs),
        (None, Some(o)) => oauth2(o, c.rotate_every.as_deref(), out, defaults, path, errs),
        _ => {
            errs.push(path, shape);
            None
        }
    }
}

/// Reads one secret source; a mistake is reported at `path`.
fn read(spec: &str, path: &[Step], errs: &mut Errors) -> Option<(Source, Secret)> {
    let source = Source::parse(spec).map_err(|e| errs.push(path, e)).ok()?;
    let secret = source.read().map_err(|e| errs.push(path, e)).ok()?;
    Some((source, secret))
}

/// The long-lived secret of a shape (the Basic password, the OAuth2 client
/// secret): its age is read before its content (`rotate_every` applies to it),
/// so a file replaced in between makes the age too old, never too young.
fn read_aged(
    spec: &str,
    rotate_every: Option<&str>,
    path: &[Step],
    cred_path: &[Step],
    errs: &mut Errors,
) -> Option<(Source, Secret, KeyAge)> {
    let source = Source::parse(spec).map_err(|e| errs.push(path, e)).ok()?;
    let age = KeyAge::read(rotate_every, &source)
        .map_err(|e| errs.push(&at(cred_path, &[key("rotate_every")]), e))
        .ok()?;
    let secret = source.read().map_err(|e| errs.push(path, e)).ok()?;
    Some((source, secret, age))
}

fn basic(b: &RawBasic, rotate_every: Option<&str>, cred_path: &[Step], errs: &mut Errors) -> Option<Credential> {
    let path = &at(cred_path, &[key("basic")]);
    let user = read(&b.username, &at(path, &[key("username")]), errs);
    let pass = read_aged(
        &b.password,
        rotate_every,
        &at(path, &[key("password")]),
        cred_path,
        errs,
    );
    let ((user_source, user), (source, pass, key_age)) = (user?, pass?);
    // RFC 7617: the first colon ends the user-id, so one inside it would move the split.
    if user.bytes().contains(&b':') {
        errs.push(&at(path, &[key("username")]), "a Basic user name holds no `:`");
        return None;
    }
    let mut pair = Zeroizing::new(Vec::with_capacity(user.bytes().len() + 1 + pass.bytes().len()));
    pair.extend_from_slice(user.bytes());
    pair.push(b':');
    pair.extend_from_slice(pass.bytes());
    let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pair.as_slice()));
    let mut full = Zeroizing::new(b"Basic ".to_vec());
    full.extend_from_slice(encoded.as_bytes());
    let Ok(mut value) = HeaderValue::from_maybe_shared(Bytes::from_owner(full)) else {
        errs.push(&at(path, &[key("password")]), "not usable in a header");
        return None;
    };
    value.set_sensitive(true);
    // The pair's forms include its base64, so an echoed header is masked too.
    let forms = Arc::new(crate::scrub::Forms::new([pass.bytes().as_ref(), pair.as_slice()]));
    Some(Credential {
        header: AUTHORIZATION,
        value,
        secret: pass,
        forms,
        source,
        oauth2: None,
        more_sources: vec![user_source],
        key_age,
    })
}

fn oauth2(
    o: &RawOAuth2,
    rotate_every: Option<&str>,
    out: Option<(&TrustRoots, &Arc<ProxySide>)>,
    defaults: &Defaults,
    cred_path: &[Step],
    errs: &mut Errors,
) -> Option<Credential> {
    let path = &at(cred_path, &[key("oauth2")]);
    let token_uri = token_uri(&o.token_url).map_err(|e| errs.push(&at(path, &[key("token_url")]), e));
    let id = read(&o.client_id, &at(path, &[key("client_id")]), errs);
    let secret = read_aged(
        &o.client_secret,
        rotate_every,
        &at(path, &[key("client_secret")]),
        cred_path,
        errs,
    );
    let scope = o.scope.as_deref().filter(|s| !s.is_empty());
    if scope.is_some_and(|s| {
        !s.bytes()
            .all(|b| b == b' ' || (b'!'..=b'~').contains(&b) && b != b'"' && b != b'\\')
    }) {
        errs.push(
            &at(path, &[key("scope")]),
            "scope tokens are printable ASCII without `\"` or `\\`",
        );
    }
    let connect_to = match o.connect_to.as_deref().map(str::parse::<SocketAddr>) {
        None => None,
        Some(Ok(a)) => Some(a),
        Some(Err(_)) => {
            errs.push(
                &at(path, &[key("connect_to")]),
                "expected an address like 127.0.0.1:8443",
            );
            None
        }
    };
    let (roots, side) = out?;
    let upstream = Upstream::new(
        roots,
        o.ca_file.as_deref(),
        connect_to,
        defaults.connect_timeout_ms,
        side,
    )
    .map_err(|e| errs.push(&at(path, &[key("ca_file")]), e))
    .ok();
    let (token_uri, (id_source, client_id), (source, client_secret, key_age)) = (token_uri.ok()?, id?, secret?);
    let client_auth = o.client_auth.unwrap_or(ClientAuth::Basic);
    let key = block_key(&[
        o.token_url.as_bytes(),
        client_id.bytes(),
        client_secret.bytes(),
        scope.unwrap_or("").as_bytes(),
        client_auth.yaml_name().as_bytes(),
        o.connect_to.as_deref().unwrap_or("").as_bytes(),
        o.ca_file.as_deref().unwrap_or("").as_bytes(),
    ]);
    let cfg = OAuth2 {
        token_uri,
        client_id,
        client_secret: client_secret.clone(),
        scope: scope.map(str::to_owned),
        client_auth,
        upstream: upstream?,
        timeout: std::time::Duration::from_millis(defaults.request_timeout_ms.min(10_000)),
        key,
    };
    let forms = Arc::new(crate::scrub::Forms::new([client_secret.bytes().as_ref()]));
    Some(Credential {
        header: AUTHORIZATION,
        value: HeaderValue::from_static(PENDING),
        secret: client_secret,
        forms,
        source,
        oauth2: Some(Arc::new(cfg)),
        more_sources: vec![id_source],
        key_age,
    })
}

/// An `https://` URL with a host and no user info or fragment.
fn token_uri(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url.parse().map_err(|_| "not a URL".to_owned())?;
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    if uri.scheme_str() != Some("https") {
        return Err("the token endpoint must be an https:// URL".to_owned());
    }
    if authority.is_empty() || authority.contains('@') || uri.host().is_none_or(str::is_empty) {
        return Err("expected https://host[:port]/path, without user info".to_owned());
    }
    if uri.port_u16() == Some(0) {
        return Err("port must be 1 to 65535".to_owned());
    }
    Ok(uri)
}
