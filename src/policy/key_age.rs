//! Key age: `rotate_every` on a credential, read strictly (`90d`, `12h`,
//! `2w`), and when the secret's file last changed (its modification time,
//! read before the secret itself, so the age is never understated).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::secret::Source;

const HOUR: u64 = 3600;
/// Ten years: a longer period is a typo, not a rotation schedule.
const MAX_PERIOD: Duration = Duration::from_secs(3650 * 24 * HOUR);

/// How old a credential's secret is allowed to get, and how old it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyAge {
    /// `rotate_every`, when the policy sets one.
    pub rotate_every: Option<Duration>,
    /// When the secret's file last changed; `None` for `env:` (no file to ask).
    pub changed: Option<SystemTime>,
}

impl KeyAge {
    /// Reads `source`'s modification time and the policy's `rotate_every`.
    /// A period on a secret whose age cannot be known is an error.
    pub fn read(rotate_every: Option<&str>, source: &Source) -> Result<KeyAge, String> {
        let rotate_every = rotate_every.map(parse_period).transpose()?;
        let changed = match file_of(source) {
            Some(path) => std::fs::metadata(&path).and_then(|m| m.modified()).ok(),
            None => None,
        };
        // A `credential:` without CREDENTIALS_DIRECTORY has a file, just not here: reading it says so.
        if rotate_every.is_some() && matches!(source, Source::Env(_)) {
            return Err(
                "`rotate_every` needs a `file:` or `credential:` secret: an environment variable has no age".to_owned(),
            );
        }
        Ok(KeyAge { rotate_every, changed })
    }

    /// The secret's age at `now`; `None` when unknown. A modification time in
    /// the future (a clock set back) counts as age zero.
    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        self.changed.map(|c| now.duration_since(c).unwrap_or(Duration::ZERO))
    }

    /// Whether the secret is older than its `rotate_every` at `now`.
    pub fn overdue(&self, now: SystemTime) -> bool {
        matches!((self.age(now), self.rotate_every), (Some(age), Some(every)) if age > every)
    }

    /// `check`'s words: `key age 12d 3h (rotate every 90d)`, `OVERDUE` past it.
    pub fn describe(&self, now: SystemTime) -> String {
        let age = match self.age(now) {
            Some(a) => format!("key age {}", human(a)),
            None => "key age unknown (environment variable)".to_owned(),
        };
        match self.rotate_every {
            Some(every) if self.overdue(now) => format!("{age}: OVERDUE, rotate every {}", human(every)),
            Some(every) => format!("{age} (rotate every {})", human(every)),
            None => age,
        }
    }
}

/// The file a secret is read from, if it is one.
pub fn file_of(source: &Source) -> Option<PathBuf> {
    match source {
        Source::Env(_) => None,
        Source::File(p) => Some(p.clone()),
        Source::Credential(name) => std::env::var_os("CREDENTIALS_DIRECTORY").map(|d| PathBuf::from(d).join(name)),
    }
}

/// `90d`, `12h`, `2w`: a positive whole number without sign, spaces or
/// leading zero, then one unit. Anything else is refused, not guessed at.
pub fn parse_period(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a period like 90d, 12h or 2w (whole hours, days or weeks)");
    let units = [('h', 1), ('d', 24), ('w', 7 * 24)];
    let Some((digits, hours)) = units
        .iter()
        .find_map(|(unit, hours)| Some((text.strip_suffix(*unit)?, *hours)))
    else {
        return Err(bad());
    };
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let period = n
        .checked_mul(hours * HOUR)
        .map(Duration::from_secs)
        .filter(|p| *p <= MAX_PERIOD)
        .ok_or_else(|| format!("`{text}` is longer than ten years"))?;
    Ok(period)
}

/// `95d 4h`, `12h`, `0h`: days and hours, as a person reads an age.
pub fn human(d: Duration) -> String {
    let hours = d.as_secs() / HOUR;
    match (hours / 24, hours % 24) {
        (0, h) => format!("{h}h"),
        (days, 0) => format!("{days}d"),
        (days, h) => format!("{days}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_read_strictly() {
        let day = 24 * HOUR;
        let cases: &[(&str, &str, Option<u64>)] = &[
            ("days", "90d", Some(90 * day)),
            ("hours", "12h", Some(12 * HOUR)),
            ("weeks", "2w", Some(14 * day)),
            ("ten years", "3650d", Some(3650 * day)),
            ("over ten years", "3651d", None),
            ("huge", "99999999999999999999d", None),
            ("zero", "0d", None),
            ("leading zero", "090d", None),
            ("no unit", "90", None),
            ("no number", "d", None),
            ("empty", "", None),
            ("minutes", "30m", None),
            ("seconds", "30s", None),
            ("upper case", "90D", None),
            ("space", "90 d", None),
            ("sign", "+90d", None),
            ("negative", "-1d", None),
            ("fraction", "1.5d", None),
            ("compound", "1d12h", None),
            ("unicode digit", "٩d", None),
            ("unicode unit", "9٩", None),
        ];
        for (name, text, want) in cases {
            assert_eq!(parse_period(text).ok(), want.map(Duration::from_secs), "{name}");
        }
    }

    #[test]
    fn age_and_overdue() {
        let now = SystemTime::now();
        let k = KeyAge {
            rotate_every: Some(Duration::from_secs(90 * 24 * HOUR)),
            changed: Some(now - Duration::from_secs(100 * 24 * HOUR + 5 * HOUR)),
        };
        assert!(k.overdue(now));
        assert_eq!(k.describe(now), "key age 100d 5h: OVERDUE, rotate every 90d");
        let fresh = KeyAge {
            changed: Some(now - Duration::from_secs(3 * HOUR)),
            ..k
        };
        assert!(!fresh.overdue(now));
        assert_eq!(fresh.describe(now), "key age 3h (rotate every 90d)");
        let future = KeyAge {
            changed: Some(now + Duration::from_secs(HOUR)),
            ..k
        };
        assert_eq!(future.age(now), Some(Duration::ZERO));
        assert_eq!(
            KeyAge::default().describe(now),
            "key age unknown (environment variable)"
        );
    }

    #[test]
    fn an_env_secret_cannot_have_a_rotation_period() {
        let env = Source::Env("SOME_KEY".into());
        assert!(KeyAge::read(Some("90d"), &env).is_err());
        assert_eq!(KeyAge::read(None, &env), Ok(KeyAge::default()));
    }

    #[test]
    fn the_age_is_the_file_modification_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "k").unwrap();
        let old = SystemTime::now() - Duration::from_secs(40 * 24 * HOUR);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let k = KeyAge::read(Some("30d"), &Source::File(path)).unwrap();
        assert_eq!(k.changed, Some(old));
        assert!(k.overdue(SystemTime::now()));
    }
}
