//! The guest's memory allocator: small blocks from per-size free lists, the
//! rest from the standard allocator.
//!
//! A guest allocates and frees the same small blocks batch after batch: the
//! host lowers each message's value into a fresh block, parsing makes a few
//! small vectors per message, and all of it is freed when the batch is done.
//! The standard wasm allocator (dlmalloc) spends about a quarter of a simple
//! guest's time on that traffic. Here a block of up to [`LARGEST`] bytes comes
//! from a free list of its power-of-two size class (a pop), and goes back to
//! it when freed (a push); lists are refilled from 64 KiB chunks. Memory of a
//! size class is kept for reuse and never returned, so a guest's footprint is
//! its peak use per class, which for a batch loop is what the next batch needs.
//!
//! Installed as the global allocator of wasm guests by the SDK's default
//! `small-block-allocator` feature (a guest that wants its own allocator turns
//! the feature off). Guests are single-threaded: there is no locking.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr::null_mut;

/// Smallest block: room for the free-list link, and the largest alignment served.
const SMALLEST_SHIFT: u32 = 4;
/// Size classes 16, 32, …, 2048 bytes.
const CLASSES: usize = 8;
/// Largest block served from the free lists.
pub const LARGEST: usize = 1 << (SMALLEST_SHIFT as usize + CLASSES - 1);
/// Refill chunk size.
const CHUNK: usize = 64 * 1024;

/// Free lists per size class, and the chunk being carved.
struct Lists {
    free: [*mut u8; CLASSES],
    chunk_next: *mut u8,
    chunk_end: *mut u8,
}

/// The allocator (see the module docs).
pub struct SmallBlockAllocator {
    lists: UnsafeCell<Lists>,
}

// SAFETY: wasm32 guests run on one thread (the component model gives a guest
// no threads), so the lists are never touched concurrently.
unsafe impl Sync for SmallBlockAllocator {}

impl SmallBlockAllocator {
    /// An allocator with empty lists.
    pub const fn new() -> Self {
        SmallBlockAllocator {
            lists: UnsafeCell::new(Lists {
                free: [null_mut(); CLASSES],
                chunk_next: null_mut(),
                chunk_end: null_mut(),
            }),
        }
    }
}

impl Default for SmallBlockAllocator {
    fn default() -> Self {
        Self::new()
    }
}

/// The size class of a layout, or `None` when the standard allocator serves it.
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() > LARGEST || layout.align() > 1 << SMALLEST_SHIFT {
        return None;
    }
    let size = layout.size().max(1 << SMALLEST_SHIFT);
    Some((usize::BITS - (size - 1).leading_zeros() - SMALLEST_SHIFT) as usize)
}

fn class_size(class: usize) -> usize {
    1 << (class + SMALLEST_SHIFT as usize)
}

unsafe impl GlobalAlloc for SmallBlockAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            // SAFETY: the caller's layout contract is passed on unchanged.
            return unsafe { System.alloc(layout) };
        };
        // SAFETY: single-threaded (see `Sync` above); no reference to the
        // lists outlives this call.
        let lists = unsafe { &mut *self.lists.get() };
        let head = lists.free[class];
        if !head.is_null() {
            // SAFETY: a free block's first word holds the next free block.
            lists.free[class] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let size = class_size(class);
        if (lists.chunk_end as usize) - (lists.chunk_next as usize) < size {
            // The rest of the old chunk is too small for this class: a
            // few bytes lost per refill. Chunks are 16-aligned, and every
            // class size is a multiple of 16, so every block is too.
            // SAFETY: CHUNK and 16 make a valid, non-zero layout.
            let chunk = unsafe { System.alloc(Layout::from_size_align_unchecked(CHUNK, 1 << SMALLEST_SHIFT)) };
            if chunk.is_null() {
                return null_mut();
            }
            lists.chunk_next = chunk;
            // SAFETY: the chunk is CHUNK bytes long.
            lists.chunk_end = unsafe { chunk.add(CHUNK) };
        }
        let block = lists.chunk_next;
        // SAFETY: at least `size` bytes are left in the chunk (checked above).
        lists.chunk_next = unsafe { block.add(size) };
        block
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            // SAFETY: blocks of this layout came from `System`.
            return unsafe { System.dealloc(ptr, layout) };
        };
        // SAFETY: single-threaded, as in `alloc`.
        let lists = unsafe { &mut *self.lists.get() };
        // SAFETY: the block is at least 16 bytes and 16-aligned, ours to reuse.
        unsafe { ptr.cast::<*mut u8>().write(lists.free[class]) };
        lists.free[class] = ptr;
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `GlobalAlloc::realloc`'s contract makes this a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            // Same class: the block already has room.
            (Some(old), Some(new)) if old == new => ptr,
            // Both large: let the standard allocator grow in place if it can.
            // SAFETY: the block came from `System` with `layout`.
            (None, None) => unsafe { System.realloc(ptr, layout, new_size) },
            _ => {
                // SAFETY: a fresh block for `new_layout`, then the old one's
                // bytes (the smaller of the two sizes), then the old one freed.
                unsafe {
                    let new = self.alloc(new_layout);
                    if !new.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    new
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_map_to_the_smallest_class_that_holds_them() {
        let class = |size, align| class_of(Layout::from_size_align(size, align).expect("layout"));
        assert_eq!(class(0, 1), Some(0));
        assert_eq!(class(16, 8), Some(0));
        assert_eq!(class(17, 1), Some(1));
        assert_eq!(class(32, 16), Some(1));
        assert_eq!(class(300, 1), Some(5));
        assert_eq!(class(LARGEST, 1), Some(CLASSES - 1));
        assert_eq!(class(LARGEST + 1, 1), None);
        assert_eq!(class(8, 32), None);
        for class in 0..CLASSES {
            assert_eq!(class_of(Layout::from_size_align(class_size(class), 1).expect("layout")), Some(class));
        }
    }

    #[test]
    fn blocks_are_reused_aligned_and_keep_their_contents_across_realloc() {
        let heap = SmallBlockAllocator::new();
        let layout = Layout::from_size_align(40, 8).expect("layout");
        // SAFETY: each block is used within its layout and freed once.
        unsafe {
            let a = heap.alloc(layout);
            let b = heap.alloc(layout);
            assert!(!a.is_null() && !b.is_null() && a != b);
            assert_eq!(a as usize % 16, 0);
            heap.dealloc(a, layout);
            assert_eq!(heap.alloc(layout), a, "a freed block is handed out again");
            for i in 0..40 {
                b.add(i).write(i as u8);
            }
            let grown = heap.realloc(b, layout, 5000);
            assert!((0..40).all(|i| grown.add(i).read() == i as u8));
            let big = Layout::from_size_align(5000, 8).expect("layout");
            let shrunk = heap.realloc(grown, big, 20);
            assert!((0..20).all(|i| shrunk.add(i).read() == i as u8));
            heap.dealloc(shrunk, Layout::from_size_align(20, 8).expect("layout"));
            heap.dealloc(a, layout);
        }
    }
}
