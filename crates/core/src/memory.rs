//! Giving memory back to the OS after sessions go to sleep.
//!
//! When thousands of sessions are created in a burst, their emulators are all awake at once;
//! when they fall asleep the allocator keeps the freed pages. A background task returns them
//! (glibc's `malloc_trim`) at most every two seconds, and only after something was freed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static FREED: AtomicBool = AtomicBool::new(false);

/// Records that a large allocation was released (a screen went to sleep).
pub(crate) fn freed() {
    FREED.store(true, Ordering::Relaxed);
}

/// Runs until `alive` says the owner is gone.
pub(crate) async fn trim_loop(alive: impl Fn() -> bool) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    while alive() {
        tick.tick().await;
        if FREED.swap(false, Ordering::Relaxed) {
            // A failed join only means the trim did not run; nothing to recover.
            tokio::task::spawn_blocking(trim).await.ok();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
