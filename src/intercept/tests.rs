use std::time::{Duration, SystemTime};

use super::leaf::{grant_for_test, mint_at, CACHE_MAX, LEAF_LIFETIME};
use super::*;

fn ca_for(names: &[&str]) -> InterceptCa {
    let names = init::permitted_names(names.iter().copied()).unwrap();
    let (pem, key) = init::generate(&names, SystemTime::now()).unwrap();
    InterceptCa::from_parts(&pem, key, Source::Env("UNUSED".into())).unwrap()
}

#[test]
fn name_constraints_decide_what_may_be_minted() {
    let ca = ca_for(&["api.payments.example", "*.shipper.example"]);
    let cases = [
        ("exact host", "api.payments.example", true),
        ("upper case", "API.Payments.Example", true),
        ("below an exact host", "x.api.payments.example", true),
        ("sibling", "other.payments.example", false),
        ("parent", "payments.example", false),
        ("suffix trick", "evilapi.payments.example", false),
        ("wildcard member", "a.shipper.example", true),
        ("wildcard apex", "shipper.example", true),
        ("unrelated", "bank.example", false),
        ("ip", "127.0.0.1", false),
    ];
    for (name, host, want) in cases {
        assert_eq!(ca.permits(host), want, "{name}");
        let minted = mint_at(&ca, &grant_for_test(host), SystemTime::now());
        assert_eq!(minted.is_ok(), want, "{name}: minting");
    }
}

#[test]
fn a_ca_without_name_constraints_mints_nothing() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let pem = params.self_signed(&key).unwrap().pem();
    let ca = InterceptCa::from_parts(&pem, key, Source::Env("UNUSED".into())).unwrap();
    assert!(ca.permitted().is_none());
    assert!(!ca.permits("api.payments.example"));
    let minted = mint_at(&ca, &grant_for_test("api.payments.example"), SystemTime::now());
    assert_eq!(minted.err(), Some(MintError::NotPermitted));
}

#[test]
fn a_key_of_another_ca_is_refused() {
    let names = init::permitted_names(["a.example"]).unwrap();
    let (pem, _) = init::generate(&names, SystemTime::now()).unwrap();
    let (_, other) = init::generate(&names, SystemTime::now()).unwrap();
    let err = InterceptCa::from_parts(&pem, other, Source::Env("UNUSED".into())).unwrap_err();
    assert!(matches!(err, LoadError::Key(_)), "{err:?}");
}

#[test]
fn leaves_are_cached_renewed_and_bounded() {
    let ca = ca_for(&["example"]);
    let t0 = SystemTime::now();
    let g = grant_for_test("a.example");
    let first = mint_at(&ca, &g, t0).unwrap();
    let again = mint_at(&ca, &g, t0 + Duration::from_secs(3600)).unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &again), "cached within its life");
    let later = mint_at(&ca, &g, t0 + LEAF_LIFETIME / 2 + Duration::from_secs(60)).unwrap();
    assert!(!std::sync::Arc::ptr_eq(&first, &later), "re-minted past half its life");
    for i in 0..CACHE_MAX + 10 {
        mint_at(&ca, &grant_for_test(&format!("h{i}.example")), t0).unwrap();
    }
    assert!(ca.cached_leaves() <= CACHE_MAX, "{}", ca.cached_leaves());
}

#[test]
fn permitted_names_refuse_what_cannot_be_constrained() {
    assert_eq!(
        init::permitted_names(["*.b.example", "A.example.", "a.example"]).unwrap(),
        vec!["a.example".to_owned(), "b.example".to_owned()]
    );
    for bad in ["127.0.0.1", "::1", "bad_name.example", ""] {
        assert!(init::permitted_names([bad]).is_err(), "{bad}");
    }
    assert!(init::permitted_names([]).is_err(), "nothing to permit");
}

#[test]
fn debug_hides_the_key() {
    let ca = ca_for(&["a.example"]);
    let text = format!("{ca:?}");
    assert!(text.contains("<redacted>") && !text.contains("PRIVATE"), "{text}");
}
