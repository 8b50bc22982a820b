//! A string that must never be shown: API keys, webhook secrets, SMTP passwords.
//!
//! Secrets need not be written in configuration: a value that is exactly `${NAME}` is read from
//! the environment variable `NAME` ([`expand_env`]), for every secret field (check passwords,
//! HTTP request headers) in `cased.toml` and in the configurations given from Python and Node.

use std::borrow::Cow;
use std::fmt;

/// A secret string. Its `Debug` prints `Secret([redacted])`; it has no `Display` and no
/// `Serialize`, so it cannot end up in a log line, an error message or a report by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself, for the one place that must send it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// Reads a secret from a plain string in configuration, or from the environment when the string
/// is `${NAME}` (see [`expand_env`]). There is deliberately no `Serialize`: configuration holding
/// a secret serializes without it.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <String as serde::Deserialize>::deserialize(d)?;
        match expand_env(&raw) {
            Ok(Cow::Borrowed(_)) => Ok(Self(raw)),
            Ok(Cow::Owned(value)) => Ok(Self(value)),
            Err(e) => Err(serde::de::Error::custom(e)),
        }
    }
}

/// A configuration value that may name an environment variable: exactly `${NAME}` (`NAME` made
/// of ASCII letters, digits and `_`, not starting with a digit) is the variable's value;
/// `$${...}` is the literal text `${...}`; anything else is itself.
///
/// # Errors
/// A sentence naming the variable when it is not set (or not valid UTF-8).
pub fn expand_env(value: &str) -> Result<Cow<'_, str>, String> {
    if let Some(literal) = value.strip_prefix("$${") {
        return Ok(Cow::Owned(format!("${{{literal}")));
    }
    let Some(name) = value
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
    else {
        return Ok(Cow::Borrowed(value));
    };
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Ok(Cow::Borrowed(value));
    }
    match std::env::var(name) {
        Ok(v) => Ok(Cow::Owned(v)),
        Err(std::env::VarError::NotPresent) => Err(format!(
            "names the environment variable {name}, which is not set"
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!(
            "names the environment variable {name}, which is not valid UTF-8"
        )),
    }
}

/// Query parameter names that hold secrets, matched case-insensitively: a name is secret when
/// one of these is a word of it (words are split at `-`, `_` and `.`, so `x-api-key` and
/// `X-Amz-Signature` match) or, for the names of four letters or more, when it contains one
/// (`myToken`, `oauth_token`). A check's `redact` option adds names of its own.
pub const SECRET_PARAMS: &[&str] = &[
    "token",
    "api_key",
    "apikey",
    "key",
    "secret",
    "password",
    "passwd",
    "pwd",
    "auth",
    "signature",
    "sig",
    "access_token",
    "client_secret",
    "credential",
];

/// What a redacted value is replaced with.
pub(crate) const REDACTED: &str = "[redacted]";

/// Whether a query parameter (or header) named `name` holds a secret: see [`SECRET_PARAMS`];
/// `extra` names match exactly (case-insensitively).
#[must_use]
pub fn is_secret_name(name: &str, extra: &[String]) -> bool {
    let lower = name.to_ascii_lowercase();
    if extra.iter().any(|e| e.eq_ignore_ascii_case(name)) {
        return true;
    }
    let words: Vec<&str> = lower.split(['-', '_', '.']).collect();
    let joined: String = words.concat();
    SECRET_PARAMS.iter().any(|p| {
        let bare = p.replace('_', "");
        words.contains(p)
            || lower == *p
            || (p.len() >= 4 && (lower.contains(p) || joined.contains(&bare)))
    }) || matches!(
        lower.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    )
}

