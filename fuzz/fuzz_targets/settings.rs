//! The settings parsers: a plainjobs.toml document and PLAINJOBS_* variables are applied or
//! refused with an error naming the key (never a panic), and accepted settings always make a
//! worker configuration. The duration parser inside them has a target of its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plainjobs::settings::Settings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut from_file = Settings::default();
    if from_file.apply_toml(text, "fuzz.toml").is_ok() {
        let _ = from_file.worker_config();
        assert!(from_file.concurrency >= 1, "{text:?}: concurrency 0 accepted");
    }
    // The same bytes as environment variables, one NAME=value a line.
    let vars = text.lines().filter_map(|line| {
        let (name, value) = line.split_once('=')?;
        Some((format!("PLAINJOBS_{}", name.to_ascii_uppercase()), value.to_string()))
    });
    let mut from_env = Settings::default();
    if from_env.apply_env(vars).is_ok() {
        let _ = from_env.worker_config();
        assert!(from_env.concurrency >= 1, "{text:?}: concurrency 0 accepted");
    }
});
