//! The pixel store of a data set: bytes in memory, or a read-only window of a memory-mapped
//! cache file (see [`crate::data::formats::image_folder`]), so that a data set larger than the
//! memory can be read without being held.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

/// `N * C * H * W` bytes. Reads go through `Deref<Target = [u8]>`; a write to a mapped store
/// copies it into memory first (copy on write), so a cache file is never modified.
#[derive(Clone)]
pub enum Pixels {
    Owned(Vec<u8>),
    /// `len` bytes at `offset` of a mapped file; clones share the mapping.
    Mapped {
        map: Arc<memmap2::Mmap>,
        offset: usize,
        len: usize,
    },
}

impl Pixels {
    /// A window of a mapping; panics when it lies outside the mapping, like slice indexing.
    pub fn mapped(map: Arc<memmap2::Mmap>, offset: usize, len: usize) -> Self {
        assert!(offset + len <= map.len(), "pixel window outside the mapping");
        Pixels::Mapped { map, offset, len }
    }

    pub fn is_mapped(&self) -> bool {
        matches!(self, Pixels::Mapped { .. })
    }

    /// Gives the resident pages of bytes `range` of a mapped store back to the operating system
    /// (the whole pages inside the range); they are read from the file again when next touched,
    /// so the bytes are unchanged. A pass over a mapped data set that releases what it has read
    /// holds only its current batch. Nothing for owned bytes.
    pub fn release(&self, range: Range<usize>) {
        #[cfg(unix)]
        if let Pixels::Mapped { map, offset, len } = self {
            assert!(
                range.start <= range.end && range.end <= *len,
                "release outside the pixels"
            );
            // SAFETY: sysconf has no preconditions.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as usize;
            let start = (offset + range.start).next_multiple_of(page);
            let end = (offset + range.end) / page * page;
            if end > start {
                // SAFETY: the mapping is a shared, read-only map of a cache file that is never
                // written once complete (a new one is written under another name and renamed),
                // so pages dropped here read back the same bytes; the advice only drops pages.
                let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start) };
            }
        }
        #[cfg(not(unix))]
        let _ = range;
    }

    /// The bytes as an owned vector, copied out of the mapping if mapped.
    pub fn to_mut(&mut self) -> &mut Vec<u8> {
        if let Pixels::Mapped { .. } = self {
            *self = Pixels::Owned(self.to_vec());
        }
        match self {
            Pixels::Owned(v) => v,
            Pixels::Mapped { .. } => unreachable!("converted above"),
        }
    }

    pub fn reserve(&mut self, additional: usize) {
        self.to_mut().reserve(additional);
    }

    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.to_mut().extend_from_slice(bytes);
    }
}

impl Default for Pixels {
    fn default() -> Self {
        Pixels::Owned(Vec::new())
    }
}

impl From<Vec<u8>> for Pixels {
    fn from(v: Vec<u8>) -> Self {
        Pixels::Owned(v)
    }
}

impl Deref for Pixels {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Pixels::Owned(v) => v,
            Pixels::Mapped { map, offset, len } => &map[*offset..*offset + *len],
        }
    }
}

impl PartialEq for Pixels {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl fmt::Debug for Pixels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_mapped() { "mapped" } else { "owned" };
        write!(f, "Pixels({} bytes, {kind})", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Released pages of a mapped store read back the same bytes; edges that are not whole pages
    /// and owned bytes are left alone.
    #[test]
    fn released_pixels_read_back_the_same() {
        let bytes: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let path = std::env::temp_dir().join(format!("tunnelbench-pixels-{}", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: the file is this test's own and is not written while mapped.
        let map = Arc::new(unsafe { memmap2::Mmap::map(&file) }.unwrap());
        let pixels = Pixels::mapped(map, 100, 40_000);
        assert_eq!(&pixels[..], &bytes[100..40_100]);
        pixels.release(0..40_000);
        pixels.release(5..9_000);
        assert_eq!(&pixels[..], &bytes[100..40_100]);
        let owned = Pixels::from(bytes.clone());
        owned.release(0..bytes.len());
        assert_eq!(&owned[..], &bytes[..]);
        std::fs::remove_file(&path).unwrap();
    }
}
