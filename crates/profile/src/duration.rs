//! Durations written as seconds (`3600`) or with units (`"8h"`, `"1h30m"`, `"90s"`, `"1d"`).

use std::time::Duration;

/// Longest duration accepted anywhere in a profile (30 days).
const MAX_SECS: u64 = 30 * 24 * 3600;

/// Parses `"8h"`, `"1h30m"`, `"45s"`, `"2d"` or a plain number of seconds (`"600"`).
///
/// Units: `s`, `m`, `h`, `d`. The total must not exceed 30 days.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration; write seconds (3600) or with a unit (\"1h\")".into());
    }
    if let Ok(n) = t.parse::<u64>() {
        return check(n, s);
    }
    let mut total: u64 = 0;
    let mut num: Option<u64> = None;
    for c in t.chars() {
        if let Some(d) = c.to_digit(10) {
            let n = num
                .unwrap_or(0)
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d)))
                .filter(|n| *n <= MAX_SECS)
                .ok_or_else(|| too_long(s))?;
            num = Some(n);
            continue;
        }
        let mult = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            ' ' => continue,
            _ => {
                return Err(format!(
                    "invalid duration `{s}`; use seconds or units s, m, h, d (\"8h\", \"1h30m\")"
                ));
            }
        };
        let n = num.take().ok_or_else(|| {
            format!("invalid duration `{s}`: a unit without a number; write it like \"1h30m\"")
        })?;
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .filter(|v| *v <= MAX_SECS)
            .ok_or_else(|| too_long(s))?;
    }
    if num.is_some() {
        return Err(format!(
            "invalid duration `{s}`: a number without a unit after another unit; write it like \"1h30m\""
        ));
    }
    check(total, s)
}

fn check(n: u64, s: &str) -> Result<Duration, String> {
    if n > MAX_SECS {
        return Err(too_long(s));
    }
    Ok(Duration::from_secs(n))
}

fn too_long(s: &str) -> String {
    format!("duration `{s}` is longer than 30 days")
}

/// Formats a duration the way profiles write it (`"8h"`, `"1h30m"`, `"45s"`, `"0s"`).
pub(crate) fn format_duration(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse_duration("8h"), Ok(Duration::from_secs(28800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("600"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h 5s"), Ok(Duration::from_secs(3605)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "h",
            "8x",
            "1h30",
            "-5",
            "31d",
            "99999999999999999999s",
            "1.5h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn format_round_trips() {
        for n in [0u64, 1, 59, 60, 3600, 5400, 28800, 86400, 90061] {
            let d = Duration::from_secs(n);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{n}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }
}
