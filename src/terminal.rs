//! The operator's terminal, shared by the progress line and prompts.
//!
//! A prompt (a key's passphrase) claims the terminal for as long as it is asking; while
//! it is claimed, the progress line is neither drawn nor left on screen. The progress
//! thread checks the claim while it holds stderr's lock, and claiming takes that lock to
//! clear the line, so a prompt is never drawn over.

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

static CLAIMS: AtomicUsize = AtomicUsize::new(0);

/// Holds the terminal until dropped.
pub struct Claim(());

/// Claims the terminal for a prompt, clearing the progress line.
pub fn claim() -> Claim {
    CLAIMS.fetch_add(1, Ordering::SeqCst);
    let mut stderr = std::io::stderr().lock();
    if crate::progress::drawing() {
        let _ = write!(stderr, "\r\x1b[2K");
        let _ = stderr.flush();
    }
    Claim(())
}

/// Whether something is asking the operator right now.
pub fn claimed() -> bool {
    CLAIMS.load(Ordering::SeqCst) > 0
}

impl Drop for Claim {
    fn drop(&mut self) {
        CLAIMS.fetch_sub(1, Ordering::SeqCst);
    }
}
