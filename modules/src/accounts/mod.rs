//! Accounts: users and groups.
//!
//! - [`facts`]: a user as `getent` and `id` see it, a group as `getent` does;
//! - [`changes`]: `useradd`, `usermod`, `groupadd` and their removals;
//! - modules: [`user`], [`group`].

pub mod changes;
pub mod facts;
pub mod group;
pub mod user;

/// This domain's fact keys, their values and its changes: its variants of `FactKey`,
/// `Fact` and `Change` (see the registry in `lib.rs`).
pub type Key = facts::AccountKey;
pub type Value = facts::AccountFact;
pub type Action = changes::AccountChange;
