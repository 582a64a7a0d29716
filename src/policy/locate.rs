//! Finds the line of a key path (`destinations.shipper.routes[0].path`) in the
//! policy text, so that `check` can point at the line a semantic error is on.
//! It reads block-style YAML by indentation; where it loses its way it answers
//! the line of the deepest part it found, which is still near the mistake.

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Returns the 1-based line of `path` in `text`, or of its deepest found prefix.
pub fn line_of(text: &str, path: &[Step]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0usize;
    let mut parent_indent: Option<usize> = None;
    let mut found: Option<usize> = None;
    for step in path {
        let hit = match step {
            Step::Key(key) => find_key(&lines, from, parent_indent, key),
            Step::Index(n) => find_item(&lines, from, parent_indent, *n),
        };
        let Some((line, indent)) = hit else { break };
        found = Some(line + 1);
        // A list item's keys sit two columns right of its dash.
        parent_indent = Some(match step {
            Step::Index(_) => indent + 1,
            Step::Key(_) => indent,
        });
        from = line;
    }
    found
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches([' ', '-']).len()
}

fn dash_indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn significant(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#')
}

fn find_key(lines: &[&str], from: usize, parent: Option<usize>, key: &str) -> Option<(usize, usize)> {
    let first = if parent.is_some() { from } else { 0 };
    for (i, line) in lines.iter().enumerate().skip(first) {
        if !significant(line) {
            continue;
        }
        let indent = indent_of(line);
        if let Some(p) = parent {
            if i > from && dash_indent(line) <= p && indent <= p {
                return None;
            }
        }
        let body = &line[indent..];
        let matches = body.strip_prefix(key).is_some_and(|rest| rest.starts_with(':'))
            || body
                .strip_prefix(&format!("\"{key}\""))
                .is_some_and(|rest| rest.starts_with(':'));
        if matches && parent.is_none_or(|p| indent > p || i == from) {
            return Some((i, indent));
        }
    }
    None
}

fn find_item(lines: &[&str], from: usize, parent: Option<usize>, n: usize) -> Option<(usize, usize)> {
    let p = parent?;
    let mut seen = 0usize;
    for (i, line) in lines.iter().enumerate().skip(from + 1) {
        if !significant(line) {
            continue;
        }
        let dash = dash_indent(line);
        if dash < p {
            return None;
        }
        if line[dash..].starts_with("- ") || line[dash..] == *"-" {
            if seen == n {
                return Some((i, dash));
            }
            seen += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r"version: 1
destinations:
  shipper:
    host: a.example
    routes:
      - methods: [POST]
        path: /v1
      - path: /v2
        body:
          allow:
            - a
            - b..c
";

    fn k(s: &str) -> Step {
        Step::Key(s.to_owned())
    }

    #[test]
    fn finds_nested_keys_and_items() {
        let cases: &[(&str, Vec<Step>, usize)] = &[
            ("top key", vec![k("destinations")], 2),
            ("destination host", vec![k("destinations"), k("shipper"), k("host")], 4),
            (
                "first route",
                vec![k("destinations"), k("shipper"), k("routes"), Step::Index(0)],
                6,
            ),
            (
                "second route path",
                vec![k("destinations"), k("shipper"), k("routes"), Step::Index(1), k("path")],
                8,
            ),
            (
                "allow entry",
                vec![
                    k("destinations"),
                    k("shipper"),
                    k("routes"),
                    Step::Index(1),
                    k("body"),
                    k("allow"),
                    Step::Index(1),
                ],
                12,
            ),
            (
                "missing key falls back to parent",
                vec![k("destinations"), k("shipper"), k("port")],
                3,
            ),
        ];
        for (name, path, line) in cases {
            assert_eq!(line_of(DOC, path), Some(*line), "{name}");
        }
    }
}
