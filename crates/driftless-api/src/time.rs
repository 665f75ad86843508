//! [`Time`]: a point in time as Kubernetes writes one in a status (`metav1.Time`):
//! an RFC 3339 string in UTC.
//!
//! Stores written before the status model moved here kept times as integer
//! milliseconds since the Unix epoch; those still decode.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since the Unix epoch.
pub type UnixMillis = u64;

/// A UTC point in time with millisecond precision; JSON `"2024-05-01T12:00:00.5Z"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(jiff::Timestamp);

impl Time {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Self::from_unix_ms(unix_ms(jiff::Timestamp::now()))
    }

    /// The time `ms` milliseconds after the Unix epoch (saturating at the
    /// largest time RFC 3339 can write, the year 9999).
    pub fn from_unix_ms(ms: UnixMillis) -> Self {
        let ms = i64::try_from(ms).unwrap_or(i64::MAX);
        let max = jiff::Timestamp::MAX.as_millisecond();
        Self(jiff::Timestamp::from_millisecond(ms.min(max)).unwrap_or(jiff::Timestamp::MAX))
    }

    /// Milliseconds since the Unix epoch; 0 for times before it.
    pub fn unix_ms(self) -> UnixMillis {
        unix_ms(self.0)
    }
}

fn unix_ms(t: jiff::Timestamp) -> UnixMillis {
    u64::try_from(t.as_millisecond()).unwrap_or(0)
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for Time {
    type Err = jiff::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<jiff::Timestamp>()
            .map(|t| Self::from_unix_ms(unix_ms(t)))
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TimeVisitor)
    }
}

struct TimeVisitor;

impl Visitor<'_> for TimeVisitor {
    type Value = Time;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 time, or milliseconds since the Unix epoch")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Time, E> {
        v.parse()
            .map_err(|e| E::custom(format_args!("time {v:?}: {e}")))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Time, E> {
        Ok(Time::from_unix_ms(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Time, E> {
        Ok(Time::from_unix_ms(u64::try_from(v).unwrap_or(0)))
    }
}

impl JsonSchema for Time {
    fn schema_name() -> Cow<'static, str> {
        "Time".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "date-time"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_rfc3339_and_reads_it_back() {
        let t = Time::from_unix_ms(1_714_564_800_500);
        let json = serde_json::to_string(&t).expect("serialisable");
        assert_eq!(json, r#""2024-05-01T12:00:00.5Z""#);
        let back: Time = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back, t);
        let whole: Time = serde_json::from_str(r#""2024-05-01T14:00:00+02:00""#).expect("offset");
        assert_eq!(whole.unix_ms(), 1_714_564_800_000);
        assert_eq!(whole.to_string(), "2024-05-01T12:00:00Z");
    }

    #[test]
    fn reads_the_milliseconds_of_older_stores() {
        let t: Time = serde_json::from_str("1714564800000").expect("integer");
        assert_eq!(t.to_string(), "2024-05-01T12:00:00Z");
    }

    #[test]
    fn refuses_text_that_is_no_time() {
        let err = serde_json::from_str::<Time>(r#""yesterday""#).expect_err("not a time");
        assert!(err.to_string().contains("time \"yesterday\""), "{err}");
    }

    #[test]
    fn out_of_range_values_saturate() {
        assert!(
            Time::from_unix_ms(u64::MAX)
                .to_string()
                .starts_with("9999-12-")
        );
        assert!(Time::now().unix_ms() > 1_577_836_800_000);
    }
}
