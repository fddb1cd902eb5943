//! Links: symbolic links, made and re-pointed atomically.
//!
//! - [`facts`]: where a link points (`None` when the path is not a link);
//! - [`changes`]: the script that makes a link beside the target and renames it over;
//! - module: [`link`].

pub mod changes;
pub mod facts;
pub mod link;

pub use changes::NewLink;
pub use facts::{LinkFact, LinkKey};

/// This domain's fact keys, their values and its changes: its variants of `FactKey`,
/// `Fact` and `Change` (see the registry in `lib.rs`).
pub type Key = LinkKey;
pub type Value = LinkFact;
pub type Action = NewLink;
