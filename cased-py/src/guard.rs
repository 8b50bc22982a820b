//! The guard every Python value passes before `depythonize` reads it: a container nested too
//! deep, or one that holds itself, would make the recursive conversion exhaust the stack and
//! kill the interpreter. Both are refused as a `ValidationError` naming the field, as are the
//! values JSON cannot carry faithfully (NaN, ±Inf, integers beyond 64 bits, strings with lone
//! surrogates, bytes), named by their path (`event_metadata.score`).

use cased_core::limits::{MAX_JSON_DEPTH, too_deep_message};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PyMapping,
    PySequence, PySet, PyString, PyTuple,
};

use crate::errors::CoreError;

/// How deep the guard lets a value nest: one level more than the core's limit, so that a
/// mapping holding a field (an event's `event_metadata`) may nest its field to the limit,
/// which the core then judges with its own message.
const GUARD_DEPTH: usize = MAX_JSON_DEPTH + 1;

enum Refusal {
    TooDeep,
    Cycle,
    /// A float JSON has no number for (NaN, ±Inf): `depythonize` would make it `null`.
    NotFinite(f64),
    /// An integer beyond 64 bits.
    TooLarge,
    /// A string (or a key) holding a lone surrogate, which UTF-8 cannot encode.
    BadUnicode,
    /// A value of a type JSON cannot hold (bytes, an object...).
    NotJson(String),
}

/// One step of the path to a refused value: a mapping key or a sequence index.
enum Seg {
    Key(String),
    Index(usize),
}

/// The arguments that are whole documents: paths inside them start at their keys (`checks[0]
/// .name`, as the core names them), not at the argument's name.
const DOCUMENTS: &[&str] = &["body", "config", "recording", "filter", "event"];

/// Refuses `obj` when it nests containers deeper than the limit, contains itself, or holds a
/// value JSON cannot carry faithfully (NaN, ±Inf, an integer beyond 64 bits, a string with a
/// lone surrogate, bytes...): a `ValidationError` whose field is the path to the value
/// (`event_metadata.score`, `checks[0].timeout`); `subject` names what was being read.
pub(crate) fn check(subject: &str, field: &str, obj: &Bound<'_, PyAny>) -> PyResult<()> {
    match refusal(field, obj)? {
        None => Ok(()),
        Some((path, m)) => Err(CoreError::invalid(subject, &path, m).into()),
    }
}

/// `obj` as JSON after [`check`]; what `depythonize` still cannot read is a `ValidationError`
/// naming `field` too (never a `TypeError`).
pub(crate) fn to_json(
    subject: &str,
    field: &str,
    obj: &Bound<'_, PyAny>,
) -> PyResult<serde_json::Value> {
    check(subject, field, obj)?;
    pythonize::depythonize(obj).map_err(|e| {
        CoreError::invalid(
            subject,
            field,
            format!("{e} (expected a JSON-compatible value)"),
        )
        .into()
    })
}

/// A text argument: a `str` without lone surrogates (a `ValidationError` on `field`, never a
/// `UnicodeEncodeError`); another type is a `TypeError` naming `field`.
pub(crate) fn text(subject: &str, field: &str, obj: &Bound<'_, PyAny>) -> PyResult<String> {
    match obj.cast::<PyString>() {
        Ok(s) => Ok(s
            .to_cow()
            .map_err(|_| {
                CoreError::invalid(
                    subject,
                    field,
                    "is not valid Unicode (it holds a lone surrogate, which UTF-8 cannot encode)",
                )
            })?
            .into_owned()),
        Err(_) => {
            let kind = obj.get_type().name()?;
            Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "{field}: expected str, got {kind}"
            )))
        }
    }
}

/// An optional text argument, as [`text`]; `None` is absent.
pub(crate) fn opt_text(
    subject: &str,
    field: &str,
    obj: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<String>> {
    match obj {
        Some(o) if !o.is_none() => text(subject, field, o).map(Some),
        _ => Ok(None),
    }
}

/// An optional non-negative int argument below 2³²: out of range is a `ValidationError` on
/// `field` (never an `OverflowError`), another type a `TypeError`.
pub(crate) fn opt_u32(
    subject: &str,
    field: &str,
    obj: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<u32>> {
    let Some(n) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if !n.is_instance_of::<PyInt>() {
        let kind = n.get_type().name()?;
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{field}: expected int, got {kind}"
        )));
    }
    n.extract::<u32>().map(Some).map_err(|_| {
        CoreError::invalid(
            subject,
            field,
            format!("must be between 0 and {}, got {n}", u32::MAX),
        )
        .into()
    })
}

/// The `(key, value)` pairs of a mapping argument; anything else is a `TypeError` naming
/// `field` (not an `AttributeError`).
pub(crate) fn items<'py>(
    field: &str,
    obj: &Bound<'py, PyAny>,
) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
    if !obj.hasattr("items")? {
        let kind = obj.get_type().name()?;
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{field}: expected a mapping, got {kind}"
        )));
    }
    obj.call_method0("items")?
        .try_iter()?
        .map(|item| item?.extract())
        .collect()
}

/// What is wrong with `obj`, as `path: problem`, for callers that report it as text (a custom
/// check's result), or None.
pub(crate) fn message(obj: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    Ok(refusal("result", obj)?.map(|(path, m)| format!("{path}: {m}")))
}

