//! The monitor: mirrors `cased_core::Monitor` (built from the one configuration, plus custom
//! checks and a rollback hook written in JavaScript) and `cased_core::RollbackContext`.

use napi::bindgen_prelude::{
    ClassInstance, Either, Float64Array, FromNapiValue, Function, JsValue, Object, PromiseRaw,
    Unknown,
};
use napi::{Env, Result, ValueType};
use napi_derive::napi;
use serde_json::{Value, json};

use crate::alert::AlertStream;
use crate::check::{JsOutcome, custom_check};
use crate::client::type_name;
use crate::errors::to_js_error;
use crate::event::DeploymentEvent;
use crate::history::History;
use crate::js::{Ignored, JsFn, Json, JsonArg, Returned};
use crate::metrics::BaselineStore;
use crate::session::{Session, report_json};

/// The option names `new Monitor(config, options)` accepts; any other key is reported by name.
const OPTION_NAMES: [&str; 6] = [
    "checks",
    "onRollback",
    "notifiers",
    "history",
    "baselineStore",
    "baselines",
];

/// What the rollback hook is given.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackContext {
    /// The session's id.
    pub session_id: String,
    /// The deployment event, with its wire names.
    #[napi(ts_type = "DeploymentEventInit")]
    pub event: Value,
    /// Why the deployment is unhealthy (the verdict's reason).
    pub reason: String,
}

/// The JavaScript parts of a monitor, the second argument of `new Monitor(config, options)`.
/// A key not listed here is rejected by name.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorOptions {
    /// Custom checks by name, run at every tick after the configured ones, concurrently, each
    /// within the schedule's smallest interval (see `CheckOutcomeInit`).
    #[napi(ts_type = "Record<string, () => Promise<CheckOutcomeInit> | CheckOutcomeInit>")]
    pub checks: Option<Value>,
    /// Called exactly once per session when its verdict becomes unhealthy, before the session
    /// ends. A throw, a rejection, or taking more than 60 s is recorded in the report's
    /// `rollback.error`; it never crashes the session.
    #[napi(ts_type = "(context: RollbackContext) => Promise<void> | void")]
    pub on_rollback: Option<Value>,
    /// The notifiers of the `"type": "custom"` alert channels, by channel name: each gets every
    /// notification for its channel (a `cased.notification/v1` object). A throw or a rejection
    /// is a failed attempt, retried with the channel's backoff; a delivery that finally fails
    /// is reported in the session's report (`alert_failures`).
    #[napi(ts_type = "Record<string, (notification: Notification) => Promise<void> | void>")]
    pub notifiers: Option<Value>,
    /// Where every session's event, ticks, findings, alerts and report are recorded as it runs
    /// (a failing write is logged and never stops the session).
    #[napi(ts_type = "History")]
    pub history: Option<Value>,
    /// Where the `baseline` detectors' baselines come from and each session's samples go: a
    /// detector's metric is compared with the last healthy deployments of the same repository
    /// and environment; a session whose checks and findings were healthy becomes part of the
    /// next one's baseline. Without a baseline the metric is listed in the report's `no_data`.
    #[napi(ts_type = "BaselineStore")]
    pub baseline_store: Option<Value>,
    /// Baselines given directly, by metric: values (`number[]` or `Float64Array`) for the
    /// value detectors, `{ errors, requests }` for the error-rate detectors. They take
    /// precedence over every other baseline.
    #[napi(
        ts_type = "Record<string, number[] | Float64Array | { errors: number; requests: number }>"
    )]
    pub baselines: Option<Value>,
}

/// Starts monitoring sessions: a configuration (schedule, checks, verdict rules), custom checks
/// and a rollback hook. One monitor serves any number of concurrent sessions.
///
/// ```js
/// const monitor = new Monitor(
///   { schedule: { intervals: ['10s', '1m'], cooldown: '15m' }, verdict: { failure_limit: 1 } },
///   {
///     checks: { queue: async () => ({ status: (await depth()) < 1000 ? 'pass' : 'fail' }) },
///     onRollback: async ({ event, reason }) => rollBack(event.commit_sha, reason),
///   },
/// )
/// const report = await monitor.run(event) // or: const session = await monitor.start(event)
/// ```
#[napi]
#[derive(Debug, Clone)]
pub struct Monitor {
    inner: cased_core::Monitor,
}

