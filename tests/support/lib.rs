//! Helpers shared by the cross-crate integration tests: canonical events and API clients
//! ([`api`]), and real servers on loopback ([`servers`]).

pub mod api;
pub mod servers;

pub use api::*;
pub use servers::*;
