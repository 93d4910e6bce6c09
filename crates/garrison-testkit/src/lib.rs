//! Harnesses for garrison's tests and benchmarks, kept out of the libraries a release is
//! built from: tenants and deployments on the emulator and what a run left behind
//! (`tenants`), the fault proxy (`proxy`), CloudTrail records and files as AWS writes them
//! (`sample`), organizations on the emulator (`organization`), and fresh PostgreSQL databases
//! (`postgres`).

pub mod organization;
pub mod proxy;
pub mod sample;
pub mod tenants;

pub use garrison_store::testing as postgres;
