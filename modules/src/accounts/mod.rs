//! Accounts: users and groups.
//!
//! - [`facts`]: a user as `getent` and `id` see it, a group as `getent` does;
//! - [`changes`]: `useradd`, `usermod`, `groupadd` and their removals;
//! - modules: [`user`], [`group`].

pub mod changes;
pub mod facts;
pub mod group;
pub mod user;

pub use changes::AccountChange;
pub use facts::{AccountFact, AccountKey};

/// This domain's fact keys, their values and its changes: its variants of `FactKey`,
/// `Fact` and `Change` (see the registry in `lib.rs`).
pub type Key = AccountKey;
pub type Value = AccountFact;
pub type Action = AccountChange;
