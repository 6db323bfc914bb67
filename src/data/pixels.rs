//! The pixel store of a data set: bytes in memory, or a read-only window of a memory-mapped
//! cache file (see [`crate::data::formats::image_folder`]), so that a data set larger than the
//! memory can be read without being held.

use std::fmt;
use std::ops::Deref;
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
