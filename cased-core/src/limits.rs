//! Limits on what a configuration may hold, enforced when it is loaded (and, for what the
//! bindings add, when the monitor is built), so a runaway configuration is refused with the key
//! named rather than exhausting file descriptors, memory or time. They are documented in
//! `docs/limits.md`.

use serde_json::Value;

use crate::error::Problems;

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
