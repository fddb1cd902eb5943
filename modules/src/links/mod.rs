//! Links: symbolic links, made and re-pointed atomically.
//!
//! - [`facts`]: where a link points (`None` when the path is not a link);
//! - [`changes`]: the script that makes a link beside the target and renames it over;
//! - module: [`link`].

pub mod changes;
pub mod facts;
pub mod link;
