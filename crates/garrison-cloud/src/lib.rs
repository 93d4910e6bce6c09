//! Everything garrison says to AWS. Only this crate names aws-sdk types; the rest of the
//! workspace sees plain data and `CloudError`.

pub mod audit_queue;
pub mod calls;
pub mod discovery;
pub mod emulator;
pub mod error;
pub mod estate;
pub mod inspector;
pub mod limiter;
pub mod org_events;
pub mod organizations;
pub mod reuse;
pub mod role_check;
pub mod session;
pub mod stacks;
pub mod stacksets;
pub mod templates;
pub mod writes;

pub use calls::CallLog;
pub use error::CloudError;
pub use session::{Aws, Sessions};
