//! The operator's terminal, shared by the progress line and prompts.
//!
//! A prompt (a key's passphrase) claims the terminal for as long as it is asking; while
//! it is claimed, the progress line is neither drawn nor left on screen (see
//! [`crate::progress::hide`]), so a prompt is never drawn over.

use std::sync::atomic::{AtomicUsize, Ordering};

static CLAIMS: AtomicUsize = AtomicUsize::new(0);

/// Holds the terminal until dropped.
pub struct Claim(());

/// Claims the terminal for a prompt, clearing the progress line.
pub fn claim() -> Claim {
    CLAIMS.fetch_add(1, Ordering::SeqCst);
    crate::progress::hide();
    Claim(())
}

/// Whether something is asking the operator right now.
pub fn claimed() -> bool {
    CLAIMS.load(Ordering::SeqCst) > 0
}

impl Drop for Claim {
    fn drop(&mut self) {
        CLAIMS.fetch_sub(1, Ordering::SeqCst);
        crate::progress::show();
    }
}
