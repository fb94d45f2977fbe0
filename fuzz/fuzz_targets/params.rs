//! The parameter envelope decoder: any JSON either decodes into a job type or is refused with
//! an error (never a panic), and whatever decodes encodes back to an envelope that decodes to
//! the same value. plain.jobs' date strings are read by the plain_date/plain_datetime helpers.
#![no_main]

use chrono::{DateTime, NaiveDate, Utc};
use libfuzzer_sys::fuzz_target;
use plainjobs::params::{decode, encode, plain_datetime};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Named {
    user_id: i64,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Positional(i64, String);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Newtype(String);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Unit;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Dated {
    #[serde(with = "plainjobs::params::plain_date")]
    day: NaiveDate,
    #[serde(with = "plainjobs::params::plain_datetime")]
    at: DateTime<Utc>,
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    params: Option<&serde_json::Value>,
) {
    let Ok(job) = decode::<T>("fuzz.Job", params) else {
        return;
    };
    let envelope = encode("fuzz.Job", &job).expect("a decoded job encodes");
    let again: T = decode("fuzz.Job", Some(&envelope)).expect("an encoded job decodes");
    assert_eq!(job, again, "{params:?} -> {envelope}");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = plain_datetime::parse(text);
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for params in [None, Some(&value)] {
        round_trip::<Named>(params);
        round_trip::<Positional>(params);
        round_trip::<Newtype>(params);
        round_trip::<Unit>(params);
        round_trip::<Dated>(params);
        round_trip::<serde_json::Value>(params);
    }
});
