//! The `host` binary's global allocator: the system allocator, plus a cache
//! of freed large blocks for work that makes the same large buffers over
//! and over.
//!
//! glibc maps every allocation above its mmap threshold (32 MiB at most,
//! which the host sets) on its own and unmaps it when freed, so the next
//! buffer of that size gets fresh pages that the kernel zeroes on first
//! touch. All-ranking evaluation makes the same few block-sized tensors
//! (the scores of a block of users, each elementwise step on them: 256 MiB
//! each at 10^6 items) for every block of users; the kernel's page zeroing
//! was a quarter of an MF model's evaluation. Inside a [`scope`], a freed
//! block of [`MIN_CACHED`] bytes or more is kept (up to [`BUDGET`] bytes in
//! [`SLOTS`] blocks; the ones freed longest ago make room) and handed to the
//! next allocation of the same size and a fitting alignment, the block
//! freed last first (its lines may still be cached), without its pages
//! being unmapped and faulted in again (a zeroed allocation gets its pages
//! back from the kernel as zero pages, see [`zero`]). When the last scope ends, the kept blocks are freed, so nothing
//! stays resident after the evaluation. `CAUSALREC_ALLOC_CACHE=0` turns the
//! cache off.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Blocks smaller than this are glibc's (kept in its heap when freed).
pub const MIN_CACHED: usize = 32 << 20;
/// Bytes the cache may hold: an MF model's evaluation frees four blocks of
/// up to 272 MB each per block of users.
pub const BUDGET: usize = 2 << 30;
/// Blocks the cache may hold.
pub const SLOTS: usize = 8;

/// A kept block: its address, size and the alignment it was made with,
/// and when it was freed (a count).
#[derive(Clone, Copy)]
struct Kept {
    ptr: usize,
    size: usize,
    align: usize,
    freed: u64,
}

impl Kept {
    /// Free the block.
    ///
    /// # Safety
    /// The block must be a `System` block of this size and alignment that
    /// nothing else lists or uses.
    unsafe fn free(self) {
        System.dealloc(
            self.ptr as *mut u8,
            Layout::from_size_align_unchecked(self.size, self.align),
        )
    }
}

/// The kept blocks and the count of blocks kept so far.
struct Slots {
    kept: [Option<Kept>; SLOTS],
    freed: u64,
}

/// The system allocator with a cache of freed large blocks, active inside
/// [`scope`]s.
pub struct LargeBlockCache {
    slots: Mutex<Slots>,
    /// Scopes open now: blocks are kept only while one is.
    scopes: AtomicUsize,
    /// Bytes in `kept`.
    held: AtomicUsize,
    /// 0: not read yet, 1: on, 2: off (`CAUSALREC_ALLOC_CACHE=0`).
    switch: AtomicUsize,
}

impl LargeBlockCache {
    pub const fn new() -> Self {
        LargeBlockCache {
            slots: Mutex::new(Slots {
                kept: [None; SLOTS],
                freed: 0,
            }),
            scopes: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            switch: AtomicUsize::new(0),
        }
    }

