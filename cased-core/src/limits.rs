//! Limits on what cased accepts, shared by every entry point (Rust, Python, Node, the command
//! line) so that the same input is accepted or refused everywhere. See `docs/reliability.md`.

use std::time::Duration;

use serde_json::Value;

use crate::error::Problems;

/// The longest timeout accepted anywhere (a check's, a source's, an alert delivery attempt's,
/// the API client's): an hour. Longer is a typo, and a timeout near `Duration::MAX` would
/// overflow the clock.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The longest retry budget (`max_elapsed`) or backoff (`max_backoff`) accepted: a day.
pub const MAX_RETRY_SPAN: Duration = Duration::from_secs(24 * 3600);

/// How long a session waits, as it ends, for its alerts to be delivered (or to fail after their
/// retries) before its report is written; what is still undelivered then is reported failed.
pub const ALERT_FLUSH_GRACE: Duration = Duration::from_secs(30);

/// Adds a problem on `field` unless `0 < d <= MAX_TIMEOUT`.
pub(crate) fn check_timeout(p: &mut Problems, field: impl Into<String>, d: Duration) {
    if let Some(m) = timeout_problem(d) {
        p.add(field, m);
    }
}

/// What is wrong with a timeout, or None.
pub(crate) fn timeout_problem(d: Duration) -> Option<String> {
    if d.is_zero() {
        Some("must be greater than zero".to_owned())
    } else if d > MAX_TIMEOUT {
        Some(format!(
            "{} is longer than {}, the longest timeout accepted",
            crate::duration::format(d),
            crate::duration::format(MAX_TIMEOUT)
        ))
    } else {
        None
    }
}

/// Adds a problem on `field` when `d` is longer than [`crate::MAX_SCHEDULE_SPAN`] (a week), the
/// longest interval, cool-down, session or alert grouping delay accepted.
pub(crate) fn check_span(p: &mut Problems, field: impl Into<String>, d: Duration) {
    if d > crate::MAX_SCHEDULE_SPAN {
        p.add(
            field,
            format!(
                "{} is longer than {}, the longest accepted",
                crate::duration::format(d),
                crate::duration::format(crate::MAX_SCHEDULE_SPAN)
            ),
        );
    }
}

/// Adds a problem on `field` when `d` is longer than [`MAX_RETRY_SPAN`].
pub(crate) fn check_retry_span(p: &mut Problems, field: impl Into<String>, d: Duration) {
    if d > MAX_RETRY_SPAN {
        p.add(
            field,
            format!(
                "{} is longer than {}, the longest accepted",
                crate::duration::format(d),
                crate::duration::format(MAX_RETRY_SPAN)
            ),
        );
    }
}

/// The deepest nesting of objects and arrays accepted in a JSON value given to cased (a
/// configuration, an event's `event_metadata`, a check's evidence, a recording): `{}` is one
/// level, `{"a": []}` two. Deeper input is refused with "nested deeper than 64 levels" before it
/// can exhaust a stack; what is accepted always reads back from history and reports (whose JSON
/// reader stops at 128 levels, with room for the few levels a report adds around it).
pub const MAX_JSON_DEPTH: usize = 64;

/// How deeply `value` nests objects and arrays (0 for a scalar), counted without recursion.
#[must_use]
pub fn json_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(m) => Box::new(m.values()),
            _ => continue,
        };
        let depth = depth + 1;
        deepest = deepest.max(depth);
        stack.extend(children.map(|c| (c, depth)));
    }
    deepest
}

/// The message for a value nested deeper than [`MAX_JSON_DEPTH`].
#[must_use]
pub fn too_deep_message() -> String {
    format!("is nested deeper than {MAX_JSON_DEPTH} levels")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        let mut v = json!({});
        for _ in 1..levels {
            v = json!({ "a": v });
        }
        v
    }

    #[test]
    fn depth_counts_objects_and_arrays() {
        assert_eq!(json_depth(&json!(1)), 0);
        assert_eq!(json_depth(&json!({})), 1);
        assert_eq!(json_depth(&json!({"a": [1, {"b": []}]})), 4);
        assert_eq!(json_depth(&nested(MAX_JSON_DEPTH)), MAX_JSON_DEPTH);
    }

    #[test]
    fn a_value_at_the_limit_reads_back_from_json_text() {
        // Reports and history wrap what they are given in a few levels; serde_json's reader
        // stops at 128.
        let wrapped = json!({"r": {"event": {"event_metadata": nested(MAX_JSON_DEPTH)}}});
        let text = serde_json::to_string(&wrapped).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, wrapped);
    }
}
