//! sudo: sudoers files, and proof that sudo itself grants what they say.
//!
//! - [`facts`]: which of a rule's commands sudo would refuse;
//! - [`changes`]: the proof run right after a sudoers file is written;
//! - module: [`sudoers`].

pub mod changes;
pub mod facts;
pub mod sudoers;
