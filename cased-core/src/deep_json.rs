//! Reading back JSON of any nesting. `serde_json` refuses documents nested more than 128 levels
//! ("recursion limit exceeded"), but what cased accepts and stores (event metadata, check
//! evidence from custom checks) may nest deeper. The history reader must read back whatever the
//! writer stored, so a document over the limit is parsed again without it, on a thread whose
//! stack is large enough for the deepest document the size limits allow.

use serde::de::DeserializeOwned;

/// Stack of the thread that parses a deeply nested document. Reserved, not committed: only the
/// pages the recursion touches are used.
const DEEP_STACK_BYTES: usize = 1 << 30;

/// Parses `text` like `serde_json::from_str`, without its nesting limit.
///
/// # Errors
/// The parser's error when `text` is not JSON of type `T`.
pub(crate) fn from_str<T: DeserializeOwned + Send>(text: &str) -> serde_json::Result<T> {
    match serde_json::from_str(text) {
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => {
            std::thread::scope(|scope| {
                let parse = move || {
                    let mut de = serde_json::Deserializer::from_str(text);
                    de.disable_recursion_limit();
                    let value = T::deserialize(&mut de)?;
                    de.end()?;
                    Ok(value)
                };
                match std::thread::Builder::new()
                    .name("cased-deep-json".into())
                    .stack_size(DEEP_STACK_BYTES)
                    .spawn_scoped(scope, parse)
                {
                    Ok(handle) => handle.join().unwrap_or(Err(e)),
                    Err(_) => Err(e),
                }
            })
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn any_depth_is_read() {
        assert!(serde_json::from_str::<Value>(&nested(200)).is_err());
        let v: Value = super::from_str(&nested(200)).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), nested(200));
        assert!(super::from_str::<Value>("[[1]").is_err());
        assert!(super::from_str::<Value>(&format!("{} x", nested(200))).is_err());
    }
}
