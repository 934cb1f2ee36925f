//! `--at DATE` (ROBOCOPY.md §2): local time unless an offset is given; a
//! moment given to the day, minute or second means the end of it.

use chrono::{DateTime, Duration, Local, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

/// The moment `text` names, relative to `now`.
///
/// # Errors
/// A message for text that names no moment, names one out of range (before
/// year -262143 or after 262142, or too far from now), or a local time that
/// does not exist (a DST gap).
pub fn parse_at(text: &str, now: DateTime<Local>) -> Result<DateTime<Local>, String> {
    let t = text.trim();
    let out_of_range = || format!("invalid date \"{text}\": out of range");
    let end_of_day = |d: NaiveDate| local(d.and_time(last_nano(23, 59, 59)), text);
    match t.to_ascii_lowercase().as_str() {
        "now" => return Ok(now),
        "today" => return end_of_day(now.date_naive()),
        "yesterday" => return end_of_day(now.date_naive().pred_opt().ok_or_else(out_of_range)?),
        _ => {}
    }
    if let Some(ago) = parse_ago(t, text)? {
        return now.checked_sub_signed(ago).ok_or_else(out_of_range);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        // Without a fraction the moment was given to the second.
        let has_fraction = t.contains('.');
        let d = d.with_timezone(&Local);
        return if has_fraction {
            Ok(d)
        } else {
            d.checked_add_signed(Duration::nanoseconds(999_999_999))
                .ok_or_else(out_of_range)
        };
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return end_of_day(d);
    }
    let t = t.replacen('T', " ", 1);
    if let Ok(dt) = NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S") {
        let end = dt.checked_add_signed(Duration::nanoseconds(999_999_999));
        return local(end.ok_or_else(out_of_range)?, text);
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M") {
        let end = dt.checked_add_signed(Duration::nanoseconds(59_999_999_999));
        return local(end.ok_or_else(out_of_range)?, text);
    }
    Err(format!(
        "invalid date \"{text}\": use YYYY-MM-DD, \"YYYY-MM-DD HH:MM[:SS]\", RFC 3339, now, today, yesterday or \"N days ago\""
    ))
}

/// Nanoseconds since the epoch, saturated: a moment before 1677 is before
/// every snapshot, one after 2262 after every snapshot.
pub fn saturating_nanos(t: &DateTime<Local>) -> i64 {
    match t.timestamp_nanos_opt() {
        Some(ns) => ns,
        None if t.timestamp() < 0 => i64::MIN,
        None => i64::MAX,
    }
}

fn last_nano(h: u32, m: u32, s: u32) -> NaiveTime {
    NaiveTime::from_hms_nano_opt(h, m, s, 999_999_999).expect("a valid time")
}

fn local(dt: NaiveDateTime, text: &str) -> Result<DateTime<Local>, String> {
    match Local.from_local_datetime(&dt) {
        LocalResult::Single(d) => Ok(d),
        // A repeated local time (DST ends) means the earlier one.
        LocalResult::Ambiguous(earlier, _) => Ok(earlier),
        // Near the ends of the calendar a local time can have no instant.
        LocalResult::None if dt.checked_add_signed(Duration::days(2)).is_none() => {
            Err(format!("invalid date \"{text}\": out of range"))
        }
        LocalResult::None if dt.checked_sub_signed(Duration::days(2)).is_none() => {
            Err(format!("invalid date \"{text}\": out of range"))
        }
        LocalResult::None => Err(format!("\"{text}\" does not exist in local time (a DST gap)")),
    }
}

/// `N UNIT ago`: `None` when `t` is not of that form, an error when it is
/// but N is no count or the span is out of range.
fn parse_ago(t: &str, text: &str) -> Result<Option<Duration>, String> {
    let words: Vec<&str> = t.split_whitespace().collect();
    let [n, unit, ago] = words.as_slice() else {
        return Ok(None);
    };
    if !ago.eq_ignore_ascii_case("ago") {
        return Ok(None);
    }
    let unit = unit.to_ascii_lowercase();
    let secs: i64 = match unit.trim_end_matches('s') {
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        "week" => 604_800,
        _ => return Ok(None),
    };
    if n.starts_with('-') {
        return Err(format!("invalid date \"{text}\": a count must not be negative"));
    }
    let n: i64 = n.parse().map_err(|e: std::num::ParseIntError| match e.kind() {
        std::num::IntErrorKind::PosOverflow => format!("invalid date \"{text}\": out of range"),
        _ => format!("invalid date \"{text}\": \"{n}\" is not a count"),
    })?;
    n.checked_mul(secs)
        .and_then(Duration::try_seconds)
        .map(Some)
        .ok_or_else(|| format!("invalid date \"{text}\": out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Local> {
        Local.with_ymd_and_hms(2025, 3, 10, 12, 0, 0).unwrap()
    }

    #[test]
    fn a_day_means_its_end() {
        let d = parse_at("2025-03-04", now()).unwrap();
        assert_eq!(d.naive_local().to_string(), "2025-03-04 23:59:59.999999999");
    }

    #[test]
    fn minutes_and_seconds_mean_their_end() {
        assert_eq!(
            parse_at("2025-03-04 13:05", now()).unwrap().naive_local().to_string(),
            "2025-03-04 13:05:59.999999999"
        );
        assert_eq!(
            parse_at("2025-03-04T13:05:07", now())
                .unwrap()
                .naive_local()
                .to_string(),
            "2025-03-04 13:05:07.999999999"
        );
    }

    #[test]
    fn rfc3339_keeps_its_offset() {
        let d = parse_at("2025-03-04T23:15:00+01:00", now()).unwrap();
        assert_eq!(d.timestamp(), 1741126500);
        let z = parse_at("2025-03-04T22:15:00.5Z", now()).unwrap();
        assert_eq!(z.timestamp_subsec_nanos(), 500_000_000);
    }

    #[test]
    fn relative_forms() {
        assert_eq!(parse_at("now", now()).unwrap(), now());
        assert_eq!(parse_at("3 days ago", now()).unwrap(), now() - Duration::days(3));
        assert_eq!(parse_at("1 week ago", now()).unwrap(), now() - Duration::days(7));
        assert_eq!(
            parse_at("yesterday", now()).unwrap().naive_local().to_string(),
            "2025-03-09 23:59:59.999999999"
        );
        assert!(parse_at("3 fortnights ago", now()).is_err());
        assert!(parse_at("soon", now()).is_err());
    }

    #[test]
    fn out_of_range_and_negative_are_errors() {
        for bad in [
            "99999999 days ago",
            "9223372036854775807 seconds ago",
            "99999999999999999999 days ago",
            "1e3 days ago",
        ] {
            let e = parse_at(bad, now()).unwrap_err();
            assert!(e.starts_with(&format!("invalid date \"{bad}\"")), "{bad}: {e}");
        }
        assert_eq!(
            parse_at("-1 days ago", now()).unwrap_err(),
            "invalid date \"-1 days ago\": a count must not be negative"
        );
        // The ends of the calendar: a moment or an error, never a panic.
        for edge in [
            "+262142-12-31",
            "+262142-12-31 23:59",
            "+262142-12-31T23:59:59",
            "-262143-01-01",
            "9999-12-31T23:59:59+14:00",
            "0000-01-01T00:00:00-14:00",
        ] {
            if let Ok(t) = parse_at(edge, now()) {
                let _ = saturating_nanos(&t);
            }
        }
    }
}
