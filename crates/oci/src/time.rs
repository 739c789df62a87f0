//! The one clock reading strata writes: image configs, history, container records, store rows
//! and log entries all take their times from [`now`].

/// Now in UTC, as Docker writes times (RFC 3339 with nanoseconds: `2024-01-02T03:04:05.123456789Z`).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// A Unix time in seconds as Go's `time.Time` marshals it (`2023-11-14T22:13:20Z`):
/// `SOURCE_DATE_EPOCH` in the `created` of configs and history.
pub fn unix_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Now as nanoseconds since the Unix epoch (Docker's `timeNano` of events).
pub fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_utc_with_nanoseconds() {
        let t = super::now();
        assert_eq!(t.len(), "2024-01-02T03:04:05.123456789Z".len(), "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
        assert_eq!(super::unix_time(1700000000), "2023-11-14T22:13:20Z");
    }
}
