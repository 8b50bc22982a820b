//! JavaScript glue the mirrors share (no core counterpart): core values handed to JavaScript as
//! the object `JSON.parse` makes of their JSON, and JavaScript functions the core's tasks call
//! from any thread, awaiting a returned Promise.

use std::fmt;

use napi::bindgen_prelude::{
    FromNapiValue, Function, JsObjectValue, JsValue, JsValuesTupleIntoVec, Object, Promise,
    ToNapiValue, TypeName, Unknown,
};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::{Env, Result, Status, ValueType, sys};

/// JSON text written by the core's serde model, handed to JavaScript as `JSON.parse(text)`: the
/// very object Python's `json.loads` and a webhook receiver get. (napi's own serde conversion
/// would turn integers above 2^32, such as `started_at_unix_ms`, into `BigInt`s.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Json(pub(crate) String);

impl TypeName for Json {
    fn type_name() -> &'static str {
        "Json"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for Json {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        let env = Env::from_raw(env);
        let json: Object<'_> = env.get_global()?.get_named_property("JSON")?;
        let parse: Function<'_, String, Unknown<'_>> = json.get_named_property("parse")?;
        Ok(parse.call(val.0)?.raw())
    }
}

/// What a JavaScript function returned: a value, or a Promise of one.
pub(crate) enum Returned<T: 'static + FromNapiValue> {
    /// A plain value (converted on the JavaScript thread).
    Value(T),
    /// A Promise; its settled value is converted on the JavaScript thread when it settles.
    Promise(Promise<T>),
}

impl<T: 'static + FromNapiValue> FromNapiValue for Returned<T> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        // SAFETY (all three): `env` and `value` come from napi on the JavaScript thread.
        let unknown = unsafe { Unknown::from_napi_value(env, value)? };
        if unknown.is_promise()? {
            Ok(Self::Promise(unsafe {
                Promise::from_napi_value(env, value)?
            }))
        } else {
            Ok(Self::Value(unsafe { T::from_napi_value(env, value)? }))
        }
    }
}

/// A result that is not looked at (a rollback hook's).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ignored;

impl FromNapiValue for Ignored {
    unsafe fn from_napi_value(_env: sys::napi_env, _value: sys::napi_value) -> Result<Self> {
        Ok(Self)
    }
}

/// A JavaScript function the core may call from its own threads, taking `Args` and returning
/// (a Promise of) `T`.
///
/// The threadsafe function is *weak*: it never keeps the Node process alive by itself (a
/// monitor nobody waits on does not hold the process open); a pending `wait()` or iteration
/// does.
pub(crate) struct JsFn<Args: 'static + JsValuesTupleIntoVec, T: 'static + FromNapiValue> {
    tsfn: ThreadsafeFunction<Args, Returned<T>, Args, Status, false, true>,
}

impl<Args: 'static + JsValuesTupleIntoVec, T: 'static + FromNapiValue + Send> JsFn<Args, T> {
    /// Wraps `f`; call it on the JavaScript thread.
    pub(crate) fn new(f: &Function<'_, Args, Returned<T>>) -> Result<Self> {
        let tsfn = f
            .build_threadsafe_function::<Args>()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        Ok(Self { tsfn })
    }

    /// Calls the function on the JavaScript thread and waits for its result (the settled value
    /// of a returned Promise). `Err` is the message of what it threw or rejected with.
    pub(crate) async fn call(&self, args: Args) -> std::result::Result<T, String> {
        let returned = self.tsfn.call_async_catch(args).await.map_err(thrown)?;
        match returned {
            Returned::Value(v) => Ok(v),
            Returned::Promise(p) => p.await.map_err(thrown),
        }
    }
}

impl<Args: 'static + JsValuesTupleIntoVec, T: 'static + FromNapiValue> fmt::Debug
    for JsFn<Args, T>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsFn").finish_non_exhaustive()
    }
}

/// The message of a thrown value or rejection reason: an `Error`'s `message`, a thrown string
/// itself; napi's own failures (the environment shutting down) keep their reason.
fn thrown(e: napi::Error) -> String {
    if e.reason.is_empty() {
        "threw a value without a message".to_owned()
    } else {
        e.reason
    }
}

/// A JavaScript value read as the text `JSON.stringify` makes of it, for the core's serde
/// model to read: integers beyond 2^32 (`started_at_unix_ms`, `since_unix_ms`) stay integers,
/// where napi's own conversion would make them floats. `undefined` reads as `null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(pub(crate) String);

