//! Results on disk: atomic writes, tidy CSV, plots.

pub mod curves;
pub mod plot;

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// A tidy CSV file's bytes: a header from `T`'s fields, one row per record.
pub fn csv_bytes<T: serde::Serialize>(rows: &[T]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(|e| Error::Internal(format!("csv: {e}")))?;
    }
    w.into_inner().map_err(|e| Error::Internal(format!("csv: {e}")))
}

/// The records of a CSV file with a header; a row that does not fit `T` names the file.
pub fn read_csv<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| Error::input(path, e.to_string()))?;
    rdr.deserialize()
        .collect::<std::result::Result<Vec<T>, _>>()
        .map_err(|e| Error::input(path, format!("malformed row: {e}")))
}

/// Write a file under a temporary name in the same folder, fsync it, then rename it into place,
/// so that a reader (or a restarted run) never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}
