//! Job parameters in plain.jobs' envelope: `{"args": [...], "kwargs": {...}}`.
//!
//! A job struct with named fields is stored as `kwargs`; a tuple struct (or newtype) as `args`; a
//! unit struct as empty `args` and `kwargs`. Decoding accepts what plain.jobs writes, so a row
//! enqueued by a Python producer runs on a Rust worker that registered the same name.
//!
//! plain.jobs stores dates and datetimes as strings `__plain://date/2024-01-15` and
//! `__plain://datetime/2024-01-15T10:30:45+00:00`; the [`plain_date`] and [`plain_datetime`]
//! modules read them (and plain ISO strings) with `#[serde(with = "…")]`, and write plain's form.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// A parameter envelope that cannot be built or read into the job's type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// The job could not be serialized.
    #[error("cannot encode the parameters of {job_class}: {source}")]
    Encode {
        /// The job class.
        job_class: String,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// The stored envelope is not of the form `{"args": [...], "kwargs": {...}}`.
    #[error("parameters of {job_class} are not a plain.jobs envelope ({{\"args\": [...], \"kwargs\": {{...}}}}): {found}")]
    NotAnEnvelope {
        /// The job class.
        job_class: String,
        /// A short description of what was found.
        found: String,
    },
    /// The envelope does not fit the job's type.
    #[error("parameters {params} do not fit job type {job_class}: {source}")]
    Decode {
        /// The job class.
        job_class: String,
        /// The stored envelope (shortened).
        params: String,
        /// The deserializer's error.
        #[source]
        source: serde_json::Error,
    },
}

/// Wraps a serialized job into plain.jobs' envelope.
///
/// # Errors
/// [`ParamsError::Encode`] if serialization fails (a map with non-string keys, say).
///
/// # Example
/// ```
/// #[derive(serde::Serialize)]
/// struct Welcome { user_id: i64 }
/// let env = plainjobs::params::encode("app.Welcome", &Welcome { user_id: 7 }).unwrap();
/// assert_eq!(env, serde_json::json!({"args": [], "kwargs": {"user_id": 7}}));
/// ```
pub fn encode<T: Serialize + ?Sized>(job_class: &str, job: &T) -> Result<Value, ParamsError> {
    let value = serde_json::to_value(job).map_err(|source| ParamsError::Encode {
        job_class: job_class.to_string(),
        source,
    })?;
    let (args, kwargs) = match value {
        Value::Object(map) => (Vec::new(), map),
        Value::Array(items) => (items, Map::new()),
        Value::Null => (Vec::new(), Map::new()),
        other => (vec![other], Map::new()),
    };
    let mut env = Map::new();
    env.insert("args".into(), Value::Array(args));
    env.insert("kwargs".into(), Value::Object(kwargs));
    Ok(Value::Object(env))
}

fn shorten(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}

