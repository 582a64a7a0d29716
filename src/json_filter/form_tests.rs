//! Table tests of the form filter: what is kept, removed and refused.

use super::filter_form;
use crate::json_filter::{FieldPath, FieldRules, FormError, ListMode};

fn rules(mode: ListMode, paths: &[&str]) -> FieldRules {
    FieldRules::new(mode, paths.iter().map(|p| FieldPath::parse(p).unwrap()).collect())
}

const STRIPE_ALLOW: &[&str] = &["amount", "currency", "customer", "metadata.order_id", "items[].sku"];
const DENY: &[&str] = &["customer_note", "billing.email", "items[].price", "*.phone"];

#[test]
fn allow_list() {
    let r = rules(ListMode::Allow, STRIPE_ALLOW);
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("all kept", "amount=100&currency=eur", "amount=100&currency=eur", &[]),
        ("metadata kept and removed", "amount=1&metadata%5Border_id%5D=7&metadata[email]=a%40b", "amount=1&metadata%5Border_id%5D=7", &["metadata.email"]),
        ("indexed items", "items[0][sku]=A&items[0][price]=9&items[1][sku]=B", "items[0][sku]=A&items[1][sku]=B", &["items[].price"]),
        ("appended items", "items[][sku]=A", "items[][sku]=A", &[]),
        ("key where an array is listed", "items[x][sku]=A", "", &["items.x"]),
        ("container where a scalar is listed keeps its subtree", "customer[id]=1", "customer[id]=1", &[]),
        ("scalar on the way", "metadata=x", "", &["metadata"]),
        ("case matters in allow lists", "Amount=1", "", &["Amount"]),
        ("value bytes untouched", "customer=cus_1+x%2By&email=e", "customer=cus_1+x%2By", &["email"]),
        ("empty pairs dropped on rewrite", "&&amount=1&&x=2&", "amount=1", &["x"]),
        ("no value", "amount&x", "amount", &["x"]),
    ];
    for (label, input, want, removed) in cases {
        let mut out = Vec::new();
        let o = filter_form(input.as_bytes(), &r, false, false, &mut out).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(String::from_utf8(out).unwrap(), *want, "{label}");
        assert_eq!(o.removed, *removed, "{label}");
    }
}

#[test]
fn deny_list() {
    let r = rules(ListMode::Deny, DENY);
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("plain", "customer_note=hi&a=1", "a=1", &["customer_note"]),
        ("folded case", "Customer_Note=hi&a=1", "a=1", &["Customer_Note"]),
        ("fullwidth", "%EF%BD%83ustomer_note=hi&a=1", "a=1", &["ｃustomer_note"]),
        ("nested", "billing[email]=x&billing[city]=B", "billing[city]=B", &["billing.email"]),
        ("encoded brackets", "billing%5Bemail%5D=x&a=1", "a=1", &["billing.email"]),
        ("whole container denied", "customer_note[x]=1", "", &["customer_note"]),
        ("index", "items[3][price]=1&items[3][sku]=A", "items[3][sku]=A", &["items[].price"]),
        ("object spelling of an array", "items[k][price]=1", "", &["items.k.price"]),
        ("append", "items[][price]=1", "", &["items[].price"]),
        ("any key", "shipping[phone]=1&billing[phone]=2", "", &["shipping.phone", "billing.phone"]),
        ("nothing denied", "a=1&b[c]=2", "a=1&b[c]=2", &[]),
    ];
    for (label, input, want, removed) in cases {
        let mut out = Vec::new();
        let o = filter_form(input.as_bytes(), &r, false, false, &mut out).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(String::from_utf8(out).unwrap(), *want, "{label}");
        assert_eq!(o.removed, *removed, "{label}");
    }
}

#[test]
fn refusals() {
    let r = rules(ListMode::Deny, DENY);
    #[rustfmt::skip]
    let cases: &[(&str, &str, FormError)] = &[
        ("bad percent", "a=%zz", FormError::Malformed),
        ("truncated percent", "a%2=1", FormError::Malformed),
        ("latin-1 value", "a=%E9", FormError::Malformed),
        ("latin-1 name", "%E9=1", FormError::Malformed),
        ("unbalanced open", "a[b=1", FormError::Malformed),
        ("unbalanced close", "a]=1", FormError::Malformed),
        ("encoded unbalanced", "a%5Bb=1", FormError::Malformed),
        ("dot name", "customer.note=1", FormError::Malformed),
        ("plus is a space", "customer+note=1", FormError::Malformed),
        ("nul in name", "customer_note%00=1", FormError::Malformed),
        ("raw semicolon", "a=1;customer_note=2", FormError::Malformed),
        ("empty name", "=1", FormError::Malformed),
        ("duplicate scalar", "a=1&a=2", FormError::Duplicate),
        ("duplicate nested", "a[b]=1&a%5Bb%5D=2", FormError::Duplicate),
        ("scalar then container", "a=1&a[b]=2", FormError::Conflict),
        ("container then scalar", "a[b]=1&a=2", FormError::Conflict),
        ("scalar then append", "a=1&a[]=2", FormError::Conflict),
        ("deep", "a[1][2][3][4][5][6]=1", FormError::TooDeep),
    ];
    for (label, input, want) in cases {
        let mut out = Vec::new();
        assert_eq!(
            filter_form(input.as_bytes(), &r, false, false, &mut out).map(|_| ()),
            Err(*want),
            "{label}"
        );
        assert!(out.is_empty(), "{label}: output left behind");
    }
    let mut out = Vec::new();
    for ok in ["a[]=1&a[]=2", "a[b]=1&a[c]=2", "a[0]=1&a[1]=2", "a=&b="] {
        assert!(filter_form(ok.as_bytes(), &r, false, false, &mut out).is_ok(), "{ok}");
    }
}

#[test]
fn card_scan_and_fields() {
    let r = rules(ListMode::Deny, DENY);
    let mut out = Vec::new();
    for (input, card) in [
        ("note=4111+1111+1111+1111", true),
        ("note=Karte%3A%204111-1111-1111-1111", true),
        ("4111111111111111=x", true),
        ("customer_note=4111111111111111", false),
        ("amount=1000", false),
    ] {
        let o = filter_form(input.as_bytes(), &r, true, false, &mut out).unwrap();
        assert_eq!(o.card_found, card, "{input}");
    }
    let o = filter_form(b"a=1&b[c][0][d]=2&b[c][1][d]=3", &r, false, true, &mut out).unwrap();
    assert_eq!(o.fields, ["a", "b", "b.c", "b.c[].d"]);
}
