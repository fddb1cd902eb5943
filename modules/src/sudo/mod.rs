//! sudo: sudoers files, and proof that sudo itself grants what they say.
//!
//! - [`facts`]: which of a rule's commands sudo would refuse;
//! - [`changes`]: the proof run right after a sudoers file is written;
//! - module: [`sudoers`].

pub mod changes;
pub mod facts;
pub mod sudoers;

pub use changes::SudoChange;
pub use facts::{SudoFact, SudoKey};

/// This domain's fact keys, their values and its changes: its variants of `FactKey`,
/// `Fact` and `Change` (see the registry in `lib.rs`).
pub type Key = SudoKey;
pub type Value = SudoFact;
pub type Action = SudoChange;
