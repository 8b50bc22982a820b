//! The guard every Python value passes before `depythonize` reads it: a container nested too
//! deep, or one that holds itself, would make the recursive conversion exhaust the stack and
//! kill the interpreter. Both are refused as a `ValidationError` naming the field.

use cased_core::limits::{MAX_JSON_DEPTH, too_deep_message};
use pyo3::prelude::*;
use pyo3::types::{
    PyByteArray, PyBytes, PyDict, PyFrozenSet, PyList, PyMapping, PySequence, PySet, PyString,
    PyTuple,
};

use crate::errors::CoreError;

/// How deep the guard lets a value nest: one level more than the core's limit, so that a
/// mapping holding a field (an event's `event_metadata`) may nest its field to the limit,
/// which the core then judges with its own message.
const GUARD_DEPTH: usize = MAX_JSON_DEPTH + 1;

enum Refusal {
    TooDeep,
    Cycle,
}

/// Refuses `obj` when it nests containers deeper than the limit or contains itself; `subject`
/// and `field` name it in the `ValidationError`.
pub(crate) fn check(subject: &str, field: &str, obj: &Bound<'_, PyAny>) -> PyResult<()> {
    match message(obj)? {
        None => Ok(()),
        Some(m) => Err(CoreError::invalid(subject, field, m).into()),
    }
}

/// What is wrong with `obj`'s shape, for callers that report it as text (a custom check's
/// result), or None.
pub(crate) fn message(obj: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    let mut path = Vec::new();
    Ok(match walk(obj, 0, &mut path)? {
        None => None,
        Some(Refusal::TooDeep) => Some(too_deep_message()),
        Some(Refusal::Cycle) => Some("contains a cycle (a container that holds itself)".into()),
    })
}

/// Visits `obj` at `depth` containers below the top, `path` holding the containers above it.
fn walk(
    obj: &Bound<'_, PyAny>,
    depth: usize,
    path: &mut Vec<*mut pyo3::ffi::PyObject>,
) -> PyResult<Option<Refusal>> {
    // Scalars first, as `depythonize` reads them (strings and bytes are sequences too).
    if obj.is_none()
        || obj.is_instance_of::<PyString>()
        || obj.is_instance_of::<PyBytes>()
        || obj.is_instance_of::<PyByteArray>()
    {
        return Ok(None);
    }
    let children: Vec<Bound<'_, PyAny>> = if let Ok(d) = obj.cast::<PyDict>() {
        d.values().into_iter().collect()
    } else if let Ok(l) = obj.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        t.iter().collect()
    } else if obj.is_instance_of::<PySet>()
        || obj.is_instance_of::<PyFrozenSet>()
        || obj.cast::<PySequence>().is_ok()
    {
        obj.try_iter()?.collect::<PyResult<_>>()?
    } else if let Ok(m) = obj.cast::<PyMapping>() {
        m.values()?.into_iter().collect()
    } else {
        return Ok(None);
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
    for child in &children {
        if let Some(refusal) = walk(child, depth, path)? {
            return Ok(Some(refusal));
        }
    }
    path.pop();
    Ok(None)
}
