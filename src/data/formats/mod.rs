//! Readers for the on-disk formats of real data sets. Every error names the offending file.

pub mod cifar;
pub mod idx;
pub mod image_folder;
pub mod npy;

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Reads a whole file, transparently gunzipping it when it starts with the gzip magic (so
/// `foo` and `foo.gz` are both accepted whatever their names say).
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::input(path, format!("corrupt gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Writes `bytes` gzip-compressed to `path` via a temporary file and a rename, so a reader
/// never sees a half-written file.
pub fn write_gz_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    enc.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    enc.finish().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Reads a text file of one class name per line (blank lines ignored).
pub fn read_class_names(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.is_empty() {
        return Err(Error::input(path, "no class names in file"));
    }
    Ok(names)
}
