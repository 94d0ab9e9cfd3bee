//! Wall-clock helpers. Tools print local times without a zone (apt's history, clamd's VERSION);
//! converting them needs the machine's UTC offset, which can only be read safely while the
//! process has one thread, so `main` calls [`init_local_offset`] before starting the runtime.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

static LOCAL_OFFSET: OnceLock<UtcOffset> = OnceLock::new();

/// Reads the local UTC offset once; falls back to UTC when it cannot be determined.
pub fn init_local_offset() {
    let offset = UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC);
    let _ = LOCAL_OFFSET.set(offset);
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A local date and time (year, month, day, hour, minute, second) in ms since the epoch.
pub fn local_to_epoch_ms((y, mo, d, h, mi, s): (i32, u8, u8, u8, u8, u8)) -> Option<i64> {
    let month = Month::try_from(mo).ok()?;
    let date = Date::from_calendar_date(y, month, d).ok()?;
    let time = Time::from_hms(h, mi, s).ok()?;
    let offset = LOCAL_OFFSET.get().copied().unwrap_or(UtcOffset::UTC);
    let at = PrimitiveDateTime::new(date, time).assume_offset(offset);
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Month number from its English three-letter abbreviation.
pub fn month_number(abbrev: &str) -> Option<u8> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(abbrev))
        .and_then(|i| u8::try_from(i + 1).ok())
}

/// A date as PowerShell's `ConvertTo-Json` writes it: `/Date(1717488387000)/` (Windows
/// PowerShell 5) or `2024-06-04T08:06:27` (PowerShell 7, local time), in ms since the epoch.
pub fn parse_powershell_date(s: &str) -> Option<i64> {
    if let Some(inner) = s.strip_prefix("/Date(") {
        let digits: String = inner
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        return digits.parse().ok();
    }
    let (date, time) = s.split_once('T')?;
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.get(..8)?.split(':').collect();
    match (d.as_slice(), t.as_slice()) {
        ([y, m, d], [h, mi, sec]) => local_to_epoch_ms((
            y.parse().ok()?,
            m.parse().ok()?,
            d.parse().ok()?,
            h.parse().ok()?,
            mi.parse().ok()?,
            sec.parse().ok()?,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_convert_with_the_offset() {
        // Without init the offset is UTC.
        assert_eq!(
            local_to_epoch_ms((2024, 11, 18, 8, 34, 28)),
            Some(1_731_918_868_000)
        );
        assert_eq!(local_to_epoch_ms((2024, 13, 1, 0, 0, 0)), None);
        assert_eq!(month_number("Nov"), Some(11));
        assert_eq!(month_number("Foo"), None);
        assert_eq!(
            parse_powershell_date("/Date(1717488387000)/"),
            Some(1_717_488_387_000)
        );
        assert_eq!(
            parse_powershell_date("2024-11-18T08:34:28"),
            Some(1_731_918_868_000)
        );
        assert_eq!(parse_powershell_date("yesterday"), None);
    }
}
