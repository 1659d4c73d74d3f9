//! The node's allocator, jemalloc: sled allocates on every write, and jemalloc makes replay
//! and appends about twice as fast as the system allocator (see docs/benchmarks.md).
//!
//! jemalloc returns freed pages to the system some seconds after they are freed, but only as
//! the arena that freed them goes on allocating. Start-up (the replay, the route table that
//! documents every route) frees megabytes on threads that then go quiet, and those pages
//! would stay resident for the node's life; [`release_freed`] returns them once, when the
//! node is ready.

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Returns the pages of every arena that hold only freed memory to the system.
pub fn release_freed() {
    // `arena.<MALLCTL_ARENAS_ALL>.purge` (MALLCTL_ARENAS_ALL is 4096): jemalloc's documented
    // control, taking no value.
    let name = c"arena.4096.purge";
    // SAFETY: a NUL-terminated control name that takes and returns nothing, so every other
    // argument is null or zero, as jemalloc's mallctl documents for such controls.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        tracing::debug!(rc, "jemalloc did not purge its arenas");
    }
}