/// A URL safe to show: its password replaced by `***` and the values of its secret query
/// parameters (see [`is_secret_name`]) by `[redacted]`; anything else is kept as written. Text
/// that is not a URL is returned as is.
#[must_use]
pub fn redact_url(s: &str, extra: &[String]) -> String {
    let Ok(mut u) = url::Url::parse(s) else {
        return s.to_owned();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if let Some(q) = u.query().map(str::to_owned) {
        let parts: Vec<String> = q
            .split('&')
            .map(|part| {
                let (k, _) = part.split_once('=').unwrap_or((part, ""));
                let name = url::form_urlencoded::parse(k.as_bytes())
                    .next()
                    .map(|(k, _)| k.into_owned())
                    .unwrap_or_default();
                if is_secret_name(&name, extra) {
                    format!("{k}={REDACTED}")
                } else {
                    part.to_owned()
                }
            })
            .collect();
        u.set_query(Some(&parts.join("&")));
    }
    u.to_string()
}

/// Replaces, in free text such as an error message, every occurrence of `url`'s secrets (its
/// password and the values of its secret query parameters, raw and percent-encoded) with
/// `[redacted]`.
#[must_use]
pub(crate) fn scrub(text: &str, url: &str, extra: &[String]) -> String {
    let Ok(u) = url::Url::parse(url) else {
        return text.to_owned();
    };
    let mut secrets: Vec<String> = Vec::new();
    if let Some(p) = u.password() {
        secrets.push(p.to_owned());
    }
    if let Some(q) = u.query() {
        for part in q.split('&') {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let name = url::form_urlencoded::parse(k.as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default();
            if !v.is_empty() && is_secret_name(&name, extra) {
                secrets.push(v.to_owned());
                if let Some((_, decoded)) = url::form_urlencoded::parse(part.as_bytes()).next()
                    && !decoded.is_empty()
                {
                    secrets.push(decoded.into_owned());
                }
            }
        }
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_owned();
    for s in secrets {
        out = out.replace(&s, REDACTED);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for n in [
            "token",
            "TOKEN",
            "api_key",
            "apiKey",
            "x-api-key",
            "X-Amz-Signature",
            "sig",
            "access_token",
            "client_secret",
            "oauth_token",
            "password",
            "passwd",
            "auth",
            "Authorization",
            "key",
            "private.key",
        ] {
            assert!(is_secret_name(n, &[]), "{n}");
        }
        for n in ["page", "q", "monkey", "sort", "keyboard", "design", "id"] {
            assert!(!is_secret_name(n, &[]), "{n}");
        }
        assert!(is_secret_name("Tenant", &["tenant".into()]));
    }

    #[test]
    fn urls_keep_everything_but_their_secrets() {
        assert_eq!(
            redact_url(
                "https://u:pw@h.example/p?q=1&api_key=abc&X-Api-Key=d&token=e#f",
                &[]
            ),
            "https://u:***@h.example/p?q=1&api_key=[redacted]&X-Api-Key=[redacted]&token=[redacted]#f"
        );
        assert_eq!(
            redact_url("https://h.example/p?q=1", &[]),
            "https://h.example/p?q=1"
        );
        assert_eq!(
            redact_url("https://h.example/?tenant=acme", &["tenant".into()]),
            "https://h.example/?tenant=[redacted]"
        );
        assert_eq!(
            scrub(
                "GET https://h.example/?token=a%2Fb failed: a/b",
                "https://h.example/?token=a%2Fb",
                &[]
            ),
            "GET https://h.example/?token=[redacted] failed: [redacted]"
        );
    }

    #[test]
    fn env_references_are_read_and_everything_else_is_kept() {
        // PATH is set wherever tests run; the test does not change the environment.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(expand_env("${PATH}").unwrap(), path);
        assert_eq!(expand_env("$${PATH}").unwrap(), "${PATH}");
        for kept in [
            "plain", "${}", "${1X}", "${A B}", "x${PATH}", "${PATH}x", "$PATH",
        ] {
            assert_eq!(expand_env(kept).unwrap(), kept);
        }
        let e = expand_env("${CASED_TEST_SURELY_UNSET_4711}").unwrap_err();
        assert!(
            e.contains("CASED_TEST_SURELY_UNSET_4711") && e.contains("not set"),
            "{e}"
        );
        let s: Secret = serde_json::from_value(serde_json::json!("${PATH}")).unwrap();
        assert_eq!(s.expose(), path);
        let e =
            serde_json::from_value::<Secret>(serde_json::json!("${CASED_TEST_SURELY_UNSET_4711}"))
                .unwrap_err();
        assert!(e.to_string().contains("not set"), "{e}");
    }
}
