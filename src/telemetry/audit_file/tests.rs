//! The chain's walk and the start-up tail check on hand-made files.

use super::chain::{ChainKey, GENESIS};
use super::records;
use super::verify::Walk;
use super::writer::{resume, Resume};

const KEY: &[u8] = b"unit-test-audit-key-0123456789";

/// A file of `n` request-like records after a `file_start`.
fn file(key: &ChainKey, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chain = key
        .seal(&GENESIS, &records::file_start(&GENESIS, "-"), &mut out)
        .unwrap();
    for i in 0..n {
        let rec = format!(r#"{{"record":"request","request_id":"r{i}","status":200}}"#);
        chain = key.seal(&chain, rec.as_bytes(), &mut out).unwrap();
    }
    out
}

fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn join(lines: &[Vec<u8>]) -> Vec<u8> {
    lines.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect()
}

/// `lines` with a chain_break after them, as the proxy writes one.
fn with_break(key: &ChainKey, mut lines: Vec<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    key.seal(&GENESIS, &records::chain_break("test", lines.len() as u64), &mut out)
        .unwrap();
    lines.push(out.strip_suffix(b"\n").unwrap().to_vec());
    join(&lines)
}

fn edit(line: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(line).replacen("200", "201", 1).into_bytes()
}

#[test]
fn the_tail_check_continues_starts_or_breaks() {
    let key = ChainKey::new(KEY);
    let good = file(&key, 3);
    let mut edited = lines(&good);
    let last = edited.len() - 1;
    edited[last] = edit(&edited[last]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "fresh"),
        ("intact", good.clone(), "continue"),
        ("only the file_start", file(&key, 0), "continue"),
        ("cut", good[..good.len() - 5].to_vec(), "break"),
        ("last line edited", join(&edited), "break"),
        (
            "another key",
            file(&ChainKey::new(b"another-key-of-enough-length"), 2),
            "break",
        ),
        ("after a break", with_break(&key, lines(&good)), "continue"),
    ];
    for (name, bytes, want) in cases {
        let got = match resume(&key, &bytes, 0) {
            Resume::Fresh => "fresh",
            Resume::Continue { .. } => "continue",
            Resume::Break { .. } => "break",
        };
        assert_eq!(got, want, "{name}");
    }
    assert!(matches!(
        resume(&key, &good[..good.len() - 5], 0),
        Resume::Break {
            line: 4,
            newline: true,
            ..
        }
    ));
}

#[test]
fn a_break_covers_one_damaged_line_and_no_more() {
    let key = ChainKey::new(KEY);
    let mut l = lines(&file(&key, 4));
    let n = l.len();
    l[n - 1] = edit(&l[n - 1]);
    let one = with_break(&key, l.clone());
    l[n - 2] = edit(&l[n - 2]);
    let two = with_break(&key, l.clone());
    // (name, file, --allow-breaks, the line the walk stops at)
    type Case<'a> = (&'a str, &'a [u8], bool, Result<(), u64>);
    let cases: &[Case] = &[
        ("one damaged line, strict", &one, false, Err(n as u64)),
        ("one damaged line, allowed", &one, true, Ok(())),
        ("two damaged lines, allowed", &two, true, Err(n as u64 - 1)),
    ];
    for (name, bytes, allow, want) in cases {
        let mut walk = Walk::new(&key, *allow);
        let got = walk.file(bytes).map_err(|b| b.line);
        assert_eq!(got, *want, "{name}");
    }
}

#[test]
fn a_gap_record_verifies_and_is_noted() {
    let key = ChainKey::new(KEY);
    let mut bytes = file(&key, 1);
    let l = lines(&bytes);
    let last = super::chain::open(l.last().unwrap()).unwrap().chain;
    key.seal(&last, &records::gap(7, "queue full or write failed"), &mut bytes)
        .unwrap();
    let mut walk = Walk::new(&key, false);
    walk.file(&bytes).unwrap();
    assert_eq!(walk.records, 3);
    assert!(
        walk.notes.iter().any(|n| n.line == 3 && n.text.starts_with("gap")),
        "{:?}",
        walk.notes
    );
}

#[test]
fn a_file_larger_than_the_tail_window_continues_its_chain() {
    use crate::policy::audit_file::{AuditFileConfig, AuditKey};
    use crate::policy::secret::Secret;
    let key = ChainKey::new(KEY);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut big = file(&key, 20_000);
    assert!(big.len() > 1024 * 1024);
    std::fs::write(&path, &big).unwrap();
    let cfg = AuditFileConfig {
        path: path.clone(),
        key: AuditKey(Secret::new(zeroize::Zeroizing::new(KEY.to_vec())).unwrap()),
        max_bytes: 1 << 30,
    };
    let mut w = super::writer::Writer::open(&cfg).unwrap();
    assert_eq!(w.write(&[br#"{"record":"request","request_id":"next"}"#.to_vec()]), 0);
    w.sync();
    let after = std::fs::read(&path).unwrap();
    assert!(after.starts_with(&big) && after.len() > big.len());
    let mut walk = Walk::new(&key, false);
    walk.file(&after).unwrap();
    assert_eq!(walk.records, 20_002);
    // Cut inside the last line: the line number of the break counts every line.
    big.truncate(big.len() - 3);
    std::fs::write(&path, &big).unwrap();
    drop(super::writer::Writer::open(&cfg).unwrap());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.lines().last().unwrap().contains(r#""damaged_line":20001"#),
        "{}",
        text.lines().last().unwrap()
    );
}

#[test]
fn a_full_queue_drops_records_and_says_so_in_the_chain() {
    use crate::policy::audit_file::{AuditFileConfig, AuditKey};
    use crate::policy::secret::Secret;
    const N: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuditFileConfig {
        path: dir.path().join("audit.jsonl"),
        key: AuditKey(Secret::new(zeroize::Zeroizing::new(KEY.to_vec())).unwrap()),
        max_bytes: 1 << 30,
    };
    let metric = prometheus_client::metrics::counter::Counter::<u64>::default();
    // A queue of one record: appending in a tight loop outruns the writer.
    let file = super::AuditFile::with_queue(&cfg, metric.clone(), 1).unwrap();
    for i in 0..N {
        file.append(format!(r#"{{"record":"request","request_id":"r{i}"}}"#).into_bytes());
    }
    file.close();
    let bytes = std::fs::read(&cfg.path).unwrap();
    let key = ChainKey::new(KEY);
    let mut walk = Walk::new(&key, false);
    walk.file(&bytes).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let written = text.lines().filter(|l| l.contains(r#""record":"request""#)).count() as u64;
    let gaps: u64 = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["record"] == "gap")
        .map(|v| v["dropped"].as_u64().unwrap())
        .sum();
    assert!(
        metric.get() > 0,
        "nothing was dropped: the test did not overflow the queue"
    );
    assert_eq!(gaps, metric.get(), "every drop counted is told by a gap record");
    assert_eq!(
        written + gaps,
        N,
        "every record is either in the file or counted in a gap"
    );
}
