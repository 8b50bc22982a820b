#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod error;
mod event;
pub mod logging;
mod secret;

pub use client::{
    API_KEY_ENV, ApiResponse, Client, ClientBuilder, DEFAULT_BASE_URL, DEPLOYMENTS_PATH, RetryPolicy,
    parse_retry_after,
};
pub use error::{Error, ErrorKind, FieldError, Result, ValidationErrors};
pub use event::{
    DeploymentEvent, DeploymentEventBuilder, DeploymentStatus, MAX_COMMIT_MESSAGE_CHARS,
    MAX_DEPLOYMENT_REQUEST_CHARS, MAX_METADATA_BYTES, MAX_NAME_CHARS,
};
pub use secret::Secret;
