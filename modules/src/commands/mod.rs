//! Commands: arbitrary commands, run when their guards say so.
//!
//! - [`facts`]: the exit status of a guard command;
//! - [`changes`]: the command itself;
//! - module: [`command`].

pub mod changes;
pub mod command;
pub mod facts;
