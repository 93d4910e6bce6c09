//! The pure centre of protection. This first part decides what each VPC needs from the
//! deployment and the snapshot; the planner that turns needs and owned resources into
//! actions builds on it.

pub mod needs;
