//! Packages: Debian packages installed, upgraded and removed with apt.
//!
//! - [`facts`]: a package's state in dpkg's database, its candidate in apt's cache,
//!   the cache's age;
//! - [`changes`]: refreshing the cache, installing, removing, non-interactively;
//! - module: [`package`].

pub mod changes;
pub mod facts;
pub mod package;

pub use changes::PackageChange;
pub use facts::{Dpkg, PackageFact, PackageKey, Policy};

/// This domain's fact keys, their values and its changes: its variants of `FactKey`,
/// `Fact` and `Change` (see the registry in `lib.rs`).
pub type Key = PackageKey;
pub type Value = PackageFact;
pub type Action = PackageChange;
