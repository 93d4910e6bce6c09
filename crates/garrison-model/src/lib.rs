//! garrison's domain types. Everything here is pure: no I/O, no clocks, no randomness.
//! Input from the wire is validated here so that every front end (HTTP, CLI, onboarding)
//! reports the same precise errors.

pub mod account;
pub mod assets;
pub mod audit;
pub mod budget;
pub mod cidr;
pub mod cli_args;
pub mod coverage;
pub mod credential;
pub mod deployment;
pub mod enrollment;
pub mod error;
pub mod finding;
pub mod health;
pub mod json_path;
pub mod notify;
pub mod ops;
pub mod organization;
pub mod otis;
pub mod permission;
pub mod policy;
pub mod protection;
pub mod redact;
pub mod report;
pub mod schedule;
pub mod scope;
pub mod snapshot;

pub use error::{FieldError, ValidationError};

/// Seconds since the Unix epoch, as the reference services report times.
pub type Timestamp = i64;

/// `{at, by}` pairs on created/modified objects.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Stamp {
    pub at: Timestamp,
    pub by: String,
}
