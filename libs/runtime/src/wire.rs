//! Conversions every service makes at its gRPC boundary, written once: timestamps, page sizes
//! and the opaque keyset cursor of newest-first lists (AIP-158).
//!
//! Each returns `None` for input it refuses; services turn that into their own
//! `INVALID_ARGUMENT` naming the field.
//!
//! Times and dates are accepted in the years 1 to 9999 only, the range the contracts promise
//! (and well inside what PostgreSQL stores and chrono computes with), so date arithmetic further
//! in never overflows and the database never refuses a value the boundary let through.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use uuid::Uuid;

/// First year a date or time may have.
pub const MIN_YEAR: i32 = 1;
/// Last year a date or time may have.
pub const MAX_YEAR: i32 = 9999;

/// Default page size when a request says 0.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest page a list answers; bigger requests are capped.
pub const MAX_PAGE_SIZE: i64 = 200;

/// A protobuf timestamp of `t`.
pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
}

/// The instant of a protobuf timestamp, if it is a valid one in the years 1 to 9999.
pub fn from_timestamp(t: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    let at = DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)?;
    (MIN_YEAR..=MAX_YEAR).contains(&at.year()).then_some(at)
}

/// A calendar date from year, month and day, if it exists and lies in the years 1 to 9999.
pub fn date(year: i32, month: i32, day: i32) -> Option<NaiveDate> {
    if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
        return None;
    }
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// A protobuf timestamp of `t`, if there is one (for optional fields).
pub fn timestamp_opt(t: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    t.map(timestamp)
}

/// `t` truncated to microseconds, PostgreSQL's precision: an instant answered to a client and later
/// sent back as `as_of` then names exactly the same rows.
pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// Page size: 0 means [`DEFAULT_PAGE_SIZE`], larger than [`MAX_PAGE_SIZE`] is capped, negative
/// is refused.
pub fn page_size(value: i32) -> Option<i64> {
    match value {
        ..0 => None,
        0 => Some(DEFAULT_PAGE_SIZE),
        n => Some(i64::from(n).min(MAX_PAGE_SIZE)),
    }
}

/// The cursor after the last item `(created_at, id)` of a newest-first page.
pub fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{id}", at.timestamp_micros()))
}

/// Decodes [`encode_cursor`]: `Ok(None)` for the first page (empty token), `Err(())` for a token
/// this API did not make.
#[allow(clippy::result_unit_err, reason = "callers name the field in their own error")]
pub fn decode_cursor(token: &str) -> Result<Option<(DateTime<Utc>, Uuid)>, ()> {
    if token.is_empty() {
        return Ok(None);
    }
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).map_err(|_| ())?).map_err(|_| ())?;
    let (micros, id) = raw.split_once('|').ok_or(())?;
    let at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| ())?).ok_or(())?;
    Ok(Some((at, Uuid::parse_str(id).map_err(|_| ())?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let at = micros(Utc::now());
        let id = Uuid::new_v4();
        assert_eq!(decode_cursor(&encode_cursor(at, id)), Ok(Some((at, id))));
        assert_eq!(decode_cursor(""), Ok(None));
        assert_eq!(decode_cursor("%%%"), Err(()));
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("nonsense")), Err(()));
    }

    #[test]
    fn page_sizes_default_cap_and_refuse_negatives() {
        assert_eq!(page_size(0), Some(50));
        assert_eq!(page_size(7), Some(7));
        assert_eq!(page_size(10_000), Some(200));
        assert_eq!(page_size(-1), None);
    }

    #[test]
    fn timestamps_round_trip() {
        let at = Utc::now();
        assert_eq!(from_timestamp(&timestamp(at)), Some(at));
        assert_eq!(from_timestamp(&prost_types::Timestamp { seconds: 0, nanos: -1 }), None);
    }

    #[test]
    fn times_and_dates_outside_years_1_to_9999_are_refused() {
        let at = |seconds| from_timestamp(&prost_types::Timestamp { seconds, nanos: 0 });
        // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z are the ends.
        assert!(at(-62_135_596_800).is_some());
        assert!(at(-62_135_596_801).is_none());
        assert!(at(253_402_300_799).is_some());
        assert!(at(253_402_300_800).is_none());
        assert!(at(i64::MAX).is_none() && at(i64::MIN).is_none());
        assert!(date(1, 1, 1).is_some() && date(9999, 12, 31).is_some());
        for (y, m, d) in [
            (0, 1, 1),
            (10_000, 1, 1),
            (262_142, 1, 1),
            (-250_000, 1, 1),
            (2026, 2, 30),
            (2026, -1, 1),
            (2026, 1, i32::MAX),
        ] {
            assert!(date(y, m, d).is_none(), "{y}-{m}-{d}");
        }
    }
}
