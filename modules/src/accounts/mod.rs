//! Accounts: users and groups.
//!
//! - [`facts`]: a user as `getent` and `id` see it, a group as `getent` does;
//! - [`changes`]: `useradd`, `usermod`, `groupadd` and their removals;
//! - modules: [`user`], [`group`].

pub mod changes;
pub mod facts;
pub mod group;
pub mod user;
