//! Human durations in configuration: `"250ms"`, `"10s"`, `"1m"`, `"1h 30m"` (humantime syntax).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Parses a human duration such as `"10s"`, `"1m"` or `"250ms"`.
///
/// # Errors
/// A message naming the value when it does not parse (bare numbers need a unit).
pub fn parse(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration like \"10s\", \"1m\" or \"250ms\": {e}"))
}

/// Formats a duration the way [`parse`] reads it (`"1m 30s"`).
#[must_use]
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Serde adapter: a `Duration` as a human string.
pub(crate) mod human {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde adapter: a list of `Duration`s as human strings.
pub(crate) mod human_vec {
    use super::*;
    use serde::ser::SerializeSeq;

    pub(crate) fn serialize<S: Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for d in v {
            seq.serialize_element(&format(*d))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .map(|s| parse(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// Serde adapter: an optional `Duration` as a human string.
pub(crate) mod human_opt {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format(*d)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| parse(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}
