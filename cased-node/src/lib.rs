//! Node bindings of cased (npm package `cased`), built with napi-rs.
//!
//! Conversions and Promise glue only: every rule, default and message comes from `cased-core`.
//! The modules mirror the core's: [`event`], [`client`], [`errors`] (the core's `error`),
//! [`logging`], [`config`], [`monitor`], [`session`], [`update`], [`check`] (with the core's
//! `checks`), [`detect`], [`alert`], [`history`], [`metrics`] and [`report`]; [`js`] holds the glue they share (core JSON handed to JavaScript, JavaScript
//! functions called from the core's threads). `index.js` and `index.d.ts` are generated from the
//! `#[napi]` items below by `napi build`; their doc comments become the TypeScript documentation.

#![warn(missing_docs)]

pub mod alert;
pub mod check;
pub mod client;
pub mod config;
pub mod detect;
pub mod errors;
pub mod event;
pub mod history;
pub mod js;
pub mod logging;
pub mod metrics;
pub mod monitor;
pub mod report;
pub mod session;
pub mod update;

/// Gives `Monitor` a `Symbol.asyncDispose` method (`await using`) that awaits `close()`, where
/// the runtime knows the symbol (Node ≥ 20.4 with the proposal, every Node 22+ defines it).
#[napi_derive::napi(module_exports)]
pub fn install_dispose(
    exports: napi::bindgen_prelude::Object<'_>,
    env: napi::Env,
) -> napi::Result<()> {
    use napi::bindgen_prelude::{Function, JsObjectValue, Unknown};
    let install: Function<'_, Unknown<'_>, ()> = env.run_script(
        "(function (M) { if (typeof Symbol.asyncDispose === 'symbol') \
         Object.defineProperty(M.prototype, Symbol.asyncDispose, { configurable: true, writable: true, \
         value: function () { return this.close().then(function () {}) } }) })",
    )?;
    install.call(exports.get_named_property::<Unknown<'_>>("Monitor")?)
}
