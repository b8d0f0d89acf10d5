//! RFC 3339 timestamps <-> Unix seconds, for validity intervals and `datetime` parameters.
//! Accepts `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.frac]]` with `Z` or `+HH:MM`/`-HH:MM`
//! (a date alone is midnight UTC; a time without an offset is refused as ambiguous).

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn num(s: &str, range: std::ops::RangeInclusive<i64>, what: &str) -> Result<i64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {s:?} is not a number"));
    }
    let v: i64 = s
        .parse()
        .map_err(|_| format!("{what} {s:?} is not a number"))?;
    if !range.contains(&v) {
        return Err(format!(
            "{what} {v} is outside {}..={}",
            range.start(),
            range.end()
        ));
    }
    Ok(v)
}

/// Parses an RFC 3339 timestamp (or a plain date) to Unix seconds, truncating fractions.
///
/// # Examples
/// ```
/// use urbantile::model::time::parse_rfc3339;
/// assert_eq!(parse_rfc3339("1970-01-02T00:00:00Z"), Ok(86_400));
/// assert_eq!(parse_rfc3339("2026-01-01T02:00:00+02:00"), parse_rfc3339("2026-01-01"));
/// assert!(parse_rfc3339("2026-02-30").is_err());
/// ```
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut parts = date.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{s:?} is not an RFC 3339 date (YYYY-MM-DD)"));
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(format!("{s:?} is not an RFC 3339 date (YYYY-MM-DD)"));
    }
    let y = num(y, 0..=9999, "year")?;
    let m = num(m, 1..=12, "month")?;
    let d = num(d, 1..=days_in_month(y, m), "day")?;
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if let Some(rest) = rest {
        let (clock, offset) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
            (c, 0)
        } else if let Some(i) = rest.rfind(['+', '-']) {
            let (c, o) = rest.split_at(i);
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let Some((oh, om)) = o[1..].split_once(':') else {
                return Err(format!("{s:?}: offset must be +HH:MM, -HH:MM or Z"));
            };
            (
                c,
                sign * (num(oh, 0..=23, "offset hour")? * 3600
                    + num(om, 0..=59, "offset minute")? * 60),
            )
        } else {
            return Err(format!("{s:?}: a time needs an offset (Z or +HH:MM)"));
        };
        let clock = clock.split('.').next().unwrap_or_default();
        let mut f = clock.split(':');
        let h = num(f.next().unwrap_or_default(), 0..=23, "hour")?;
        let mi = num(f.next().unwrap_or_default(), 0..=59, "minute")?;
        let se = match f.next() {
            Some(x) => num(x, 0..=60, "second")?,
            None => 0,
        };
        if f.next().is_some() {
            return Err(format!("{s:?}: time must be HH:MM[:SS]"));
        }
        secs += h * 3600 + mi * 60 + se - offset;
    }
    Ok(secs)
}

/// The current time in Unix seconds (0 if the clock is before 1970).
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses an OGC API `datetime` value: an instant, or an interval `start/end` where either
/// end may be open (`..` or empty). `now` stands for `now_secs`.
///
/// # Examples
/// ```
/// use urbantile::model::time::parse_datetime_param;
/// let r = parse_datetime_param("2026-01-01/..", 0).unwrap();
/// assert_eq!((r.start, r.end), (Some(1_767_225_600), None));
/// assert!(parse_datetime_param("2026-02-01/2026-01-01", 0).is_err());
/// ```
pub fn parse_datetime_param(s: &str, now_secs: i64) -> Result<crate::model::TimeRange, String> {
    let instant = |t: &str| -> Result<Option<i64>, String> {
        match t.trim() {
            "" | ".." => Ok(None),
            "now" => Ok(Some(now_secs)),
            t => parse_rfc3339(t).map(Some),
        }
    };
    let range = match s.split_once('/') {
        None => {
            let t = instant(s)?.ok_or_else(|| "datetime is empty".to_owned())?;
            crate::model::TimeRange {
                start: Some(t),
                end: Some(t),
            }
        }
        Some((a, b)) => {
            let r = crate::model::TimeRange {
                start: instant(a)?,
                end: instant(b)?,
            };
            if r.start.is_none() && r.end.is_none() {
                return Err("datetime interval has two open ends".into());
            }
            r
        }
    };
    if let (Some(a), Some(b)) = (range.start, range.end)
        && b < a
    {
        return Err(format!("datetime interval {s:?} ends before it starts"));
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_and_parsing_round_trip() {
        for secs in [0, 1_767_225_600, 951_782_400, -86_400] {
            assert_eq!(parse_rfc3339(&format_rfc3339(secs)), Ok(secs));
        }
    }

    #[test]
    fn a_leap_day_exists_only_in_leap_years() {
        assert!(parse_rfc3339("2024-02-29").is_ok());
        assert!(parse_rfc3339("2025-02-29").is_err());
    }

    #[test]
    fn a_time_without_offset_is_refused() {
        let e = parse_rfc3339("2026-05-01T10:00:00").unwrap_err();
        assert!(e.contains("offset"), "{e}");
    }
}
