//! Limits on what cased accepts, shared by every entry point (Rust, Python, Node, the command
//! line) so that the same input is accepted or refused everywhere, with the key named rather
//! than exhausting file descriptors, memory or time: durations and nesting (see
//! `docs/reliability.md`), and what a configuration may hold, enforced when it is loaded (and,
//! for what the bindings add, when the monitor is built; see `docs/limits.md`).

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

/// Checks in one monitor (configured and custom ones together).
pub const MAX_CHECKS: usize = 1_000;
/// Metric sources in one monitor.
pub const MAX_SOURCES: usize = 100;
/// Detectors in one monitor.
pub const MAX_DETECTORS: usize = 1_000;
/// Characters in a check name, a source name or a detector's metric.
pub const MAX_CONFIG_NAME_CHARS: usize = 256;
/// Characters in any key of a configuration (a field name, a header name, a metric key).
pub const MAX_KEY_CHARS: usize = 256;
/// Bytes in any string value of a configuration (a URL, a query, a request body, a command).
pub const MAX_STRING_BYTES: usize = 64 * 1024;
/// Items in any list of a configuration, and entries in any table.
pub const MAX_ITEMS: usize = 10_000;
/// Bytes of a configuration file the command line reads (`cased.toml`, an event JSON file).
pub const MAX_CONFIG_BYTES: usize = 1 << 20;
/// Characters of user text echoed in an error message; longer text is cut with `…`.
pub const MAX_ECHO_CHARS: usize = 64;

/// A key as a segment of a field path in an error: as it is (cut like [`echo`]), or quoted
/// and escaped when it would not be seen (empty, blank, or holding control characters), so
/// every problem names a field a person can read.
#[must_use]
pub fn field_segment(key: &str) -> String {
    if key.trim().is_empty() || key.chars().any(char::is_control) {
        format!("{:?}", echo(key))
    } else {
        echo(key)
    }
}

/// At most [`MAX_ECHO_CHARS`] characters of `s` (with `…` when cut), for error messages.
#[must_use]
pub fn echo(s: &str) -> String {
    if s.chars().count() <= MAX_ECHO_CHARS {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX_ECHO_CHARS).collect();
        out.push('…');
        out
    }
}

/// Checks a name (of a check, a source, a metric): not empty, at most
/// [`MAX_CONFIG_NAME_CHARS`] characters, no control characters (NUL included).
pub(crate) fn check_name(p: &mut Problems, field: &str, name: &str) {
    let n = name.chars().count();
    if n > MAX_CONFIG_NAME_CHARS {
        p.add(
            field,
            format!("is {n} characters long; at most {MAX_CONFIG_NAME_CHARS} are allowed"),
        );
    } else if let Some(c) = name.chars().find(|c| c.is_control()) {
        p.add(
            field,
            format!("{:?} holds the control character {c:?}", echo(name)),
        );
    }
}

/// Walks a configuration before it is read into the model: every key, string and list within
/// the limits above. The problems name the path of the offending value (with long keys cut).
pub(crate) fn check_value(p: &mut Problems, path: &str, v: &Value) {
    match v {
        Value::String(s) if s.len() > MAX_STRING_BYTES => p.add(
            field(path),
            format!(
                "is {} bytes long; at most {MAX_STRING_BYTES} are allowed",
                s.len()
            ),
        ),
        Value::Array(a) => {
            if a.len() > MAX_ITEMS {
                p.add(
                    field(path),
                    format!("has {} items; at most {MAX_ITEMS} are allowed", a.len()),
                );
                return;
            }
            for (i, x) in a.iter().enumerate() {
                check_value(p, &format!("{path}[{i}]"), x);
            }
        }
        Value::Object(o) => {
            if o.len() > MAX_ITEMS {
                p.add(
                    field(path),
                    format!("has {} keys; at most {MAX_ITEMS} are allowed", o.len()),
                );
                return;
            }
            for (k, x) in o {
                let n = k.chars().count();
                let sub = if path.is_empty() {
                    echo(k)
                } else {
                    format!("{path}.{}", echo(k))
                };
                if n > MAX_KEY_CHARS {
                    p.add(
                        sub,
                        format!("is a key of {n} characters; at most {MAX_KEY_CHARS} are allowed"),
                    );
                } else {
                    check_value(p, &sub, x);
                }
            }
        }
        _ => {}
    }
}

fn field(path: &str) -> String {
    if path.is_empty() {
        "config".to_owned()
    } else {
        path.to_owned()
    }
}

/// Cuts every backquoted word of a serde message (`unknown field `…``) to
/// [`MAX_ECHO_CHARS`] characters.
pub(crate) fn shorten_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    for (i, part) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 {
            out.push_str(&echo(part));
        } else {
            out.push_str(part);
        }
    }
    out
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
