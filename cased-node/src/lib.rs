//! Node bindings of cased (npm package `cased`), built with napi-rs.
//!
//! Conversions and Promise glue only: every rule, default and message comes from `cased-core`.
//! The modules mirror the core's: [`event`], [`client`], [`errors`] (the core's `error`) and
//! [`logging`]. `index.js` and `index.d.ts` are generated from the `#[napi]` items below by
//! `napi build`; their doc comments become the TypeScript documentation.

#![warn(missing_docs)]

pub mod client;
pub mod errors;
pub mod event;
pub mod logging;
