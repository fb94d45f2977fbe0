//! The cron parser and next-time computation: any text either fails to parse or gives a
//! schedule that fires after any instant of the next two centuries, strictly later, at a whole
//! minute, in order, and (in UTC, where no wall time is skipped) at a time it matches.
#![no_main]

use chrono::{DateTime, Timelike, Utc};
use libfuzzer_sys::fuzz_target;
use plainjobs::schedule::Schedule;

const ZONES: [chrono_tz::Tz; 4] = [
    chrono_tz::UTC,
    chrono_tz::Europe::Berlin,
    chrono_tz::America::New_York,
    // Half-hour daylight saving time.
    chrono_tz::Australia::Lord_Howe,
];

fuzz_target!(|data: &[u8]| {
    let [z, s0, s1, s2, s3, rest @ ..] = data else {
        return;
    };
    let Ok(expr) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(schedule) = Schedule::parse(expr) else {
        return;
    };
    // 1970 to 2106.
    let secs = i64::from(u32::from_le_bytes([*s0, *s1, *s2, *s3]));
    let after = DateTime::<Utc>::from_timestamp(secs, 0).expect("in range");
    let tz = ZONES[usize::from(*z) % ZONES.len()];
    let schedule = schedule.with_timezone(tz);
    let mut previous = after;
    for next in schedule.upcoming(after).take(3) {
        assert!(next > previous, "{expr:?} in {tz}: {next} after {previous}");
        assert_eq!((next.second(), next.nanosecond()), (0, 0), "{expr:?}: {next}");
        if tz == chrono_tz::UTC {
            assert!(schedule.matches_local(next.naive_utc()), "{expr:?}: {next}");
        }
        previous = next;
    }
    assert!(
        schedule.next_after(after).is_some(),
        "{expr:?} in {tz} parsed but never fires after {after}"
    );
});