#[napi]
impl Monitor {
    /// Reads `config` (the core's model, wire keys; `{}` or nothing for every default) and
    /// `options`, and builds the monitor. Throws one `validation` error listing every problem:
    /// a bad configuration key or value under its path (`schedule.intervals[1]`, `verdikt`,
    /// `checks[0].url`), a check name used twice (`checks[1].name`, or `checks` when a custom
    /// check has a configured check's name), a custom check that is not a function
    /// (`checks.<name>`), an `onRollback` that is not one, or an unknown option.
    #[napi(
        constructor,
        ts_args_type = "config?: MonitorConfig | null, options?: MonitorOptions | null"
    )]
    pub fn new(env: &Env, config: Option<JsonArg>, options: Option<Unknown<'_>>) -> Result<Self> {
        let mut problems = Vec::new();
        let config =
            cased_core::MonitorConfig::from_value(config.map_or_else(|| json!({}), |j| j.0));
        let mut builder = match config {
            Ok(config) => Some(cased_core::Monitor::builder(config)),
            Err(e) => {
                problems.extend(e.field_errors().iter().cloned());
                None
            }
        };
        if let Some(options) = options {
            match options.get_type()? {
                ValueType::Null | ValueType::Undefined => {}
                ValueType::Object if !options.is_array()? => {
                    builder =
                        read_options(&Object::from_unknown(options)?, builder, &mut problems)?;
                }
                _ => problems.push(cased_core::FieldError::new(
                    "options",
                    format!(
                        "must be an object such as {{ checks, onRollback }}, got {}",
                        type_name(&options)?
                    ),
                )),
            }
        }
        if let Some(builder) = builder {
            match builder.build() {
                Ok(inner) if problems.is_empty() => return Ok(Self { inner }),
                Ok(_) => {}
                Err(e) if problems.is_empty() => return Err(to_js_error(env, e)),
                Err(e) => problems.extend(e.field_errors().iter().cloned()),
            }
        }
        Err(to_js_error(
            env,
            cased_core::Error::Validation(cased_core::ValidationErrors {
                subject: "monitor configuration".to_owned(),
                errors: problems,
            }),
        ))
    }

    /// Follows the in-app alert channel `channel` (a `{ name, type: 'inapp' }` entry of the
    /// configuration's `alerts.channels`), shared by every session of this monitor: use it with
    /// `for await`. Subscribe before starting the sessions whose alerts you want; it ends when
    /// the monitor's alert manager shuts down. Throws a `validation` error when there is no
    /// such channel.
    #[napi]
    pub fn alerts(&self, env: &Env, channel: String) -> Result<AlertStream> {
        napi::bindgen_prelude::within_runtime_if_available(|| self.inner.alerts(&channel))
            .map(AlertStream::from)
            .map_err(|e| to_js_error(env, e))
    }

    /// The names of the checks each tick runs: the configured ones, then the custom ones.
    #[napi(getter)]
    pub fn check_names(&self) -> Vec<String> {
        self.inner
            .check_names()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Starts a session for `event` and resolves with it; the first tick runs at once. An event
    /// whose status is `failure` or `cancelled` gives a session that has already ended with that
    /// outcome; `success` starts in the cool-down.
    #[napi(ts_return_type = "Promise<Session>")]
    pub fn start<'env>(
        &self,
        env: &'env Env,
        event: &DeploymentEvent,
    ) -> Result<PromiseRaw<'env, Session>> {
        let monitor = self.inner.clone();
        let event = event.inner.clone();
        // Inside the future: the core's `start` needs the current (napi's) tokio runtime.
        env.spawn_future_with_callback(async move { Ok(monitor.start(event)) }, |env, started| {
            started.map(Session::from).map_err(|e| to_js_error(env, e))
        })
    }

    /// Replays a recorded deployment (`{ started_at, samples, counts, control_samples,
    /// control_counts, checks, completed_after }`) through this monitor's pipeline on a virtual
    /// clock and resolves with the report it would have given. Nothing is sent or recorded.
    /// Rejects with a `validation` error naming a bad field of the recording.
    #[napi(
        ts_args_type = "event: DeploymentEvent, recording: Recording",
        ts_return_type = "Promise<Report>"
    )]
    pub fn replay<'env>(
        &self,
        env: &'env Env,
        event: &DeploymentEvent,
        recording: JsonArg,
    ) -> Result<PromiseRaw<'env, Json>> {
        let recording = recording.0;
        let monitor = self.inner.clone();
        let event = event.inner.clone();
        env.spawn_future_with_callback(
            async move {
                Ok(match cased_core::Recording::from_value(recording) {
                    Ok(recording) => monitor.replay(event, recording).await,
                    Err(e) => Err(e),
                })
            },
            |env, report| {
                report
                    .map(|r| report_json(&r))
                    .map_err(|e| to_js_error(env, e))
            },
        )
    }

    /// Flushes and stops every alert channel of this monitor: untold changes are sent at once
    /// and the channels get up to `graceMs` (default 10000, at most an hour) to deliver;
    /// whatever is still undelivered then is counted as failed, never dropped silently. Call it
    /// (or `await using monitor = new Monitor(...)`, which calls it through
    /// `Symbol.asyncDispose`) before the program exits: a session flushes its own alerts as it
    /// ends, but deliveries under way die with the process. Resolves with the channels'
    /// counters (`delivered`, `failed`, `retries`, ...), summed.
    #[napi(
        ts_args_type = "graceMs?: number | null",
        ts_return_type = "Promise<{ fired: number, deduplicated: number, unrouted: number, resolved: number, escalated: number, notifications: number, delivered: number, delivered_after_retry: number, failed: number, coalesced: number, retries: number, queued: number, max_queue_depth: number }>"
    )]
    pub fn close<'env>(
        &self,
        env: &'env Env,
        grace_ms: Option<f64>,
    ) -> Result<PromiseRaw<'env, Json>> {
        let grace = std::time::Duration::try_from_secs_f64(grace_ms.unwrap_or(10_000.0) / 1000.0)
            .map_err(|_| {
            napi::Error::new(
                napi::Status::InvalidArg,
                "graceMs must be a non-negative number of milliseconds",
            )
        })?;
        let monitor = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(monitor.close(grace).await) }, |_, stats| {
            Ok(Json(
                serde_json::to_string(&stats).unwrap_or_else(|_| "{}".to_owned()),
            ))
        })
    }

    /// Starts a session and resolves with its final report: the one-call form.
    #[napi(ts_return_type = "Promise<Report>")]
    pub fn run<'env>(
        &self,
        env: &'env Env,
        event: &DeploymentEvent,
    ) -> Result<PromiseRaw<'env, Json>> {
        let monitor = self.inner.clone();
        let event = event.inner.clone();
        env.spawn_future_with_callback(
            async move { Ok(monitor.run(event).await) },
            |env, report| {
                report
                    .map(|r| report_json(&r))
                    .map_err(|e| to_js_error(env, e))
            },
        )
    }
}

