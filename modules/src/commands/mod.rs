//! Commands: arbitrary commands, run when their guards say so.
//!
//! - [`facts`]: the exit status of a guard command;
//! - [`changes`]: the command itself;
//! - module: [`command`].

pub mod changes;
pub mod command;
pub mod facts;

pub use changes::CommandChange;
pub use facts::{CommandFact, CommandKey};

/// This domain's fact keys, their values and its changes: its variants of `FactKey`,
/// `Fact` and `Change` (see the registry in `lib.rs`).
pub type Key = CommandKey;
pub type Value = CommandFact;
pub type Action = CommandChange;