/// Reads a job of type `T` out of a stored envelope (`None` or JSON `null` means no parameters).
///
/// `kwargs` decode into a struct with named fields; `args` into a tuple struct, or, when there is
/// exactly one, into a newtype struct.
///
/// # Errors
/// [`ParamsError::NotAnEnvelope`] for a value that is not an envelope, [`ParamsError::Decode`]
/// when the envelope does not fit `T`; both name the job class.
///
/// # Example
/// ```
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct Welcome { user_id: i64 }
/// let env = serde_json::json!({"args": [], "kwargs": {"user_id": 7}});
/// let job: Welcome = plainjobs::params::decode("app.Welcome", Some(&env)).unwrap();
/// assert_eq!(job, Welcome { user_id: 7 });
/// ```
pub fn decode<T: DeserializeOwned>(
    job_class: &str,
    params: Option<&Value>,
) -> Result<T, ParamsError> {
    let not_env = |found: String| ParamsError::NotAnEnvelope {
        job_class: job_class.to_string(),
        found,
    };
    let (args, kwargs) = match params {
        None | Some(Value::Null) => (Vec::new(), Map::new()),
        Some(Value::Object(map)) => {
            let known = |k: &String| k == "args" || k == "kwargs" || k == OPTIONS_KEY;
            if let Some(key) = map.keys().find(|k| !known(k)) {
                return Err(not_env(format!(
                    "unexpected key {key:?} in {}",
                    shorten(&Value::Object(map.clone()))
                )));
            }
            let args = match map.get("args") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a.clone(),
                Some(other) => return Err(not_env(format!("\"args\" is {}", shorten(other)))),
            };
            let kwargs = match map.get("kwargs") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(k)) => k.clone(),
                Some(other) => return Err(not_env(format!("\"kwargs\" is {}", shorten(other)))),
            };
            (args, kwargs)
        }
        Some(other) => return Err(not_env(shorten(other))),
    };
    let original = params.cloned().unwrap_or(Value::Null);
    let decode_err = |source| ParamsError::Decode {
        job_class: job_class.to_string(),
        params: shorten(&original),
        source,
    };
    match (args.is_empty(), kwargs.is_empty()) {
        (true, false) => serde_json::from_value(Value::Object(kwargs)).map_err(decode_err),
        (false, true) => {
            if args.len() == 1 {
                // A newtype struct reads its single value; a 1-tuple reads the array.
                match serde_json::from_value(args[0].clone()) {
                    Ok(v) => Ok(v),
                    Err(first) => {
                        serde_json::from_value(Value::Array(args)).map_err(|_| decode_err(first))
                    }
                }
            } else {
                serde_json::from_value(Value::Array(args)).map_err(decode_err)
            }
        }
        (true, true) => {
            // A unit struct reads null; a struct whose fields all have defaults reads {}.
            serde_json::from_value(Value::Null)
                .or_else(|_| serde_json::from_value(Value::Object(Map::new())))
                .or_else(|_| serde_json::from_value(Value::Array(Vec::new())))
                .map_err(decode_err)
        }
        (false, false) => {
            // Positional and keyword arguments together: offer the job a map with both.
            let mut map = kwargs;
            map.insert("args".into(), Value::Array(args));
            serde_json::from_value(Value::Object(map)).map_err(decode_err)
        }
    }
}

/// The envelope's key for run options of plainjobs' own (beside `args` and `kwargs`): plain.jobs
/// reads only `args` and `kwargs`, so its workers ignore it.
const OPTIONS_KEY: &str = "plainjobs";

/// Options an enqueue stores with a job's parameters (under the envelope's `plainjobs` key),
/// read back by the worker that runs it. A retry or deferral made by plainjobs keeps them; one
/// made by plain.jobs' Python code drops them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RunOptions {
    /// The longest one run may take.
    pub timeout: Option<std::time::Duration>,
}

impl RunOptions {
    /// The options stored in `params` (none when absent or not understood: a value we cannot
    /// read is ignored, with a warning, rather than failing the job).
    pub fn read(params: Option<&Value>) -> RunOptions {
        let Some(options) = params.and_then(|p| p.get(OPTIONS_KEY)) else {
            return RunOptions::default();
        };
        let timeout = match options.get("timeout_ms") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(ms) if ms > 0 => Some(std::time::Duration::from_millis(ms)),
                _ => {
                    tracing::warn!(timeout_ms = %v, "ignoring a stored timeout that is not a positive number of milliseconds");
                    None
                }
            },
        };
        RunOptions { timeout }
    }

    /// Stores these options in `envelope` (nothing when there are none).
    pub fn write(&self, envelope: &mut Value) {
        let Some(timeout) = self.timeout else {
            return;
        };
        if let Value::Object(map) = envelope {
            let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
            let mut options = Map::new();
            options.insert("timeout_ms".into(), Value::from(ms));
            map.insert(OPTIONS_KEY.into(), Value::Object(options));
        }
    }
}

const DATE_PREFIX: &str = "__plain://date/";
const DATETIME_PREFIX: &str = "__plain://datetime/";

