//! The one `/metrics` parser: the Prometheus text exposition read strictly
//! (a line it cannot read fails the test), with look-ups by series as
//! written, by name, and sums over label matches.

use std::collections::{BTreeMap, BTreeSet};

/// One sample line of the exposition.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The series as written: `name{k="v",...}` or `name`.
    pub series: String,
    pub value: f64,
}

/// The exposition parsed: the declared families with their types, and every sample.
#[derive(Debug, Clone)]
pub struct Exposition {
    pub types: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
    /// The text as scraped, for assertion messages.
    pub text: String,
}

impl Exposition {
    pub fn parse(text: &str) -> Exposition {
        let mut types = BTreeMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split_whitespace();
                let (Some(name), Some(kind)) = (it.next(), it.next()) else {
                    panic!("bad TYPE line {line:?}");
                };
                types.insert(name.to_owned(), kind.to_owned());
            } else if line.starts_with('#') || line.trim().is_empty() {
                continue;
            } else {
                samples.push(parse_sample(line));
            }
        }
        Exposition {
            types,
            samples,
            text: text.to_owned(),
        }
    }

    /// Every series name a PromQL expression can use against this scrape.
    pub fn names(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self.samples.iter().map(|s| s.name.clone()).collect();
        for (family, kind) in &self.types {
            match kind.as_str() {
                "counter" => {
                    names.insert(format!("{family}_total"));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{family}{suffix}"));
                    }
                }
                _ => {
                    names.insert(family.clone());
                }
            }
        }
        names
    }

    pub fn with_name<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The value of the series written exactly `series` (`name{k="v"}`).
    pub fn get(&self, series: &str) -> Option<f64> {
        self.samples.iter().find(|s| s.series == series).map(|s| s.value)
    }

    /// Every series as written.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.samples.iter().map(|s| s.series.as_str())
    }

    /// The sum over the samples of `name` whose labels include every `(k, v)`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.with_name(name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }

    /// `egress_guard_anomalies_total{kind=KIND}`, 0 when absent.
    pub fn anomalies(&self, kind: &str) -> f64 {
        self.sum("egress_guard_anomalies_total", &[("kind", kind)])
    }
}

/// `name{k="v",...} value` or `name value`; label values may hold escaped quotes.
pub fn parse_sample(line: &str) -> Sample {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("bad sample line {line:?}"));
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = line[name_end..].to_owned();
    if line[name_end..].starts_with('{') {
        let mut chars = line[name_end + 1..].chars().peekable();
        loop {
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            let key = key.trim_start_matches(',').trim().to_owned();
            assert_eq!(chars.next(), Some('"'), "label {key:?} not quoted in {line:?}");
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('\\') => value.push(chars.next().unwrap_or('\\')),
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => panic!("unterminated label value in {line:?}"),
                }
            }
            labels.insert(key, value);
            match chars.next() {
                Some(',') if chars.peek() == Some(&'}') => {
                    chars.next();
                    break;
                }
                Some(',') => continue,
                Some('}') => break,
                other => panic!("unexpected {other:?} after a label in {line:?}"),
            }
        }
        rest = chars.collect();
        assert!(
            rest.starts_with(' ') && rest.split_whitespace().next().is_some(),
            "no value in {line:?}"
        );
    }
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
        "bad metric name {name:?} in {line:?}"
    );
    let series = line[..line.len() - rest.len()].to_owned();
    let value = rest
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no numeric value in {line:?}"));
    Sample {
        name,
        labels,
        series,
        value,
    }
}
