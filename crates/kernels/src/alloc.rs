//! A global allocator that starts every large block on a cache line.
//!
//! The C allocator returns large blocks 16 bytes past a page boundary, so a 64-byte vector load
//! from a tensor, or from a row of it whose length is a multiple of 16 values, spans two cache
//! lines, and the AVX-512 matrix products run a tenth slower (measured in the repository's
//! docs/performance.md; with AVX2 no difference was measured). [`LineAligned`] serves
//! blocks of [`LARGE`] bytes or more from the C allocator 64 bytes longer, at the first cache line
//! past a word that records where the C block starts; zeroed blocks still come from `calloc`, so
//! a large zero tensor costs no extra pass over its pages. Smaller blocks, and those that ask for
//! more than 16-byte alignment, go to the system allocator as they are. The binary installs it:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: tunnelbench_kernels::alloc::LineAligned = tunnelbench_kernels::alloc::LineAligned;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};

/// The alignment of large blocks: one cache line.
pub const LINE: usize = 64;
/// The size from which a block starts on a cache line.
pub const LARGE: usize = 4096;

/// Keeps freed activation buffers in the process instead of returning them to the OS, so that a
/// training step does not page-fault (and have the kernel zero) tens of megabytes of fresh memory
/// every time: glibc maps allocations above 128 KiB–32 MiB afresh and trims the heap top after
/// each free by default. A no-op off glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; both values are within glibc's limits.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// See the module's documentation.
pub struct LineAligned;

/// Whether a block of this layout is served on a cache line.
fn large(layout: Layout) -> bool {
    layout.size() >= LARGE && layout.align() <= 16
}

/// How far into a C block at `raw` its cache-line-aligned place lies: the first line boundary at
/// least one word in, between 8 and 64 bytes (the C allocator aligns blocks to at least 8).
fn offset(raw: *mut u8) -> usize {
    let raw = raw as usize;
    debug_assert_eq!(raw % 8, 0, "the C allocator's blocks are aligned to 8 bytes");
    (raw + 8).next_multiple_of(LINE) - raw
}

/// The cache-line-aligned place in a C block at `raw`, the word before it recording `raw`; null
/// (the C allocator's failure) is passed on.
///
/// # Safety
/// `raw` is null or a C block of at least `LINE` bytes more than will be used, aligned to 8 bytes.
unsafe fn place(raw: *mut u8) -> *mut u8 {
    if raw.is_null() {
        return raw;
    }
    // SAFETY: the offset is at most LINE, inside the block; the word before the place is inside
    // it too and aligned to 8 bytes (raw and the place are).
    unsafe {
        let at = raw.add(offset(raw));
        at.cast::<*mut u8>().sub(1).write(raw);
        at
    }
}

/// The C block behind a place.
///
/// # Safety
/// `at` came from [`place`].
unsafe fn raw(at: *mut u8) -> *mut u8 {
    // SAFETY: `place` wrote the word before `at`.
    unsafe { at.cast::<*mut u8>().sub(1).read() }
}

