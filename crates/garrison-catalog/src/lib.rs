//! What garrison knows as data: the IAM role types it asks customers to create (versioned
//! data files), the CloudFormation template rendered from them, the protection policies, and the
//! event feed's rule pattern.

pub mod appliances;
pub mod cft;
pub mod feed;
pub mod iam_check;
pub mod network;
pub mod plan_cft;
pub mod policies;
pub mod prices;
pub mod roles;
pub mod terraform;

pub use roles::{Catalog, RoleDef};
