//! Timestamps as Kamailio stores them, so rows written by ksrd and by Kamailio read the same.
//!
//! - PostgreSQL (`TIMESTAMP WITHOUT TIME ZONE`): Kamailio's srdb1 writes `YYYY-MM-DD HH:MM:SS` in
//!   the server's local time (`localtime_r`) and reads it back with `mktime` (DST guessed).
//! - SQLite: Kamailio's db_sqlite binds a Julian day number (REAL), `(t - 0.5) / 86400 + 2440587.5`,
//!   and reads `86400 * (jd - 2440587.5) + 0.5`. Text values (e.g. a column default) are read as
//!   local time like PostgreSQL's.

/// Julian day of the Unix epoch.
const UNIX_EPOCH_JD: f64 = 2440587.5;

/// Unix time to the Julian day number db_sqlite stores.
pub fn to_julian(t: i64) -> f64 {
    ((t as f64) - 0.5) / 86400.0 + UNIX_EPOCH_JD
}

/// A Julian day number (as db_sqlite stores it) to Unix time.
pub fn from_julian(jd: f64) -> i64 {
    // db_sqlite truncates 86400*(jd - epoch) + 0.5; the small bias keeps float error from
    // turning t into t-1.
    (86400.0 * (jd - UNIX_EPOCH_JD) + 0.5 + 1e-3).floor() as i64
}

/// Unix time to `YYYY-MM-DD HH:MM:SS` in local time.
pub fn to_local_string(t: i64) -> String {
    broken_down(t, false).unwrap_or_else(|| "1970-01-01 00:00:00".into())
}

/// `YYYY-MM-DD HH:MM:SS` of Unix time `t` in UTC (None if the C library cannot convert it).
pub fn to_utc_string(t: i64) -> Option<String> {
    broken_down(t, true)
}

fn broken_down(t: i64, utc: bool) -> Option<String> {
    let tt = t as libc::time_t;
    // SAFETY: gmtime_r/localtime_r only write into the zeroed tm we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe {
        if utc {
            !libc::gmtime_r(&tt, &mut tm).is_null()
        } else {
            !libc::localtime_r(&tt, &mut tm).is_null()
        }
    };
    if !ok {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    ))
}

/// `YYYY-MM-DD HH:MM:SS` (fractional seconds ignored) in local time to Unix time.
pub fn from_local_string(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once([' ', 'T'])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i32>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let time = time.split(['.', '+']).next()?;
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i32>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // SAFETY: mktime reads and normalises the tm we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = da;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    tm.tm_isdst = -1;
    let v = unsafe { libc::mktime(&mut tm) };
    Some(v as i64)
}

/// Current Unix time.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn julian_round_trips_like_db_sqlite() {
        for t in [
            0,
            1,
            59,
            86_399,
            1_700_000_000,
            1_900_000_123,
            2_000_000_001,
        ] {
            assert_eq!(from_julian(to_julian(t)), t, "{t}");
        }
        // 2000-01-01 00:00:00 UTC is JD 2451544.5; db_sqlite writes it 0.5 s early.
        assert!((to_julian(946_684_800) - (2451544.5 - 0.5 / 86400.0)).abs() < 1e-9);
    }

    #[test]
    fn local_strings_round_trip() {
        for t in [0, 1_700_000_000, 1_900_000_123] {
            let s = to_local_string(t);
            assert_eq!(s.len(), 19, "{s}");
            assert_eq!(from_local_string(&s), Some(t), "{s}");
        }
        assert!(from_local_string("2030-05-28 21:32:15").is_some());
        assert!(from_local_string("2030-05-28 21:32:15.25").is_some());
        assert_eq!(from_local_string("yesterday"), None);
        assert_eq!(from_local_string("2030-13-01 00:00:00"), None);
    }
}
