//! How the host process gives back the memory of large buffers.

/// Buffers at least this large are mapped on their own and returned to the
/// system as soon as they are freed.
const OWN_MAPPING_FROM: usize = 4 << 20;

/// Makes the process return large buffers (a big output, the request that
/// carries it to a dependent) to the system when they are freed.
///
/// By default glibc raises its mapping threshold to the largest block freed
/// so far (up to 32 MiB) and keeps such blocks in each thread's arena: a
/// run whose nodes exchange 20 MB outputs then holds several freed copies
/// per worker thread, and its peak memory is three times what the run
/// needs. With a fixed threshold each large buffer is its own mapping. Small
/// allocations are unaffected. Call it once, at the start of a process
/// whose global allocator is glibc's (the `flow` binary's is mimalloc,
/// which returns them by itself). Elsewhere than glibc it does nothing.
pub fn return_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a tuning parameter of the allocator; it
    // is called before the engine starts threads of its own.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_MAPPING_FROM as libc::c_int);
    }
}
