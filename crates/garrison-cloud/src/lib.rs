//! Everything garrison says to AWS. Only this crate names aws-sdk types; the rest of the
//! workspace sees plain data and `CloudError`.

pub mod emulator;
pub mod error;
pub mod session;
pub mod templates;

pub use error::CloudError;
pub use session::Aws;