impl TypeName for JsonText {
    fn type_name() -> &'static str {
        "JsonText"
    }

    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl FromNapiValue for JsonText {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let env = Env::from_raw(env);
        // SAFETY: `value` comes from napi on the JavaScript thread.
        let unknown = unsafe { Unknown::from_napi_value(env.raw(), value)? };
        let json: Object<'_> = env.get_global()?.get_named_property("JSON")?;
        let stringify: Function<'_, Unknown<'_>, Unknown<'_>> =
            json.get_named_property("stringify")?;
        // A BigInt (or a cycle) makes `JSON.stringify` throw a bare TypeError: named instead.
        let text = match stringify.call(unknown) {
            Ok(text) => text,
            Err(original) => {
                return Err(named_refusal(env.raw(), &unknown, true)?.unwrap_or(original));
            }
        };
        if text.get_type()? == ValueType::String {
            // SAFETY: as above; it is a string.
            Ok(Self(unsafe {
                String::from_napi_value(env.raw(), text.raw())?
            }))
        } else {
            Ok(Self("null".to_owned()))
        }
    }
}

/// A JSON document argument (an event, a configuration, a recording): napi's serde conversion,
/// except that a value JSON cannot hold — `NaN`, `±Infinity`, a function, a symbol — is a
/// `validation` error naming its path (`event_metadata.scores.p99[1]`, `verdict.failure_limit`),
/// as Python names it, instead of napi's `InvalidArg` naming nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonArg(pub(crate) serde_json::Value);

impl TypeName for JsonArg {
    fn type_name() -> &'static str {
        "JsonArg"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl napi::bindgen_prelude::ValidateNapiValue for JsonArg {}

impl FromNapiValue for JsonArg {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        // SAFETY: `env` and `value` come from napi on the JavaScript thread.
        match unsafe { serde_json::Value::from_napi_value(env, value) } {
            Ok(v) => Ok(Self(v)),
            Err(original) => {
                let unknown = unsafe { Unknown::from_napi_value(env, value)? };
                match named_refusal(env, &unknown, false)? {
                    Some(error) => Err(error),
                    None => Err(original),
                }
            }
        }
    }
}

/// The `validation` error naming what JSON cannot hold in `value` (a BigInt too when `bigint`:
/// `JSON.stringify` throws on one), or None.
fn named_refusal(
    env: sys::napi_env,
    value: &Unknown<'_>,
    bigint: bool,
) -> Result<Option<napi::Error>> {
    let mut path = String::new();
    Ok(refusal(value, &mut path, 0, bigint)?.map(|message| {
        let field = if path.is_empty() {
            "value".to_owned()
        } else {
            path
        };
        let error = cased_core::Error::Validation(cased_core::ValidationErrors {
            subject: "argument".into(),
            errors: vec![cased_core::FieldError::new(field, message)],
        });
        crate::errors::to_js_error(&Env::from_raw(env), error)
    }))
}

/// What JSON cannot hold at or under `value`, with `path` set to where it is; None when the
/// walk finds nothing (napi's own error then stands). Bounded by the core's nesting limit.
fn refusal(
    value: &Unknown<'_>,
    path: &mut String,
    depth: usize,
    bigint: bool,
) -> Result<Option<String>> {
    match value.get_type()? {
        ValueType::BigInt if bigint => Ok(Some(
            "is a BigInt, which JSON cannot hold (pass a number or a string)".into(),
        )),
        ValueType::Number => {
            // SAFETY: a number, checked above.
            let x = unsafe { f64::from_napi_value(value.value().env, value.raw())? };
            if x.is_finite() {
                return Ok(None);
            }
            let shown = if x.is_nan() {
                "NaN"
            } else if x > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            };
            Ok(Some(format!(
                "{shown} is not a number JSON can hold (NaN and infinities are refused, not turned into null)"
            )))
        }
        ValueType::Function => Ok(Some("is a function, which JSON cannot hold".into())),
        ValueType::Symbol => Ok(Some("is a symbol, which JSON cannot hold".into())),
        ValueType::Object if depth <= cased_core::limits::MAX_JSON_DEPTH => {
            let object = Object::from_unknown(*value)?;
            let len = path.len();
            if value.is_array()? {
                for i in 0..object.get_array_length()? {
                    let item: Unknown<'_> = object.get_element(i)?;
                    path.push_str(&format!("[{i}]"));
                    if item.get_type()? == ValueType::Undefined {
                        return Ok(Some("is undefined, which JSON cannot hold".into()));
                    }
                    if let Some(m) = refusal(&item, path, depth + 1, bigint)? {
                        return Ok(Some(m));
                    }
                    path.truncate(len);
                }
            } else {
                for key in Object::keys(&object)? {
                    let Some(item) = object.get::<Unknown<'_>>(&key)? else {
                        continue;
                    };
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&cased_core::limits::field_segment(&key));
                    if let Some(m) = refusal(&item, path, depth + 1, bigint)? {
                        return Ok(Some(m));
                    }
                    path.truncate(len);
                }
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}