/// `#[serde(with = "plainjobs::params::plain_date")]` for a [`chrono::NaiveDate`] field: reads
/// `__plain://date/YYYY-MM-DD` or a bare ISO date, writes plain's form.
pub mod plain_date {
    use super::DATE_PREFIX;
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `__plain://date/YYYY-MM-DD`.
    ///
    /// # Errors
    /// Only the serializer's own.
    pub fn serialize<S: Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{DATE_PREFIX}{}", date.format("%Y-%m-%d")))
    }

    /// Reads `__plain://date/YYYY-MM-DD` or `YYYY-MM-DD`.
    ///
    /// # Errors
    /// A message naming the text when it is not a date.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let text = String::deserialize(d)?;
        let body = text.strip_prefix(DATE_PREFIX).unwrap_or(&text);
        NaiveDate::parse_from_str(body, "%Y-%m-%d").map_err(|e| {
            serde::de::Error::custom(format!("{text:?} is not a date (YYYY-MM-DD): {e}"))
        })
    }
}

/// `#[serde(with = "plainjobs::params::plain_datetime")]` for a [`chrono::DateTime<Utc>`] field:
/// reads `__plain://datetime/…` or a bare ISO 8601 datetime (a time without offset is taken as
/// UTC, as Python writes naive datetimes), writes plain's form with `+00:00`.
pub mod plain_datetime {
    use super::DATETIME_PREFIX;
    use chrono::{DateTime, NaiveDateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `__plain://datetime/2024-01-15T10:30:45.123456+00:00` (microseconds only when non-zero).
    ///
    /// # Errors
    /// Only the serializer's own.
    pub fn serialize<S: Serializer>(dt: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        let body = if dt.timestamp_subsec_micros() == 0 {
            dt.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
        } else {
            dt.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
        };
        s.serialize_str(&format!("{DATETIME_PREFIX}{body}"))
    }

    /// Reads plain's form or an ISO 8601 datetime, with or without offset.
    ///
    /// # Errors
    /// A message naming the text when it is not a datetime.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("{text:?} is not an ISO 8601 datetime"))
        })
    }

    /// Reads plain's form or an ISO 8601 datetime; None when it is neither.
    pub fn parse(text: &str) -> Option<DateTime<Utc>> {
        let body = text.strip_prefix(DATETIME_PREFIX).unwrap_or(text);
        if let Ok(dt) = DateTime::parse_from_rfc3339(body) {
            return Some(dt.with_timezone(&Utc));
        }
        for fmt in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%:z"] {
            if let Ok(dt) = DateTime::parse_from_str(body, fmt) {
                return Some(dt.with_timezone(&Utc));
            }
        }
        for fmt in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
        ] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(body, fmt) {
                return Some(naive.and_utc());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDate, TimeZone, Utc};
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Named {
        user_id: i64,
        name: String,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Tuple(i64, String);
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Newtype(String);
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Unit;
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Dated {
        #[serde(with = "plain_date")]
        day: NaiveDate,
        #[serde(with = "plain_datetime")]
        at: DateTime<Utc>,
    }

    #[test]
    fn named_fields_are_kwargs() {
        let v = encode(
            "x",
            &Named {
                user_id: 1,
                name: "a".into(),
            },
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"args": [], "kwargs": {"user_id": 1, "name": "a"}})
        );
        assert_eq!(
            decode::<Named>("x", Some(&v)).unwrap(),
            Named {
                user_id: 1,
                name: "a".into()
            }
        );
    }

    #[test]
    fn tuples_and_newtypes_are_args() {
        let v = encode("x", &Tuple(1, "a".into())).unwrap();
        assert_eq!(v, json!({"args": [1, "a"], "kwargs": {}}));
        assert_eq!(
            decode::<Tuple>("x", Some(&v)).unwrap(),
            Tuple(1, "a".into())
        );
        let v = encode("x", &Newtype("echo hi".into())).unwrap();
        assert_eq!(v, json!({"args": ["echo hi"], "kwargs": {}}));
        assert_eq!(
            decode::<Newtype>("x", Some(&v)).unwrap(),
            Newtype("echo hi".into())
        );
    }

    #[test]
    fn unit_and_missing() {
        let v = encode("x", &Unit).unwrap();
        assert_eq!(v, json!({"args": [], "kwargs": {}}));
        assert_eq!(decode::<Unit>("x", Some(&v)).unwrap(), Unit);
        assert_eq!(decode::<Unit>("x", None).unwrap(), Unit);
    }

    #[test]
    fn bad_envelopes_name_the_problem() {
        let err = decode::<Named>("app.Welcome", Some(&json!([1, 2]))).unwrap_err();
        assert!(err.to_string().contains("app.Welcome"), "{err}");
        assert!(
            err.to_string().contains("not a plain.jobs envelope"),
            "{err}"
        );
        let err = decode::<Named>(
            "app.Welcome",
            Some(&json!({"args": [], "kwargs": {"user_id": "x"}})),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("do not fit job type app.Welcome"), "{text}");
        assert!(matches!(err, ParamsError::Decode { .. }));
    }

    #[test]
    fn plain_dates_round_trip() {
        let v = json!({"args": [], "kwargs": {
            "day": "__plain://date/2024-01-15",
            "at": "__plain://datetime/2024-01-15T10:30:45.250000+00:00"}});
        let d: Dated = decode("x", Some(&v)).unwrap();
        assert_eq!(d.day, NaiveDate::from_ymd_opt(2024, 1, 15).unwrap());
        assert_eq!(
            d.at,
            Utc.with_ymd_and_hms(2024, 1, 15, 10, 30, 45).unwrap()
                + chrono::Duration::milliseconds(250)
        );
        assert_eq!(encode("x", &d).unwrap(), v);
        // Python's naive isoformat and an offset other than UTC.
        let v = json!({"args": [], "kwargs": {"day": "2024-01-15", "at": "__plain://datetime/2024-01-15T10:30:45"}});
        let d: Dated = decode("x", Some(&v)).unwrap();
        assert_eq!(d.at, Utc.with_ymd_and_hms(2024, 1, 15, 10, 30, 45).unwrap());
        let v = json!({"args": [], "kwargs": {"day": "2024-01-15", "at": "__plain://datetime/2024-01-15T12:30:45+02:00"}});
        let d: Dated = decode("x", Some(&v)).unwrap();
        assert_eq!(d.at, Utc.with_ymd_and_hms(2024, 1, 15, 10, 30, 45).unwrap());
        let bad = json!({"args": [], "kwargs": {"day": "__plain://date/2024-13-01", "at": "2024-01-01T00:00:00"}});
        let err = decode::<Dated>("x", Some(&bad)).unwrap_err().to_string();
        assert!(err.contains("2024-13-01"), "{err}");
    }

    #[test]
    fn run_options_live_beside_args_and_kwargs_and_do_not_disturb_decoding() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct Welcome {
            user_id: i64,
        }
        let mut env = encode("app.Welcome", &Welcome { user_id: 7 }).unwrap();
        let opts = RunOptions {
            timeout: Some(std::time::Duration::from_millis(1500)),
        };
        opts.write(&mut env);
        assert_eq!(env["plainjobs"], serde_json::json!({"timeout_ms": 1500}));
        assert_eq!(RunOptions::read(Some(&env)), opts);
        let job: Welcome = decode("app.Welcome", Some(&env)).unwrap();
        assert_eq!(job, Welcome { user_id: 7 });
        let bad = serde_json::json!({"args": [], "kwargs": {}, "plainjobs": {"timeout_ms": -5}});
        assert_eq!(RunOptions::read(Some(&bad)), RunOptions::default());
        let other = serde_json::json!({"args": [], "kwargs": {}, "extra": 1});
        assert!(decode::<Welcome>("app.Welcome", Some(&other)).is_err());
    }
}
