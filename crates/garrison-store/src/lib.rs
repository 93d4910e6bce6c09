//! Persistence for garrison: one SQL dialect subset that runs on SQLite (embedded default)
//! and PostgreSQL, migrations applied at open, and secrets sealed with AES-256-GCM.

mod appliances;
mod budget;
mod cache;
mod db;
mod dead_letters;
mod enrollments;
mod feed;
mod findings;
mod leases;
mod listing;
mod migrations;
mod notify;
mod objects;
mod otis;
mod protection;
mod roles;
mod rotate;
mod schedules;
pub mod seal;
mod secret_hash;
mod sessions;
mod snapshots;
mod tenants;
#[cfg(feature = "testing")]
pub mod testing;

pub use appliances::{
    Appliance, KEPT_REFUSALS, Launch, MIN_HEARTBEAT_GAP_MS, NewLaunch, Refusal, Refused, Replacement,
};
pub use db::{Backend, CHECKPOINT_EVERY, DbError, Store, StoreError, new_id, sqlite_path};
pub use dead_letters::{DeadLetter, EXCERPT_CHARS};
pub use feed::{FeedPath, FeedSeen};
pub use findings::{FindingChange, FindingFilter};
pub use leases::Lease;
pub use listing::{ListedDeployment, credential_position};
pub use notify::{ConnectionSecrets, Delivery};
pub use protection::AuditEntry;
pub use rotate::Rotated;
pub use seal::{SealKey, Sealer};
pub use sessions::{LOGIN_TTL_MS, WebSession};
pub use tenants::{KeyRecord, KeyState, MIN_SECRET_LEN, NewRoot, UserChange, Verdict};
