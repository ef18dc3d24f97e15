//! What every fuzz target shares: an allocator that turns any single allocation above
//! [`MAX_ALLOC`] into a crash. libFuzzer's own `-malloc_limit_mb` needs a sanitizer's malloc
//! hooks, and the targets build without one (they run safe Rust only), so a length prefix that
//! makes a decoder reserve gigabytes is caught here instead.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;

/// Far above what any input of libFuzzer's `-max_len` justifies.
pub const MAX_ALLOC: usize = 64 << 20;

pub struct LimitedAlloc;

fn check(size: usize) {
    if size > MAX_ALLOC {
        // No formatting: it could allocate.
        let _ = std::io::stderr().write_all(b"paved-fuzz: allocation larger than 64 MiB\n");
        std::process::abort();
    }
}

// SAFETY: forwards to the system allocator unchanged after a size check.
unsafe impl GlobalAlloc for LimitedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}