fn refusal(field: &str, obj: &Bound<'_, PyAny>) -> PyResult<Option<(String, String)>> {
    let mut path = Vec::new();
    let mut segs = Vec::new();
    let Some(r) = walk(obj, 0, &mut path, &mut segs)? else {
        return Ok(None);
    };
    let message = match r {
        // Named at the argument, as every binding does (a path 64 levels deep says nothing).
        Refusal::TooDeep => return Ok(Some((field.to_owned(), too_deep_message()))),
        Refusal::Cycle => {
            return Ok(Some((
                field.to_owned(),
                "contains a cycle (a container that holds itself)".into(),
            )));
        }
        Refusal::NotFinite(x) => format!(
            "{} is not a number JSON can hold (NaN and infinities are refused, not turned into null)",
            if x.is_nan() { "NaN".to_owned() } else { format!("{x}") }
        ),
        Refusal::TooLarge => {
            "is an integer beyond 64 bits (at most 18446744073709551615, at least -9223372036854775808)"
                .into()
        }
        Refusal::BadUnicode => {
            "is not valid Unicode (it holds a lone surrogate, which UTF-8 cannot encode)".into()
        }
        Refusal::NotJson(kind) => format!("is {kind}, which JSON cannot hold"),
    };
    let mut out = if segs.is_empty() || !DOCUMENTS.contains(&field) {
        field.to_owned()
    } else {
        String::new()
    };
    for seg in &segs {
        match seg {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    Ok(Some((out, message)))
}

/// A mapping key as a path segment (its text, cut to the core's echo limit).
fn key_seg(k: &Bound<'_, PyAny>) -> Result<Seg, Refusal> {
    let text = match k.cast::<PyString>() {
        Ok(s) => s.to_cow().map_err(|_| Refusal::BadUnicode)?.into_owned(),
        Err(_) => k
            .str()
            .map(|s| s.to_string())
            .unwrap_or_else(|_| "?".into()),
    };
    // Quoted when blank or holding control characters, as the core names keys.
    Ok(Seg::Key(cased_core::limits::field_segment(&text)))
}

/// Visits `obj` at `depth` containers below the top, `path` holding the containers above it
/// and `segs` the keys and indices that lead to it.
fn walk(
    obj: &Bound<'_, PyAny>,
    depth: usize,
    path: &mut Vec<*mut pyo3::ffi::PyObject>,
    segs: &mut Vec<Seg>,
) -> PyResult<Option<Refusal>> {
    // Scalars first, as `depythonize` reads them (strings and bytes are sequences too).
    if obj.is_none() || obj.is_instance_of::<PyBool>() {
        return Ok(None);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.to_cow().is_err().then_some(Refusal::BadUnicode));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let x = f.value();
        return Ok((!x.is_finite()).then_some(Refusal::NotFinite(x)));
    }
    if obj.is_instance_of::<PyInt>() {
        let fits = obj.extract::<i64>().is_ok() || obj.extract::<u64>().is_ok();
        return Ok((!fits).then_some(Refusal::TooLarge));
    }
    if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyByteArray>() {
        return Ok(Some(Refusal::NotJson("bytes (decode them to str)".into())));
    }
    // (key, value) for mappings, (index, value) for sequences.
    let children: Vec<(Option<Bound<'_, PyAny>>, Bound<'_, PyAny>)> =
        if let Ok(d) = obj.cast::<PyDict>() {
            d.iter().map(|(k, v)| (Some(k), v)).collect()
        } else if let Ok(l) = obj.cast::<PyList>() {
            l.iter().map(|v| (None, v)).collect()
        } else if let Ok(t) = obj.cast::<PyTuple>() {
            t.iter().map(|v| (None, v)).collect()
        } else if obj.is_instance_of::<PySet>()
            || obj.is_instance_of::<PyFrozenSet>()
            || obj.cast::<PySequence>().is_ok()
        {
            obj.try_iter()?
                .map(|v| v.map(|v| (None, v)))
                .collect::<PyResult<_>>()?
        } else if let Ok(m) = obj.cast::<PyMapping>() {
            m.items()?
                .iter()
                .map(|kv| {
                    let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = kv.extract()?;
                    Ok((Some(k), v))
                })
                .collect::<PyResult<_>>()?
        } else {
            // Nothing else converts (`depythonize` would refuse it without saying where).
            let kind = obj
                .get_type()
                .name()
                .map_or_else(|_| "value".to_owned(), |n| n.to_string());
            return Ok(Some(Refusal::NotJson(format!("a Python {kind}"))));
        };
    let depth = depth + 1;
    if depth > GUARD_DEPTH {
        return Ok(Some(Refusal::TooDeep));
    }
    let me = obj.as_ptr();
    if path.contains(&me) {
        return Ok(Some(Refusal::Cycle));
    }
    path.push(me);
    for (i, (key, child)) in children.iter().enumerate() {
        let seg = match key {
            Some(k) => match key_seg(k) {
                Ok(seg) => seg,
                Err(r) => {
                    segs.push(Seg::Index(i));
                    return Ok(Some(r));
                }
            },
            None => Seg::Index(i),
        };
        segs.push(seg);
        if let Some(refusal) = walk(child, depth, path, segs)? {
            return Ok(Some(refusal));
        }
        segs.pop();
    }
    path.pop();
    Ok(None)
}
