//! `--at DATE` (ROBOCOPY.md §2): local time unless an offset is given; a
//! moment given to the day, minute or second means the end of it.

use chrono::{DateTime, Duration, Local, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

/// The moment `text` names, relative to `now`.
///
/// # Errors
/// A message for text that names no moment, or a local time that does not
/// exist (a DST gap).
pub fn parse_at(text: &str, now: DateTime<Local>) -> Result<DateTime<Local>, String> {
    let t = text.trim();
    let end_of_day = |d: NaiveDate| local(d.and_time(last_nano(23, 59, 59)), text);
    match t.to_ascii_lowercase().as_str() {
        "now" => return Ok(now),
        "today" => return end_of_day(now.date_naive()),
        "yesterday" => return end_of_day(now.date_naive() - Duration::days(1)),
        _ => {}
    }
    if let Some(ago) = parse_ago(t) {
        return Ok(now - ago);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        // Without a fraction the moment was given to the second.
        let has_fraction = t.contains('.');
        let d = d.with_timezone(&Local);
        return Ok(if has_fraction {
            d
        } else {
            d + Duration::nanoseconds(999_999_999)
        });
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return end_of_day(d);
    }
    let t = t.replacen('T', " ", 1);
    if let Ok(dt) = NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S") {
        return local(dt + Duration::nanoseconds(999_999_999), text);
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M") {
        return local(dt + Duration::nanoseconds(59_999_999_999), text);
    }
    Err(format!(
        "invalid date \"{text}\": use YYYY-MM-DD, \"YYYY-MM-DD HH:MM[:SS]\", RFC 3339, now, today, yesterday or \"N days ago\""
    ))
}

fn last_nano(h: u32, m: u32, s: u32) -> NaiveTime {
    NaiveTime::from_hms_nano_opt(h, m, s, 999_999_999).expect("a valid time")
}

fn local(dt: NaiveDateTime, text: &str) -> Result<DateTime<Local>, String> {
    match Local.from_local_datetime(&dt) {
        LocalResult::Single(d) => Ok(d),
        // A repeated local time (DST ends) means the earlier one.
        LocalResult::Ambiguous(earlier, _) => Ok(earlier),
        LocalResult::None => Err(format!("\"{text}\" does not exist in local time (a DST gap)")),
    }
}

fn parse_ago(t: &str) -> Option<Duration> {
    let words: Vec<&str> = t.split_whitespace().collect();
    let [n, unit, ago] = words.as_slice() else { return None };
    if !ago.eq_ignore_ascii_case("ago") {
        return None;
    }
    let n: i64 = n.parse().ok()?;
    let unit = unit.to_ascii_lowercase();
    let secs = match unit.trim_end_matches('s') {
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        "week" => 604_800,
        _ => return None,
    };
    Some(Duration::seconds(n.checked_mul(secs)?))
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
}
