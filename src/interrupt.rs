//! Ctrl-C handling for long commands. SIGINT sets a flag that the training loop and the probe loop
//! check at every step, epoch and probe boundary, so that a run stops with [`Error::Interrupted`]
//! (exit code 130) before any result file is written. A second SIGINT exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use crate::error::{Error, INTERRUPTED, Result};

static FLAG: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// Route SIGINT to the flag. Only commands that call [`check`] regularly may install it: any
/// other command would no longer stop on the first Ctrl-C.
pub fn install() -> Result<()> {
    use signal_hook::consts::SIGINT;
    let flag = Arc::clone(&FLAG);
    // Registered first, so it sees the flag as it was before this signal: a second Ctrl-C exits.
    signal_hook::flag::register_conditional_shutdown(SIGINT, INTERRUPTED, Arc::clone(&flag))
        .and_then(|_| signal_hook::flag::register(SIGINT, flag))
        .map(|_| ())
        .map_err(|e| Error::Internal(format!("cannot install the SIGINT handler: {e}")))
}

/// Whether SIGINT has been received.
pub fn requested() -> bool {
    FLAG.load(Ordering::Relaxed)
}

/// `Err(Error::Interrupted)` once SIGINT has been received.
pub fn check() -> Result<()> {
    if requested() { Err(Error::Interrupted) } else { Ok(()) }
}