/// Reads the options into `builder` (when the configuration was readable), collecting the
/// problems of the binding's own making: unknown keys, values that are not functions.
fn read_options(
    options: &Object<'_>,
    mut builder: Option<cased_core::MonitorBuilder>,
    problems: &mut Vec<cased_core::FieldError>,
) -> Result<Option<cased_core::MonitorBuilder>> {
    for key in Object::keys(options)? {
        if !OPTION_NAMES.contains(&key.as_str()) {
            let known = OPTION_NAMES.join(", ");
            problems.push(cased_core::FieldError::new(
                cased_core::limits::field_segment(&key),
                format!("unknown option (known options: {known})"),
            ));
        }
    }
    if let Some(checks) = option(options, "checks")? {
        if checks.get_type()? == ValueType::Object && !checks.is_array()? {
            let checks = Object::from_unknown(checks)?;
            for name in Object::keys(&checks)? {
                let field = format!("checks.{name}");
                let Some(f) = function::<(), JsOutcome>(&checks, &name, &field, problems)? else {
                    continue;
                };
                builder = builder.map(|b| b.check(custom_check(name, f)));
            }
        } else {
            let got = type_name(&checks)?;
            problems.push(cased_core::FieldError::new(
                "checks",
                format!("must be an object of check functions by name, got {got}"),
            ));
        }
    }
    if let Some(hook) = function::<Json, Ignored>(options, "onRollback", "onRollback", problems)? {
        builder = builder.map(|b| b.on_rollback(rollback_hook(hook)));
    }
    if let Some(notifiers) = option(options, "notifiers")? {
        if notifiers.get_type()? == ValueType::Object && !notifiers.is_array()? {
            let notifiers = Object::from_unknown(notifiers)?;
            for name in Object::keys(&notifiers)? {
                let field = format!("notifiers.{name}");
                let Some(f) = function::<Json, Ignored>(&notifiers, &name, &field, problems)?
                else {
                    continue;
                };
                let notifier = notifier(&name, f);
                builder = builder.map(|b| b.notifier(name, notifier));
            }
        } else {
            let got = type_name(&notifiers)?;
            problems.push(cased_core::FieldError::new(
                "notifiers",
                format!("must be an object of notifier functions by channel name, got {got}"),
            ));
        }
    }
    if let Some(history) = option(options, "history")? {
        // SAFETY: napi's own checked unwrap of a class instance (a wrong type is an error).
        match unsafe {
            ClassInstance::<History>::from_napi_value(history.value().env, history.raw())
        } {
            Ok(history) => builder = builder.map(|b| b.history(history.store())),
            Err(_) => {
                let got = type_name(&history)?;
                problems.push(cased_core::FieldError::new(
                    "history",
                    format!("must be a History, got {got}"),
                ));
            }
        }
    }
    if let Some(baselines) = option(options, "baselines")? {
        builder = read_baselines(baselines, builder, problems)?;
    }
    if let Some(store) = option(options, "baselineStore")? {
        // SAFETY: napi's own checked unwrap of a class instance (a wrong type is an error).
        match unsafe {
            ClassInstance::<BaselineStore>::from_napi_value(store.value().env, store.raw())
        } {
            Ok(store) => builder = builder.map(|b| b.baseline_store(store.store())),
            Err(_) => {
                let got = type_name(&store)?;
                problems.push(cased_core::FieldError::new(
                    "baselineStore",
                    format!("must be a BaselineStore, got {got}"),
                ));
            }
        }
    }
    Ok(builder)
}

