//! Every log line names the policy in force: a formatter wrapper adds
//! `policy_generation` and `policy_hash` to lines that do not carry them
//! already, so an incident can be tied to the policy that was serving.

use std::fmt::{self, Write};
use std::sync::{Arc, RwLock};

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The policy in force, as the store last installed it: shared by the store
/// (which writes it) and the formatter (which reads it).
#[derive(Debug, Default)]
pub struct LogStamp(RwLock<Option<(u64, String)>>);

impl LogStamp {
    /// Called by the store whenever a policy is installed.
    pub fn set(&self, generation: u64, hash: &str) {
        let mut s = self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *s = Some((generation, hash.to_owned()));
    }

    fn current(&self) -> Option<(u64, String)> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Wraps an event formatter (JSON or text) and stamps its lines.
pub struct Stamped<F> {
    inner: F,
    stamp: Arc<LogStamp>,
}

impl<F> Stamped<F> {
    pub fn new(inner: F, stamp: Arc<LogStamp>) -> Stamped<F> {
        Stamped { inner, stamp }
    }
}

impl<S, N, F> FormatEvent<S, N> for Stamped<F>
where
    F: FormatEvent<S, N>,
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        // Audit, anomaly and reload lines name their policy themselves (the
        // one the request ran on, which a reload may have replaced since).
        if event.metadata().fields().field("policy_generation").is_some() {
            return self.inner.format_event(ctx, writer, event);
        }
        let Some(stamp) = self.stamp.current() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        stamp_line(&line, stamp, &mut writer)
    }
}

fn stamp_line(line: &str, (generation, hash): (u64, String), out: &mut impl Write) -> fmt::Result {
    match line.strip_prefix('{') {
        Some(rest) => write!(
            out,
            "{{\"policy_generation\":{generation},\"policy_hash\":\"{hash}\",{rest}"
        ),
        None => writeln!(
            out,
            "{} policy_generation={generation} policy_hash={hash}",
            line.trim_end_matches('\n')
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_and_text_lines_are_stamped() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "json",
                "{\"level\":\"INFO\",\"message\":\"ready\"}\n",
                "{\"policy_generation\":3,\"policy_hash\":\"abc\",\"level\":\"INFO\",\"message\":\"ready\"}\n",
            ),
            (
                "text",
                "INFO ready\n",
                "INFO ready policy_generation=3 policy_hash=abc\n",
            ),
        ];
        for (name, line, want) in cases {
            let mut out = String::new();
            super::stamp_line(line, (3, "abc".to_owned()), &mut out).unwrap();
            assert_eq!(out, *want, "{name}");
        }
    }
}
