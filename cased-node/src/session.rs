//! A monitoring session: mirrors `cased_core::Session` (the handle) and `cased_core::Updates`
//! (a listener's view of its updates, here an async iterable).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cased_core::UpdateEvent;
use napi::bindgen_prelude::{AsyncGenerator, PromiseRaw, ToNapiValue, TypeName};
use napi::tokio::sync::Mutex;
use napi::{Env, Result, ValueType, sys};
use napi_derive::napi;

use crate::errors::to_js_error;
use crate::js::Json;

/// A running monitoring session, from `await monitor.start(event)`.
///
/// It ticks on the monitor's schedule on cased's own runtime, whether or not anything listens,
/// until the cool-down after `complete()` ends, `fail()` or `cancel()` is called, the verdict
/// turns unhealthy, a check keeps erroring, or `max_duration` is reached. Phases: `pending` →
/// `active` (deployment running) → `cooldown` (deployment succeeded) → `finished`.
///
/// ```js
/// const session = await monitor.start(event)
/// for await (const update of session.updates()) {
///   if ('skipped' in update) continue // fell behind; the report still has every tick
///   console.log(update.tick, update.phase, update.verdict)
///   if (deployFinished()) session.complete()
/// }
/// const report = await session.wait()
/// ```
///
/// The session does not keep the Node process alive by itself: a pending `wait()` or `for
/// await` does.
#[napi]
#[derive(Debug, Clone)]
pub struct Session {
    inner: cased_core::Session,
}

#[napi]
impl Session {
    /// The session's id: the event's `correlation_id` plus a suffix, or a random id.
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.inner.id().to_owned()
    }

    /// Follows the session's updates, for `for await`: the latest update first (if a tick has
    /// run), then each one as it is published, ending after the update whose phase is
    /// `finished`. Any number of listeners may follow at once. A listener that falls more than
    /// 16 updates behind gets `{ skipped: n }` in place of the updates it missed.
    ///
    /// Breaking out of the loop stops following (the session goes on).
    #[napi]
    pub fn updates(&self) -> Updates {
        Updates {
            inner: Arc::new(Mutex::new(Some(self.inner.updates()))),
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The deployment succeeded: the cool-down starts now. No effect once the cool-down runs or
    /// the session has finished.
    #[napi]
    pub fn complete(&self) {
        self.inner.complete();
    }

    /// The deployment failed: the session ends now, `ended_by: 'deployment_failed'`.
    #[napi]
    pub fn fail(&self) {
        self.inner.fail();
    }

    /// Stops the session: it ends now, `ended_by: 'cancelled'`.
    #[napi]
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// Adds a sample of `metric` (an APM number, a counter...), kept in a bounded window per
    /// metric and summarised in the report's `metrics`. Throws a `validation` error on field
    /// `metric` (empty) or `value` (not a finite number).
    #[napi]
    pub fn push(&self, env: &Env, metric: String, value: f64) -> Result<()> {
        self.inner
            .push(&metric, value)
            .map_err(|e| to_js_error(env, e))
    }

    /// Resolves with the final report once the session has ended. Never rejects.
    #[napi(ts_return_type = "Promise<Report>")]
    pub fn wait<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Json>> {
        let session = self.inner.clone();
        env.spawn_future_with_callback(
            async move { Ok(report_json(&session.wait().await)) },
            |_, report| Ok(report),
        )
    }

    /// The final report, or `null` while the session runs.
    #[napi(ts_return_type = "Report | null")]
    pub fn report(&self) -> Option<Json> {
        self.inner.report().as_ref().map(report_json)
    }

    /// Whether the session has ended (its report is ready).
    #[napi(getter)]
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
}

impl From<cased_core::Session> for Session {
    fn from(inner: cased_core::Session) -> Self {
        Self { inner }
    }
}

pub(crate) fn report_json(report: &cased_core::Report) -> Json {
    Json(report.to_json())
}

/// A listener's view of a session's updates, from `session.updates()`: use it with `for await`.
/// Each item is a `StatusUpdate`, or `{ skipped: n }` when this listener fell behind.
#[napi(async_iterator)]
#[derive(Debug)]
pub struct Updates {
    inner: Arc<Mutex<Option<cased_core::Updates>>>,
    /// Set by `return()` (a `break` out of `for await`).
    closed: Arc<AtomicBool>,
}

#[napi]
impl AsyncGenerator for Updates {
    type Yield = UpdateItem;
    type Next = ();
    type Return = ();

    fn next(
        &mut self,
        _value: Option<()>,
    ) -> impl Future<Output = Result<Option<UpdateItem>>> + Send + 'static {
        let inner = Arc::clone(&self.inner);
        let closed = Arc::clone(&self.closed);
        async move {
            let mut updates = inner.lock().await;
            if closed.load(Ordering::Acquire) {
                *updates = None;
            }
            let Some(listener) = updates.as_mut() else {
                return Ok(None);
            };
            let item = listener.next().await;
            if item.is_none() || closed.load(Ordering::Acquire) {
                *updates = None;
            }
            Ok(item.map(UpdateItem::from))
        }
    }

    fn complete(
        &mut self,
        _value: Option<()>,
    ) -> impl Future<Output = Result<Option<UpdateItem>>> + Send + 'static {
        // Stop following: drop the subscription now, or as soon as a pending `next()` returns.
        self.closed.store(true, Ordering::Release);
        if let Ok(mut updates) = self.inner.try_lock() {
            *updates = None;
        }
        async { Ok(None) }
    }
}

/// One item of an update stream, as JSON: the core's `StatusUpdate`, or `{"skipped": n}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateItem(Json);

impl From<UpdateEvent> for UpdateItem {
    fn from(event: UpdateEvent) -> Self {
        Self(Json(match event {
            UpdateEvent::Update(update) => update.to_json(),
            UpdateEvent::Skipped(n) => serde_json::json!({ "skipped": n }).to_string(),
        }))
    }
}

impl TypeName for UpdateItem {
    fn type_name() -> &'static str {
        "UpdateItem"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for UpdateItem {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        // SAFETY: called by napi on the JavaScript thread with its `env`.
        unsafe { Json::to_napi_value(env, val.0) }
    }
}
