//! The decoder on valid streams at every chunking, on each way a stream can
//! be wrong, and on a bomb (bounded steps); the coding table of headers.

use std::io::Write;

use super::*;
use http::HeaderValue;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A gzip header with every optional part (extra, name, comment, header CRC).
fn gzip_full_header(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::GzBuilder::new()
        .extra(vec![7u8; 300])
        .filename("answer.json")
        .comment("a comment")
        .operating_system(3)
        .write(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    let mut v = e.finish().unwrap();
    // GzBuilder writes no FHCRC: add the flag and two bytes after the comment.
    let body_at = 10 + 2 + 300 + "answer.json".len() + 1 + "a comment".len() + 1;
    v[3] |= FHCRC;
    v.splice(body_at..body_at, [0xAB, 0xCD]);
    v
}

/// Feeds `coded` in pieces of `piece` bytes; returns the output or the first error.
fn run(coding: Coding, coded: &[u8], piece: usize) -> Result<Vec<u8>, Corrupt> {
    let mut d = Decoder::new(coding);
    let mut out = Vec::new();
    let mut pieces = coded.chunks(piece.max(1));
    loop {
        match d.step()? {
            Step::Data(b) => {
                assert!(b.len() <= STEP, "a step gave more than STEP bytes");
                out.extend_from_slice(&b);
            }
            // As the answer does: input that arrives after the end is still fed.
            Step::NeedInput | Step::Done => match pieces.next() {
                Some(p) => d.feed(Bytes::copy_from_slice(p)),
                None if d.ended => return Ok(out),
                None => d.end_input(),
            },
        }
    }
}

fn sample() -> Vec<u8> {
    (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect()
}

#[test]
fn valid_streams_decode_at_any_chunking() {
    let data = sample();
    let cases: Vec<(&str, Coding, Vec<u8>)> = vec![
        ("gzip", Coding::Gzip, gzip(&data)),
        ("gzip, every header part", Coding::Gzip, gzip_full_header(&data)),
        ("deflate (zlib)", Coding::Deflate, zlib(&data)),
        ("gzip, empty content", Coding::Gzip, gzip(b"")),
    ];
    for (name, coding, coded) in cases {
        let want = if name.contains("empty") {
            Vec::new()
        } else {
            data.clone()
        };
        for piece in [1, 7, 4096, usize::MAX] {
            if piece == 1 && coded.len() > 20_000 {
                // Byte at a time over the header and trailer is what matters; the body is long.
                let got = run(coding, &coded, 3).unwrap_or_else(|_| panic!("{name} @3"));
                assert_eq!(got, want, "{name} @3");
                continue;
            }
            let got = run(coding, &coded, piece).unwrap_or_else(|_| panic!("{name} @{piece}"));
            assert_eq!(got, want, "{name} @{piece}");
        }
    }
}

#[test]
fn no_body_at_all_is_an_empty_answer() {
    for coding in [Coding::Gzip, Coding::Deflate] {
        assert_eq!(run(coding, b"", 1).ok(), Some(Vec::new()), "{coding:?}");
    }
}

#[test]
fn wrong_streams_are_errors() {
    let data = sample();
    let gz = gzip(&data);
    let mut bad_crc = gz.clone();
    let n = bad_crc.len();
    bad_crc[n - 6] ^= 1;
    let mut bad_size = gz.clone();
    bad_size[n - 1] ^= 1;
    let mut bad_flags = gz.clone();
    bad_flags[3] = 0x20;
    let mut bad_block = gz.clone();
    bad_block[10] = 0xff;
    let cases: Vec<(&str, Coding, Vec<u8>)> = vec![
        ("gzip labelled deflate", Coding::Deflate, gz.clone()),
        ("zlib labelled gzip", Coding::Gzip, zlib(&data)),
        ("truncated gzip body", Coding::Gzip, gz[..gz.len() / 2].to_vec()),
        ("truncated gzip trailer", Coding::Gzip, gz[..gz.len() - 3].to_vec()),
        ("truncated gzip header", Coding::Gzip, gz[..5].to_vec()),
        ("truncated zlib", Coding::Deflate, zlib(&data)[..100].to_vec()),
        ("gzip crc wrong", Coding::Gzip, bad_crc),
        ("gzip size wrong", Coding::Gzip, bad_size),
        ("gzip reserved flag", Coding::Gzip, bad_flags),
        ("gzip invalid block", Coding::Gzip, bad_block),
        ("gzip then junk", Coding::Gzip, [gz.clone(), b"junk".to_vec()].concat()),
        ("two gzip members", Coding::Gzip, [gz.clone(), gz.clone()].concat()),
        ("zlib then junk", Coding::Deflate, [zlib(b"x"), b"j".to_vec()].concat()),
        ("plain text labelled gzip", Coding::Gzip, b"{\"ok\":true}".to_vec()),
    ];
    for (name, coding, coded) in cases {
        for piece in [1, 4096, usize::MAX] {
            assert!(run(coding, &coded, piece).is_err(), "{name} @{piece} decoded");
        }
    }
}

#[test]
fn a_bomb_comes_out_in_bounded_steps() {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..32 {
        e.write_all(&zeros).unwrap();
    }
    let coded = e.finish().unwrap();
    assert!(coded.len() < 64 * 1024, "the bomb is small on the wire");
    let mut d = Decoder::new(Coding::Gzip);
    d.feed(Bytes::from(coded));
    d.end_input();
    let (mut total, mut steps) = (0usize, 0usize);
    loop {
        match d.step() {
            Ok(Step::Data(b)) => {
                assert!(b.len() <= STEP);
                assert!(b.iter().all(|&x| x == 0));
                total += b.len();
                steps += 1;
            }
            Ok(Step::Done) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(total, 32 << 20);
    assert!(steps >= total / STEP);
}

/// (name, headers, the coding to undo or `Err` for a refusal).
type CodingRow = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Result<Option<Coding>, ()>,
);

#[test]
fn coding_headers() {
    let cases: &[CodingRow] = &[
        ("none", &[], Ok(None)),
        ("identity", &[("content-encoding", "identity")], Ok(None)),
        ("gzip", &[("content-encoding", "gzip")], Ok(Some(Coding::Gzip))),
        (
            "x-gzip upper",
            &[("content-encoding", "X-GZIP")],
            Ok(Some(Coding::Gzip)),
        ),
        ("deflate", &[("content-encoding", "deflate")], Ok(Some(Coding::Deflate))),
        (
            "identity then gzip headers",
            &[("content-encoding", "identity"), ("content-encoding", "gzip")],
            Ok(Some(Coding::Gzip)),
        ),
        (
            "list identity, gzip",
            &[("content-encoding", "identity, gzip")],
            Ok(Some(Coding::Gzip)),
        ),
        (
            "empty items",
            &[("content-encoding", " , gzip ,")],
            Ok(Some(Coding::Gzip)),
        ),
        ("stacked gzip, gzip", &[("content-encoding", "gzip, gzip")], Err(())),
        (
            "stacked in two headers",
            &[("content-encoding", "gzip"), ("content-encoding", "deflate")],
            Err(()),
        ),
        ("br", &[("content-encoding", "br")], Err(())),
        (
            "zstd after identity",
            &[("content-encoding", "identity"), ("content-encoding", "zstd")],
            Err(()),
        ),
        ("parameters", &[("content-encoding", "gzip;q=1")], Err(())),
        ("te chunked", &[("transfer-encoding", "chunked")], Ok(None)),
        (
            "te gzip",
            &[("transfer-encoding", "gzip, chunked")],
            Ok(Some(Coding::Gzip)),
        ),
        (
            "ce gzip and te gzip",
            &[("content-encoding", "gzip"), ("transfer-encoding", "gzip, chunked")],
            Err(()),
        ),
        (
            "chunked is no content coding",
            &[("content-encoding", "chunked")],
            Err(()),
        ),
    ];
    for (name, headers, want) in cases {
        let mut h = HeaderMap::new();
        for (k, v) in *headers {
            h.append(*k, HeaderValue::from_static(v));
        }
        assert_eq!(coding(&h).map_err(|_| ()), *want, "{name}");
    }
    let mut h = HeaderMap::new();
    h.append("content-encoding", HeaderValue::from_bytes(b"gzip\xff").unwrap());
    assert!(coding(&h).is_err(), "not text");
}