    /// Whether the cache is switched on (read from the environment once,
    /// when the first scope opens: reading it allocates).
    fn on(&self) -> bool {
        match self.switch.load(Ordering::Relaxed) {
            1 => true,
            2 => false,
            _ => {
                let off = crate::switched_off("CAUSALREC_ALLOC_CACHE");
                self.switch
                    .store(if off { 2 } else { 1 }, Ordering::Relaxed);
                !off
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        // The slots hold plain numbers: a panic elsewhere leaves them valid.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open a scope: freed large blocks are kept until the last one closes.
    pub fn open(&self) {
        if self.on() {
            self.scopes.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Close a scope; the last one frees every kept block.
    pub fn close(&self) {
        if !self.on() {
            return;
        }
        if self.scopes.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.release();
        }
    }

    /// Free every kept block.
    pub fn release(&self) {
        let mut slots = self.lock();
        for k in slots.kept.iter_mut().filter_map(Option::take) {
            self.held.fetch_sub(k.size, Ordering::AcqRel);
            // SAFETY: `k` was made by `System` with this size and alignment
            // (kept by `dealloc`), and is no longer listed.
            unsafe { k.free() };
        }
    }

    /// Bytes kept now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// A kept block for `layout`, if one fits: the one freed last, whose
    /// lines are the likeliest to be in cache still.
    fn take(&self, layout: Layout) -> Option<Kept> {
        if layout.size() < MIN_CACHED || self.held() == 0 {
            return None;
        }
        let mut slots = self.lock();
        let slot = slots
            .kept
            .iter_mut()
            .filter(|k| k.is_some_and(|k| k.size == layout.size() && k.ptr % layout.align() == 0))
            .max_by_key(|k| k.map_or(0, |k| k.freed))?;
        let k = slot.take()?;
        self.held.fetch_sub(k.size, Ordering::AcqRel);
        Some(k)
    }

    /// Keep a freed block if a scope is open and it fits the budget, the
    /// blocks freed longest ago freed to make room.
    fn keep(&self, ptr: *mut u8, layout: Layout) -> bool {
        if layout.size() < MIN_CACHED
            || layout.size() > BUDGET
            || self.scopes.load(Ordering::Acquire) == 0
        {
            return false;
        }
        let mut slots = self.lock();
        while self.held() + layout.size() > BUDGET || slots.kept.iter().all(Option::is_some) {
            let oldest = slots
                .kept
                .iter_mut()
                .filter(|k| k.is_some())
                .min_by_key(|k| k.map_or(0, |k| k.freed));
            let Some(k) = oldest.and_then(Option::take) else {
                break;
            };
            self.held.fetch_sub(k.size, Ordering::AcqRel);
            // SAFETY: a kept `System` block, no longer listed.
            unsafe { k.free() };
        }
        slots.freed += 1;
        let freed = slots.freed;
        let Some(slot) = slots.kept.iter_mut().find(|k| k.is_none()) else {
            return false;
        };
        *slot = Some(Kept {
            ptr: ptr as usize,
            size: layout.size(),
            align: layout.align(),
            freed,
        });
        self.held.fetch_add(layout.size(), Ordering::AcqRel);
        true
    }
}

impl Default for LargeBlockCache {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every block handed out is a `System` block of at least the
// requested size (a kept block has exactly that size) at a fitting
// alignment; a block is either listed in `kept` or owned by its user,
// never both; everything else is `System`'s.
unsafe impl GlobalAlloc for LargeBlockCache {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.take(layout) {
            Some(k) => k.ptr as *mut u8,
            None => System.alloc(layout),
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match self.take(layout) {
            Some(k) => {
                let p = k.ptr as *mut u8;
                zero(p, layout.size());
                p
            }
            None => System.alloc_zeroed(layout),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.keep(ptr, layout) {
            System.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // glibc moves a mapped block by remapping it.
        System.realloc(ptr, layout, new_size)
    }
}

/// Zero `size` bytes at `p`, a kept block. On Linux its whole pages go back
/// to the kernel (`MADV_DONTNEED`), which maps zero pages as they are next
/// written, each zeroed while the writer's lines are hot (zeroing all of
/// it here first measured slower); the partial pages at its ends, which
/// may hold the system allocator's own records next to it, are zeroed here.
///
/// # Safety
/// `p .. p + size` must be writable memory that nothing else uses.
unsafe fn zero(p: *mut u8, size: usize) {
    #[cfg(target_os = "linux")]
    {
        let page = match libc::sysconf(libc::_SC_PAGESIZE) {
            n if n > 0 => n as usize,
            _ => 4096,
        };
        let (a, b) = (p as usize, p as usize + size);
        let (start, end) = (a.next_multiple_of(page), b / page * page);
        if end > start
            && libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) == 0
        {
            p.write_bytes(0, start - a);
            (end as *mut u8).write_bytes(0, b - end);
            return;
        }
    }
    p.write_bytes(0, size);
}

/// The cache [`HostAllocator`] allocates through and [`scope`] opens.
pub static CACHE: LargeBlockCache = LargeBlockCache::new();

/// The `host` binary's global allocator (`#[global_allocator]` in
/// `main.rs`; a library cannot declare it, since test binaries declare
/// their own): [`CACHE`]. Elsewhere scopes keep nothing.
pub struct HostAllocator;

// SAFETY: delegates every call to `CACHE`.
unsafe impl GlobalAlloc for HostAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CACHE.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        CACHE.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CACHE.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        CACHE.realloc(ptr, layout, new_size)
    }
}

/// Run `f` with freed large blocks kept for reuse (see the module
/// documentation); they are freed when the outermost scope ends.
pub fn scope<R>(f: impl FnOnce() -> R) -> R {
    struct Close;
    impl Drop for Close {
        fn drop(&mut self) {
            CACHE.close();
        }
    }
    CACHE.open();
    let _close = Close;
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIG: usize = MIN_CACHED;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    /// A cache with the switch on, whatever the environment says.
    fn cache() -> LargeBlockCache {
        let c = LargeBlockCache::new();
        c.switch.store(1, Ordering::Relaxed);
        c
    }

    #[test]
    fn a_large_block_freed_in_a_scope_is_handed_to_the_next_allocation_of_its_size() {
        let c = cache();
        c.open();
        unsafe {
            let a = c.alloc(layout(BIG, 8));
            assert!(!a.is_null());
            a.write_bytes(7, BIG);
            c.dealloc(a, layout(BIG, 8));
            assert_eq!(c.held(), BIG);
            // Another size is not served from it.
            let other = c.alloc(layout(BIG + 4096, 8));
            assert_ne!(other, a);
            c.dealloc(other, layout(BIG + 4096, 8));
            assert_eq!(c.held(), 2 * BIG + 4096);
            let b = c.alloc(layout(BIG, 4));
            assert_eq!(b, a, "the kept block is reused");
            assert_eq!(*b.add(BIG - 1), 7, "not zeroed: its contents are as left");
            assert_eq!(c.held(), BIG + 4096);
            c.dealloc(b, layout(BIG, 4));
        }
        c.close();
        assert_eq!(c.held(), 0, "the last scope frees what is kept");
    }

    #[test]
    fn a_zeroed_allocation_gets_a_kept_block_zeroed_to_its_last_byte() {
        let c = cache();
        c.open();
        // Odd sizes and offsets: partial pages at both ends.
        for size in [BIG, BIG + 4096 + 123] {
            unsafe {
                let a = c.alloc(layout(size, 8));
                a.write_bytes(0xAB, size);
                c.dealloc(a, layout(size, 8));
                let z = c.alloc_zeroed(layout(size, 8));
                assert_eq!(z, a, "the kept block is reused");
                let bytes = std::slice::from_raw_parts(z, size);
                assert!(bytes.iter().all(|&x| x == 0), "size {size}");
                c.dealloc(z, layout(size, 8));
            }
        }
        c.close();
        assert_eq!(c.held(), 0);
    }

    #[test]
    fn the_block_freed_last_is_reused_first_and_the_oldest_make_room() {
        let c = cache();
        c.open();
        unsafe {
            let blocks: Vec<*mut u8> = (0..3).map(|_| c.alloc(layout(BIG, 8))).collect();
            for &p in &blocks {
                c.dealloc(p, layout(BIG, 8));
            }
            assert_eq!(c.alloc(layout(BIG, 8)), blocks[2]);
            assert_eq!(c.alloc(layout(BIG, 8)), blocks[1]);
            c.dealloc(blocks[2], layout(BIG, 8));
            c.dealloc(blocks[1], layout(BIG, 8));
            assert_eq!(c.held(), 3 * BIG);
            // More blocks than slots: the ones freed longest ago are freed.
            let more: Vec<*mut u8> = (0..SLOTS).map(|_| c.alloc(layout(BIG, 8))).collect();
            assert_eq!(c.held(), 0);
            for &p in &more {
                c.dealloc(p, layout(BIG, 8));
            }
            assert_eq!(c.held(), SLOTS * BIG);
            let fresh = c.alloc(layout(BIG, 8));
            assert_eq!(fresh, more[SLOTS - 1]);
            // Over the budget: the oldest go first.
            let huge = BUDGET / 2 + 4096;
            let (x, y) = (c.alloc(layout(huge, 8)), c.alloc(layout(huge, 8)));
            c.dealloc(x, layout(huge, 8));
            assert!(c.held() <= BUDGET);
            c.dealloc(y, layout(huge, 8));
            assert_eq!(c.held(), huge, "only the last one fits with nothing else");
            assert_eq!(c.alloc(layout(huge, 8)), y);
            c.dealloc(y, layout(huge, 8));
            c.dealloc(fresh, layout(BIG, 8));
        }
        c.close();
        assert_eq!(c.held(), 0);
    }

    #[test]
    fn blocks_are_kept_only_in_a_scope_and_over_the_size_floor() {
        let c = cache();
        unsafe {
            let a = c.alloc(layout(BIG, 8));
            c.dealloc(a, layout(BIG, 8));
            assert_eq!(c.held(), 0, "no scope: freed at once");
            c.open();
            c.open();
            // Small blocks are the system's.
            let s = c.alloc(layout(4096, 8));
            c.dealloc(s, layout(4096, 8));
            assert_eq!(c.held(), 0);
            let b = c.alloc(layout(BIG, 8));
            c.dealloc(b, layout(BIG, 8));
            c.close();
            assert_eq!(c.held(), BIG, "an inner scope's end keeps them");
            c.close();
            assert_eq!(c.held(), 0);
        }
    }

    #[test]
    fn a_kept_block_is_not_handed_out_at_a_larger_alignment_than_it_has() {
        let c = cache();
        c.open();
        unsafe {
            let a = c.alloc(layout(BIG, 16));
            c.dealloc(a, layout(BIG, 16));
            let align = 1usize << 30;
            assert_ne!(
                a as usize % align,
                0,
                "this test needs a block off that alignment"
            );
            let b = c.alloc(layout(BIG, align));
            assert!(!b.is_null());
            assert_ne!(b, a);
            assert_eq!(b as usize % align, 0);
            assert_eq!(c.held(), BIG);
            c.dealloc(b, layout(BIG, align));
        }
        c.close();
        assert_eq!(c.held(), 0);
    }

    #[test]
    fn the_switch_turns_scopes_off() {
        let c = LargeBlockCache::new();
        c.switch.store(2, Ordering::Relaxed);
        c.open();
        unsafe {
            let a = c.alloc(layout(BIG, 8));
            c.dealloc(a, layout(BIG, 8));
        }
        assert_eq!(c.held(), 0);
        c.close();
    }
}
