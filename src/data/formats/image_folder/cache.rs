//! The cache file of decoded ImageFolder images: uint8 pixels as the data set stores them.
//!
//! Layout (little-endian): `MAGIC`, the 32-byte key, the image count and bytes per image (u64
//! each), the pixels, the labels (u32 each), a checksum of the pixels and labels (u64), `END`.
//! A file is written under a temporary name and renamed into place once complete and synced,
//! so a crash leaves no file under the cache name; a file that is there is still checked (size,
//! key, shape, labels, checksum) before it is used, and replaced when any check fails. Files are
//! never modified in place, which keeps a mapping of one valid while it is read.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::data::Pixels;
use crate::error::{Error, Result};

pub const MAGIC: &[u8; 8] = b"TBIMGC01";
const END: &[u8; 8] = b"TBIMGEND";
const HEADER: usize = 8 + 32 + 8 + 8;
const TRAILER: usize = 8 + 8;

/// What a cache file must hold.
pub struct CacheShape {
    pub key: [u8; 32],
    pub n: usize,
    pub image_len: usize,
}

impl CacheShape {
    fn header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(HEADER);
        h.extend_from_slice(MAGIC);
        h.extend_from_slice(&self.key);
        h.extend_from_slice(&(self.n as u64).to_le_bytes());
        h.extend_from_slice(&(self.image_len as u64).to_le_bytes());
        h
    }

    fn file_len(&self) -> Option<usize> {
        let pixels = self.n.checked_mul(self.image_len)?;
        HEADER
            .checked_add(pixels)?
            .checked_add(4 * self.n)?
            .checked_add(TRAILER)
    }
}

/// A 64-bit checksum of `bytes` (word-wise multiply-rotate; detects truncation, torn writes and
/// flipped bits, not deliberate tampering).
fn fold(mut h: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = (h.rotate_left(23) ^ u64::from_le_bytes(w.try_into().unwrap_or_default())).wrapping_mul(K);
    }
    for &b in words.remainder() {
        h = (h.rotate_left(23) ^ u64::from(b)).wrapping_mul(K);
    }
    h ^ bytes.len() as u64
}

/// The checksum of the whole file body: each image's checksum folded in order, then the labels'.
fn combine(image_sums: impl Iterator<Item = u64>, labels: &[u8]) -> u64 {
    let mut h = 0u64;
    for s in image_sums {
        h = fold(h, &s.to_le_bytes());
    }
    fold(h, labels)
}

fn label_bytes(labels: &[u32]) -> Vec<u8> {
    labels.iter().flat_map(|l| l.to_le_bytes()).collect()
}

/// The pixels of a valid cache file at `path` holding `shape` with `labels`, mapped; `None`
/// when there is no file or it does not pass every check.
pub fn open(path: &Path, shape: &CacheShape, labels: &[u32]) -> Result<Option<Pixels>> {
    use rayon::prelude::*;
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if Some(len) != shape.file_len().map(|l| l as u64) {
        return Ok(None);
    }
    // SAFETY: cache files are only ever created whole and renamed into place, never written
    // in place (see the module documentation), so the mapped bytes do not change under us.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    if map[..HEADER] != shape.header()[..] || &map[map.len() - 8..] != END {
        return Ok(None);
    }
    let body = HEADER + shape.n * shape.image_len;
    let stored_labels = &map[body..body + 4 * shape.n];
    if stored_labels != label_bytes(labels).as_slice() {
        return Ok(None);
    }
    let pixels = &map[HEADER..body];
    let sums: Vec<u64> = if shape.image_len == 0 {
        Vec::new()
    } else {
        pixels.par_chunks(shape.image_len).map(|img| fold(0, img)).collect()
    };
    let stored = u64::from_le_bytes(map[map.len() - TRAILER..map.len() - 8].try_into().unwrap_or_default());
    if combine(sums.into_iter(), stored_labels) != stored {
        return Ok(None);
    }
    let (offset, n) = (HEADER, shape.n * shape.image_len);
    let pixels = Pixels::mapped(Arc::new(map), offset, n);
    // Checked: the pages read need not stay resident until they are used.
    pixels.release(0..n);
    Ok(Some(pixels))
}

/// A cache file being written, image by image, under a temporary name.
pub struct Writer {
    out: Option<BufWriter<File>>,
    tmp: PathBuf,
    path: PathBuf,
    sums: Vec<u64>,
    image_len: usize,
}

impl Writer {
    pub fn create(path: &Path, shape: &CacheShape) -> Result<Writer> {
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut w = Writer {
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            tmp,
            path: path.to_path_buf(),
            sums: Vec::with_capacity(shape.n),
            image_len: shape.image_len,
        };
        w.write(&shape.header())?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let out = self.out.as_mut().expect("writer is open until finished");
        out.write_all(bytes).map_err(|e| Error::io(&self.tmp, e))
    }

    /// Appends the next image.
    pub fn image(&mut self, img: &[u8]) -> Result<()> {
        debug_assert_eq!(img.len(), self.image_len);
        self.sums.push(fold(0, img));
        self.write(img)
    }

    /// Writes the labels and the checksum, syncs, and renames the file into place.
    pub fn finish(mut self, labels: &[u32]) -> Result<()> {
        if labels.len() != self.sums.len() {
            return Err(Error::usage(format!(
                "{}: {} images written for {} labels",
                self.path.display(),
                self.sums.len(),
                labels.len()
            )));
        }
        let lb = label_bytes(labels);
        let sum = combine(self.sums.iter().copied(), &lb);
        self.write(&lb)?;
        self.write(&sum.to_le_bytes())?;
        self.write(END)?;
        let out = self.out.take().expect("writer is open until finished");
        let done = out
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))
            .and_then(|file| file.sync_all().map_err(|e| Error::io(&self.tmp, e)))
            .and_then(|()| std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e)));
        if done.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        done
    }
}

impl Drop for Writer {
    /// An unfinished file (an error or an interruption while decoding) is removed.
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