// SAFETY: large blocks are at least `size` bytes from a cache-line boundary inside a live C block
// of `size + LINE` bytes, freed through the word before it; the rest is the system allocator's.
unsafe impl GlobalAlloc for LineAligned {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !large(layout) {
            // SAFETY: the caller's layout.
            return unsafe { System.alloc(layout) };
        }
        // SAFETY: a plain C allocation, LINE bytes longer.
        unsafe { place(libc::malloc(layout.size() + LINE).cast()) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !large(layout) {
            // SAFETY: the caller's layout.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: a plain C allocation, LINE bytes longer.
        unsafe { place(libc::calloc(layout.size() + LINE, 1).cast()) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if large(layout) {
            // SAFETY: a large block came from `place`.
            unsafe { libc::free(raw(ptr).cast()) }
        } else {
            // SAFETY: the caller's block and layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's new size fits the layout's alignment (GlobalAlloc's contract).
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (large(layout), large(new)) {
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            (true, true) => unsafe {
                // SAFETY: the C block behind a large block, resized; its values move to the new
                // block's place (before that place's word is written over them) when the C
                // allocator put the block at another offset from a line.
                let old = raw(ptr);
                let was = ptr as usize - old as usize;
                let block = libc::realloc(old.cast(), new_size + LINE).cast::<u8>();
                if block.is_null() {
                    return block;
                }
                let now = offset(block);
                if now != was {
                    std::ptr::copy(block.add(was), block.add(now), layout.size().min(new_size));
                }
                place(block)
            },
            _ => unsafe {
                // SAFETY: a fresh block of the new layout, the values copied, the old one freed.
                let at = self.alloc(new);
                if !at.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, at, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                at
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    /// Writes `size` bytes counting from `seed` (wrapping) at `ptr`.
    unsafe fn fill(ptr: *mut u8, size: usize, seed: u8) {
        for i in 0..size {
            unsafe { ptr.add(i).write(seed.wrapping_add(i as u8)) };
        }
    }

    unsafe fn holds(ptr: *const u8, size: usize, seed: u8) -> bool {
        (0..size).all(|i| unsafe { ptr.add(i).read() } == seed.wrapping_add(i as u8))
    }

    #[test]
    fn large_blocks_start_on_a_line_and_small_ones_are_the_systems() {
        for (size, align) in [
            (LARGE, 4),
            (LARGE + 3, 1),
            (1 << 20, 16),
            (3 << 20, 8),
            (16, 4),
            (LARGE - 1, 8),
        ] {
            let l = layout(size, align);
            unsafe {
                let p = LineAligned.alloc(l);
                assert!(!p.is_null());
                if size >= LARGE {
                    assert_eq!(p as usize % LINE, 0, "{size} bytes");
                } else {
                    assert_eq!(p as usize % align, 0, "{size} bytes");
                }
                fill(p, size, 7);
                assert!(holds(p, size, 7));
                LineAligned.dealloc(p, l);
            }
        }
        // An alignment above 16 bytes is the system allocator's, as asked.
        let l = layout(LARGE * 2, 4096);
        unsafe {
            let p = LineAligned.alloc(l);
            assert_eq!(p as usize % 4096, 0);
            LineAligned.dealloc(p, l);
        }
    }

    #[test]
    fn the_place_is_a_line_boundary_a_word_or_more_into_the_block() {
        for raw in (0..4 * LINE).step_by(8) {
            let at = offset(raw as *mut u8);
            assert!((8..=LINE).contains(&at), "{raw}: {at}");
            assert_eq!((raw + at) % LINE, 0, "{raw}");
        }
    }

    #[test]
    fn zeroed_blocks_are_zero() {
        for size in [100, LARGE, 5 << 20] {
            let l = layout(size, 4);
            unsafe {
                let p = LineAligned.alloc_zeroed(l);
                assert!((0..size).all(|i| p.add(i).read() == 0), "{size} bytes");
                LineAligned.dealloc(p, l);
            }
        }
    }

    #[test]
    fn realloc_keeps_the_values_and_the_line() {
        // Small to large, large to larger (the C block may move), large to large-but-shorter,
        // large to small.
        let sizes = [1000, LARGE + 100, 1 << 20, 4 << 20, 2 * LARGE, 500];
        let mut size = sizes[0];
        let mut p = unsafe { LineAligned.alloc(layout(size, 4)) };
        unsafe { fill(p, size, 3) };
        for &next in &sizes[1..] {
            p = unsafe { LineAligned.realloc(p, layout(size, 4), next) };
            assert!(!p.is_null());
            let kept = size.min(next);
            assert!(unsafe { holds(p, kept, 3) }, "{size} → {next} bytes");
            if next >= LARGE {
                assert_eq!(p as usize % LINE, 0, "{size} → {next} bytes");
            }
            unsafe { fill(p, next, 3) };
            size = next;
        }
        unsafe { LineAligned.dealloc(p, layout(size, 4)) };
    }

    #[test]
    fn many_live_blocks_keep_their_values() {
        // Blocks of many sizes live at once, each with its own values.
        let mut blocks: Vec<(*mut u8, usize)> = Vec::new();
        for round in 0..50usize {
            let size = LARGE + round * 12_345;
            let l = layout(size, 4);
            let p = unsafe { LineAligned.alloc(l) };
            unsafe { fill(p, size, round as u8) };
            blocks.push((p, size));
        }
        for (i, &(p, size)) in blocks.iter().enumerate() {
            assert!(unsafe { holds(p, size, i as u8) });
            unsafe { LineAligned.dealloc(p, layout(size, 4)) };
        }
    }
}
