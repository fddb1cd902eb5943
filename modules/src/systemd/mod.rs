//! systemd: units in the system manager or a user's, their files, and lingering.
//!
//! - [`facts`]: a unit's state in its manager, whether a user lingers;
//! - [`changes`]: daemon-reloads, unit actions and signals, lingering;
//! - [`unit_lint`]: `systemd-analyze verify` of a unit file before it is installed;
//! - [`settle`]: how a start or restart is proven to have worked;
//! - modules: [`systemd_unit`], [`systemd_dropin`], [`service`], [`linger`].

pub mod changes;
pub mod facts;
pub mod linger;
pub mod service;
pub mod settle;
pub mod systemd_dropin;
pub mod systemd_unit;
pub mod unit_lint;

pub use changes::SystemdChange;
pub use facts::{SystemdFact, SystemdKey};

/// This domain's fact keys, their values and its changes: its variants of `FactKey`,
/// `Fact` and `Change` (see the registry in `lib.rs`).
pub type Key = SystemdKey;
pub type Value = SystemdFact;
pub type Action = SystemdChange;
