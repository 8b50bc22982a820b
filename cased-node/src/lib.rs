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