/// Reads `baselines`: per metric, values (an array or a `Float64Array`) or `{ errors, requests }`.
fn read_baselines(
    baselines: Unknown<'_>,
    mut builder: Option<cased_core::MonitorBuilder>,
    problems: &mut Vec<cased_core::FieldError>,
) -> Result<Option<cased_core::MonitorBuilder>> {
    if baselines.get_type()? != ValueType::Object || baselines.is_array()? {
        let got = type_name(&baselines)?;
        problems.push(cased_core::FieldError::new(
            "baselines",
            format!("must be an object of baselines by metric, got {got}"),
        ));
        return Ok(builder);
    }
    let baselines = Object::from_unknown(baselines)?;
    for metric in Object::keys(&baselines)? {
        let field = format!("baselines.{metric}");
        let Some(value) = option(&baselines, &metric)? else {
            continue;
        };
        let env = value.value().env;
        // SAFETY: napi's own checked conversions (a wrong type is an error, not UB).
        let values = unsafe { Either::<Vec<f64>, Float64Array>::from_napi_value(env, value.raw()) };
        if let Ok(values) = values {
            let values = match &values {
                Either::A(v) => v.clone(),
                Either::B(a) => a.to_vec(),
            };
            builder = builder.map(|b| b.baseline(metric.clone(), values));
            continue;
        }
        let counts = if value.get_type()? == ValueType::Object {
            let o = Object::from_unknown(value)?;
            let read = |k: &str| -> Result<Option<f64>> { o.get::<f64>(k) };
            match (read("errors")?, read("requests")?) {
                (Some(e), Some(r))
                    if e >= 0.0 && r >= 0.0 && e.fract() == 0.0 && r.fract() == 0.0 =>
                {
                    Some(cased_core::Counts::new(e as u64, r as u64))
                }
                _ => None,
            }
        } else {
            None
        };
        match counts {
            Some(Ok(c)) => builder = builder.map(|b| b.baseline_counts(metric.clone(), c)),
            Some(Err(e)) => problems.push(cased_core::FieldError::new(field, e.to_string())),
            None => problems.push(cased_core::FieldError::new(
                field,
                "must be an array of numbers, a Float64Array or { errors, requests } (whole numbers ≥ 0)",
            )),
        }
    }
    Ok(builder)
}

