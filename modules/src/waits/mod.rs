//! Waits: for a TCP port to be listened on (or not), or a path to exist (or not), on
//! the host itself.
//!
//! - [`facts`]: whether the port is listened on or the path exists, read in the batch
//!   and read again after any change on the host (a restart may have changed it);
//! - [`changes`]: the loop that waits, at most a timeout;
//! - module: [`wait_for`].

pub mod changes;
pub mod facts;
pub mod wait_for;

pub use changes::WaitUntil;
pub use facts::{WaitFact, WaitKey};

/// This domain's fact keys, their values and its changes: its variants of `FactKey`,
/// `Fact` and `Change` (see the registry in `lib.rs`).
pub type Key = WaitKey;
pub type Value = WaitFact;
pub type Action = WaitUntil;
