//! Durations written as strings (`2s`, `30s`, `5m`, `1h30m`), as in Kubernetes
//! and Flux manifests.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration parsed from a string such as `30s`, `5m`, `1h30m` or `250ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?} (expected e.g. 30s, 5m, 1h)")]
pub struct DurationError {
    /// The text as written.
    pub text: String,
}

/// Units accepted after a number, longest first so `ms` wins over `m`.
const UNITS: [(&str, u64); 5] = [
    ("ms", 1),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("d", 86_400_000),
];

impl Duration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    /// The standard-library duration.
    pub const fn get(self) -> std::time::Duration {
        self.0
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || DurationError {
            text: text.to_owned(),
        };
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(err());
        }
        // A bare zero is the one unit-less value that is not ambiguous.
        if rest == "0" {
            return Ok(Self(std::time::Duration::ZERO));
        }
        let mut millis: u64 = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(err());
            }
            let value: u64 = rest[..digits].parse().map_err(|_| err())?;
            rest = &rest[digits..];
            let (unit, factor) = UNITS
                .iter()
                .find(|(unit, _)| rest.starts_with(unit))
                .ok_or_else(err)?;
            rest = &rest[unit.len()..];
            millis = value
                .checked_mul(*factor)
                .and_then(|v| millis.checked_add(v))
                .ok_or_else(err)?;
        }
        Ok(Self(std::time::Duration::from_millis(millis)))
    }
}

impl fmt::Display for Duration {
    /// Prints the shortest form that parses back to the same value (`1h30m`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut millis = self.0.as_millis();
        if millis == 0 {
            return f.write_str("0s");
        }
        for (unit, factor) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
            if millis >= factor {
                write!(f, "{}{unit}", millis / factor)?;
                millis %= factor;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

/// Accepts numbers too, because YAML reads `interval: 30` as one: the error
/// then says what is wrong with the duration rather than with its type.
struct DurationVisitor;

impl serde::de::Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as 30s, 5m or 1h")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
        text.parse().map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Duration, E> {
        self.visit_str(&n.to_string())
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Duration, E> {
        self.visit_str(&n.to_string())
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Duration, E> {
        self.visit_str(&n.to_string())
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^(0|([0-9]+(ms|h|m|s|d))+)$",
            "description": "A duration such as 30s, 5m, 1h or 1h30m."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<std::time::Duration, DurationError> {
        text.parse::<Duration>().map(Duration::get)
    }

    #[test]
    fn parses_single_and_compound_units() {
        assert_eq!(parse("2s"), Ok(std::time::Duration::from_secs(2)));
        assert_eq!(parse("5m"), Ok(std::time::Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(std::time::Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(std::time::Duration::from_millis(250)));
        assert_eq!(
            parse("1m30s500ms"),
            Ok(std::time::Duration::from_millis(90_500))
        );
        assert_eq!(parse("1d"), Ok(std::time::Duration::from_secs(86_400)));
        assert_eq!(parse("0"), Ok(std::time::Duration::ZERO));
    }

    #[test]
    fn refuses_prose_and_bare_numbers() {
        for bad in ["5 minutes", "", "30", "m", "1.5h", "-1s", "1h 30m", "5x"] {
            let err = parse(bad).expect_err(bad);
            assert_eq!(
                err.to_string(),
                format!("invalid duration {bad:?} (expected e.g. 30s, 5m, 1h)")
            );
        }
    }

    #[test]
    fn numbers_get_the_duration_message() {
        let zero: Duration =
            serde_json::from_value(serde_json::json!(0)).expect("zero is a duration");
        assert_eq!(zero.get(), std::time::Duration::ZERO);
        let err =
            serde_json::from_value::<Duration>(serde_json::json!(30)).expect_err("bare number");
        assert_eq!(
            err.to_string(),
            "invalid duration \"30\" (expected e.g. 30s, 5m, 1h)"
        );
        assert!(serde_json::from_value::<Duration>(serde_json::json!(true)).is_err());
    }

    #[test]
    fn refuses_overflow() {
        assert!(parse("99999999999999999999h").is_err());
        assert!(parse("9999999999999999h").is_err());
    }

    #[test]
    fn display_round_trips() {
        for text in ["2s", "5m", "1h30m", "250ms", "1h0m1s", "0"] {
            let d: Duration = text.parse().expect(text);
            let shown = d.to_string();
            assert_eq!(shown.parse::<Duration>(), Ok(d), "{text} -> {shown}");
        }
        assert_eq!(Duration::from_secs(5400).to_string(), "1h30m");
    }
}
