//! The duration parser: any text is a duration or an error (never a panic, whatever the digits
//! or the size); a whole number of seconds, milliseconds or minutes means what it says.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use plainjobs::settings::parse_duration;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_duration(text);
    }
    // Well-formed inputs built from the bytes: the value must be exact.
    if let [a, b, c, d, unit, ..] = data {
        let n = u64::from(u32::from_le_bytes([*a, *b, *c, *d]));
        let (suffix, want) = match unit % 4 {
            0 => ("", Duration::from_secs(n)),
            1 => ("s", Duration::from_secs(n)),
            2 => ("ms", Duration::from_millis(n)),
            _ => ("m", Duration::from_secs(n * 60)),
        };
        let text = format!("{n}{suffix}");
        let got = parse_duration(&text).unwrap_or_else(|e| panic!("{text:?} refused: {e}"));
        // Parsed through f64 seconds: exact to well under a microsecond at these sizes.
        let diff = got.abs_diff(want);
        assert!(diff < Duration::from_micros(1), "{text:?}: {got:?} != {want:?}");
    }
});