/// The property `name` of `object` as a callable JavaScript function; a problem on `field` when
/// it is present but not a function.
fn function<Args, T>(
    object: &Object<'_>,
    name: &str,
    field: &str,
    problems: &mut Vec<cased_core::FieldError>,
) -> Result<Option<JsFn<Args, T>>>
where
    Args: 'static + napi::bindgen_prelude::JsValuesTupleIntoVec,
    T: 'static + FromNapiValue + Send,
{
    let Some(value) = option(object, name)? else {
        return Ok(None);
    };
    if value.get_type()? != ValueType::Function {
        let got = type_name(&value)?;
        problems.push(cased_core::FieldError::new(
            field,
            format!("must be a function, got {got}"),
        ));
        return Ok(None);
    }
    let f = Function::<Args, Returned<T>>::from_unknown(value)?;
    JsFn::new(&f).map(Some)
}

/// The property `name`, unless it is absent, `undefined` or `null`.
fn option<'a>(object: &Object<'a>, name: &str) -> Result<Option<Unknown<'a>>> {
    match object.get::<Unknown<'a>>(name)? {
        Some(v) if !matches!(v.get_type()?, ValueType::Null | ValueType::Undefined) => Ok(Some(v)),
        _ => Ok(None),
    }
}

/// A custom alert channel's notifier calling the JavaScript function with the notification;
/// what it throws or rejects with fails the attempt (retried).
fn notifier(name: &str, f: JsFn<Json, Ignored>) -> std::sync::Arc<dyn cased_core::alert::Notifier> {
    let f = std::sync::Arc::new(f);
    std::sync::Arc::new(cased_core::alert::FnNotifier::new(
        name,
        move |n: std::sync::Arc<cased_core::alert::Notification>| {
            let f = std::sync::Arc::clone(&f);
            async move {
                f.call(Json(n.to_json()))
                    .await
                    .map(|Ignored| ())
                    .map_err(cased_core::alert::NotifyError::retryable)
            }
        },
    ))
}

/// The core's rollback hook calling the JavaScript one with a `RollbackContext`; what it throws
/// or rejects with is the error the core records.
fn rollback_hook(f: JsFn<Json, Ignored>) -> cased_core::RollbackHook {
    let f = std::sync::Arc::new(f);
    cased_core::RollbackHook::new(move |ctx: cased_core::RollbackContext| {
        let f = std::sync::Arc::clone(&f);
        async move {
            // Written by hand to keep the event's keys in wire order, as everywhere else.
            let context = format!(
                r#"{{"sessionId":{},"event":{},"reason":{}}}"#,
                Value::from(ctx.session_id),
                ctx.event.to_json(),
                Value::from(ctx.reason),
            );
            f.call(Json(context)).await.map(|Ignored| ())
        }
    })
}
