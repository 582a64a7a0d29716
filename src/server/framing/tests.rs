use super::*;

const GOOD_CL: &str = "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
const GOOD_CHUNKED: &str =
    "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
const SMUGGLE: &str = "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";

fn post(headers: &str, body: &str) -> String {
    format!("POST http://a/ HTTP/1.1\r\nHost: a\r\n{headers}\r\n{body}")
}

#[allow(clippy::type_complexity)]
fn cases() -> Vec<(&'static str, Vec<u8>, Scan)> {
    let s = |v: String| v.into_bytes();
    vec![
        (
            "plain get",
            s("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n".into()),
            Scan::Ok,
        ),
        ("content-length body", s(GOOD_CL.into()), Scan::Ok),
        ("chunked body", s(GOOD_CHUNKED.into()), Scan::Ok),
        (
            "chunk extension and trailer",
            s(post(
                "Transfer-Encoding: chunked\r\n",
                "5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
            )),
            Scan::Ok,
        ),
        (
            "blank after chunk size",
            s(post("Transfer-Encoding: chunked\r\n", "5 \t\r\nhello\r\n0\r\n\r\n")),
            Scan::Ok,
        ),
        (
            "upper-case chunk size",
            s(post("Transfer-Encoding: chunked\r\n", "A\r\n0123456789\r\n0\r\n\r\n")),
            Scan::Ok,
        ),
        (
            "empty lines before the request line",
            s(format!("\r\n\n{GOOD_CL}")),
            Scan::Ok,
        ),
        (
            "bare LF line ends",
            s("GET http://a/ HTTP/1.1\nHost: a\n\n".into()),
            Scan::Ok,
        ),
        (
            "names in any case",
            s(post("TRANSFER-ENCODING: Chunked\r\n", "0\r\n\r\n")),
            Scan::Ok,
        ),
        (
            "http/1.0 without host",
            s("GET http://a/ HTTP/1.0\r\n\r\n".into()),
            Scan::Ok,
        ),
        (
            "non-utf-8 value",
            b"GET http://a/ HTTP/1.1\r\nHost: a\r\nX-N: \xff\xfe\r\n\r\n".to_vec(),
            Scan::Ok,
        ),
        (
            "header text inside a body is not a head",
            s(post(
                "Content-Length: 52\r\n",
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            )),
            Scan::Ok,
        ),
        ("cl then te", s(SMUGGLE.into()), Scan::Smuggling),
        (
            "te then cl",
            s(post("transfer-encoding: chunked\r\ncontent-length: 5\r\n", "")),
            Scan::Smuggling,
        ),
        (
            "differing lengths",
            s(post("Content-Length: 5\r\nContent-Length: 6\r\n", "")),
            Scan::Smuggling,
        ),
        (
            "equal lengths twice",
            s(post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello")),
            Scan::Smuggling,
        ),
        (
            "length list",
            s(post("Content-Length: 5, 5\r\n", "hello")),
            Scan::Smuggling,
        ),
        (
            "length with plus",
            s(post("Content-Length: +5\r\n", "hello")),
            Scan::Smuggling,
        ),
        (
            "length in hex",
            s(post("Content-Length: 0x5\r\n", "hello")),
            Scan::Smuggling,
        ),
        (
            "length overflow",
            s(post("Content-Length: 99999999999999999999\r\n", "")),
            Scan::Smuggling,
        ),
        (
            "underscore length",
            s(post("Content_Length: 5\r\nTransfer-Encoding: chunked\r\n", "")),
            Scan::Smuggling,
        ),
        (
            "underscore length alone",
            s(post("Content_Length: 5\r\n", "hello")),
            Scan::Smuggling,
        ),
        (
            "underscore coding alone",
            s(post("Transfer_Encoding: chunked\r\n", "0\r\n\r\n")),
            Scan::Smuggling,
        ),
        (
            "te twice",
            s(post(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            )),
            Scan::Smuggling,
        ),
        (
            "te list",
            s(post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n")),
            Scan::Smuggling,
        ),
        (
            "te chunked not last",
            s(post("Transfer-Encoding: chunked, identity\r\n", "0\r\n\r\n")),
            Scan::Smuggling,
        ),
        (
            "te identity",
            s(post("Transfer-Encoding: identity\r\n", "")),
            Scan::Smuggling,
        ),
        (
            "te in http/1.0",
            s("POST http://a/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".into()),
            Scan::Smuggling,
        ),
        (
            "blank before colon",
            s(post("Transfer-Encoding : chunked\r\n", "0\r\n\r\n")),
            Scan::Smuggling,
        ),
        (
            "obs-fold",
            s(post("X-A: 1\r\n Transfer-Encoding: chunked\r\n", "")),
            Scan::Smuggling,
        ),
        (
            "no host in http/1.1",
            s("GET http://a/ HTTP/1.1\r\n\r\n".into()),
            Scan::Smuggling,
        ),
        ("two hosts", s(post("Host: b\r\n", "")), Scan::Smuggling),
        (
            "the guard's own marker",
            s(post("X-Egress-Guard-Refused: 1\r\n", "")),
            Scan::Smuggling,
        ),
        (
            "lone CR before the request line",
            s(format!("\rx{GOOD_CL}")),
            Scan::Smuggling,
        ),
        (
            "not http/1",
            s("GET / HTTP/2.0\r\nHost: a\r\n\r\n".into()),
            Scan::Smuggling,
        ),
        (
            "connect with a body",
            s("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 5\r\n\r\nhello".into()),
            Scan::Smuggling,
        ),
        (
            "chunk size not hex",
            s(post("Transfer-Encoding: chunked\r\n", "5g\r\nhello\r\n0\r\n\r\n")),
            Scan::Smuggling,
        ),
        (
            "chunk size overflow",
            s(post("Transfer-Encoding: chunked\r\n", "1ffffffffffffffff\r\n")),
            Scan::Smuggling,
        ),
        (
            "chunk size missing",
            s(post("Transfer-Encoding: chunked\r\n", "\r\nhello\r\n")),
            Scan::Smuggling,
        ),
        (
            "chunk size signed",
            s(post("Transfer-Encoding: chunked\r\n", "+5\r\nhello\r\n0\r\n\r\n")),
            Scan::Smuggling,
        ),
        (
            "chunk size 0x",
            s(post("Transfer-Encoding: chunked\r\n", "0x5\r\nhello\r\n0\r\n\r\n")),
            Scan::Smuggling,
        ),
        (
            "chunk size bare LF",
            s(post("Transfer-Encoding: chunked\r\n", "5\nhello\r\n0\r\n\r\n")),
            Scan::Smuggling,
        ),
        (
            "digit after blank",
            s(post("Transfer-Encoding: chunked\r\n", "5 5\r\nhello\r\n")),
            Scan::Smuggling,
        ),
        (
            "chunk data too long",
            s(post("Transfer-Encoding: chunked\r\n", "5\r\nhelloX\r\n0\r\n\r\n")),
            Scan::Smuggling,
        ),
        (
            "chunk extension too long",
            s(post(
                "Transfer-Encoding: chunked\r\n",
                &format!("5;{}\r\n", "x".repeat(2000)),
            )),
            Scan::Smuggling,
        ),
        (
            "trailer bare LF",
            s(post("Transfer-Encoding: chunked\r\n", "0\r\nX-T: 1\n\r\n")),
            Scan::Smuggling,
        ),
        (
            "head too long",
            s(format!(
                "GET http://a/ HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
                "x".repeat(MAX_HEAD)
            )),
            Scan::Smuggling,
        ),
        (
            "smuggling in the second pipelined request",
            s(format!("{GOOD_CL}{GOOD_CHUNKED}{SMUGGLE}")),
            Scan::Smuggling,
        ),
        (
            "after a refused CONNECT the next head is read",
            s(format!("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n{SMUGGLE}")),
            Scan::Smuggling,
        ),
        (
            "after a head with a non-utf-8 value the next head is read",
            [
                b"GET http://a/ HTTP/1.1\r\nHost: a\r\nX-N: \xff\r\n\r\n".as_slice(),
                SMUGGLE.as_bytes(),
            ]
            .concat(),
            Scan::Smuggling,
        ),
        (
            "after a bare-LF head the next head is read",
            s(format!("GET http://a/ HTTP/1.1\nHost: a\n\n{SMUGGLE}")),
            Scan::Smuggling,
        ),
    ]
}

#[test]
fn framings() {
    for (name, input, want) in cases() {
        let mut whole = Scanner::default();
        assert_eq!(whole.scan(&input), want, "{name}: whole");
        // The same bytes one at a time, as a slow client sends them.
        let mut bytewise = Scanner::default();
        let got = input
            .chunks(1)
            .map(|b| bytewise.scan(b))
            .find(|s| *s == Scan::Smuggling);
        assert_eq!(got.unwrap_or(Scan::Ok), want, "{name}: byte by byte");
        // Split in two at every position: a head's end may straddle two reads
        // (`\n` | `\r\n`), and a head may share its read with the body.
        // (Every position of the short cases; a sample of the long ones, which
        // would make this quadratic.)
        let step = (input.len() / 512).max(1);
        for at in (1..input.len()).step_by(step) {
            let mut two = Scanner::default();
            let (a, b) = input.split_at(at);
            let got = match two.scan(a) {
                Scan::Smuggling => Scan::Smuggling,
                Scan::Ok => two.scan(b),
            };
            assert_eq!(got, want, "{name}: split at {at}");
        }
    }
}

#[test]
fn passes_exactly_the_accepted_bytes() {
    let mut sc = Scanner::default();
    let mut out = Vec::new();
    let input = format!("{GOOD_CL}{SMUGGLE}");
    assert_eq!(sc.feed(input.as_bytes(), &mut out), Step::RefusedHead);
    assert_eq!(out, GOOD_CL.as_bytes(), "the refused head is held back");

    let mut sc = Scanner::default();
    let mut out = Vec::new();
    let head = "GET http://a/ HTTP/1.1\r\nHost: a\r\n";
    assert_eq!(sc.feed(head.as_bytes(), &mut out), Step::Done);
    assert!(out.is_empty(), "a partial head is held back");
    assert_eq!(sc.feed(b"\r\n", &mut out), Step::Done);
    assert_eq!(out, format!("{head}\r\n").as_bytes());

    let mut sc = Scanner::default();
    let mut out = Vec::new();
    let bad = post("Transfer-Encoding: chunked\r\n", "5\r\nhello\r\nzz\r\n");
    assert_eq!(sc.feed(bad.as_bytes(), &mut out), Step::RefusedBody);
    assert_eq!(
        out,
        bad.trim_end_matches("zz\r\n").as_bytes(),
        "the body up to the fault"
    );
}

#[test]
fn the_stand_in_head_carries_the_marker_and_passes() {
    let marker = format!("\r\n{REFUSED_MARKER}: ");
    assert!(REFUSED_HEAD.windows(marker.len()).any(|w| w == marker.as_bytes()));
    let mut out = Vec::new();
    // Only a client head is refused for the marker; the stand-in is read as a plain GET by hyper.
    assert_eq!(Scanner::default().feed(REFUSED_HEAD, &mut out), Step::RefusedHead);
}

#[test]
fn connect_waits_for_the_handler() {
    let connect = "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n";
    let mut sc = Scanner::default();
    let mut out = Vec::new();
    let input = format!("{connect}\x16\x03\x01");
    assert_eq!(sc.feed(input.as_bytes(), &mut out), Step::Connect { rest: 3 });
    assert_eq!(out, connect.as_bytes());
    sc.tunnel();
    out.clear();
    assert_eq!(
        sc.feed(SMUGGLE.as_bytes(), &mut out),
        Step::Done,
        "tunnel bytes are not heads"
    );
    assert_eq!(out, SMUGGLE.as_bytes());
}
