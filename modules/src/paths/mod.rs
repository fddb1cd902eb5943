//! Paths: files and directories, read and changed without ever following a symbolic
//! link on the way (see [`safe_path`]).
//!
//! - [`facts`]: a path's kind and attributes, a regular file's bytes;
//! - [`changes`]: atomic writes, attributes, directories, removals;
//! - [`lines`]: a file's bytes as lines, and the edits `lineinfile` and `blockinfile`
//!   make to them;
//! - modules: [`file`](mod@file), [`directory`], [`copy`](mod@copy), [`lineinfile`], [`blockinfile`].

pub mod blockinfile;
pub mod changes;
pub mod copy;
pub mod directory;
pub mod facts;
pub mod file;
pub mod lineinfile;
pub mod lines;
pub mod safe_path;

pub use changes::PathChange;
pub use facts::{PathFact, PathKey};

/// This domain's fact keys, their values and its changes: its variants of `FactKey`,
/// `Fact` and `Change` (see the registry in `lib.rs`).
pub type Key = PathKey;
pub type Value = PathFact;
pub type Action = PathChange;
