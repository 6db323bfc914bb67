//! NumPy's `.npy` (float32, C order) and `.npz` (a zip of `.npy` members, stored uncompressed):
//! what `tunnelbench infer` reads and writes, so that NumPy and PyTorch users can check its
//! numbers with `numpy.load`.

use std::io::Write as _;
use std::path::Path;

use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// A float32 array: its shape and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Reads a float32, C-order `.npy` file.
pub fn read_npy(path: &Path) -> Result<Array> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_npy(&bytes).map_err(|msg| Error::input(path, msg))
}

fn parse_npy(bytes: &[u8]) -> std::result::Result<Array, String> {
    if !bytes.starts_with(MAGIC) || bytes.len() < 10 {
        return Err("not a .npy file (no NumPy magic)".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!(".npy format version {v} is not supported")),
    };
    let header = bytes.get(start..start + header_len).ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| "the .npy header is not text")?;
    let field = |key: &str| -> std::result::Result<&str, String> {
        let at = header
            .find(&format!("'{key}'"))
            .ok_or(format!("the .npy header has no `{key}`"))?;
        Ok(header[at + key.len() + 2..].trim_start_matches([' ', ':']))
    };
    let descr = field("descr")?;
    if !(descr.starts_with("'<f4'") || descr.starts_with("'|f4'")) {
        let got = descr.split(',').next().unwrap_or(descr);
        return Err(format!(
            "dtype {got}: expected float32 ('<f4'), e.g. array.astype(numpy.float32)"
        ));
    }
    if !field("fortran_order")?.starts_with("False") {
        return Err("Fortran-order array: save a C-order one (numpy.ascontiguousarray)".into());
    }
    let shape = field("shape")?;
    let close = shape.find(')').ok_or("malformed shape in the .npy header")?;
    let shape: Vec<usize> = shape[1..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| format!("malformed shape dimension `{s}`")))
        .collect::<std::result::Result<_, _>>()?;
    let n: usize = shape.iter().product();
    let body = &bytes[start + header_len..];
    if body.len() != n * 4 {
        return Err(format!(
            "shape {shape:?} needs {} bytes of data, the file holds {}",
            n * 4,
            body.len()
        ));
    }
    let data = body
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(Array { shape, data })
}

/// The `.npy` bytes of a float32 array (format 1.0, header padded to 64 bytes).
pub fn npy_bytes(a: &Array) -> Vec<u8> {
    let dims: Vec<String> = a.shape.iter().map(usize::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + a.data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in &a.data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes named arrays as an `.npz` (members `<name>.npy`, uncompressed) through a temporary
/// file and a rename.
pub fn write_npz(path: &Path, arrays: &[(String, Array)]) -> Result<()> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let fail = |e: &dyn std::fmt::Display| Error::Internal(format!("writing {}: {e}", path.display()));
    for (name, a) in arrays {
        zip.start_file(format!("{name}.npy"), options).map_err(|e| fail(&e))?;
        zip.write_all(&npy_bytes(a)).map_err(|e| fail(&e))?;
    }
    let bytes = zip.finish().map_err(|e| fail(&e))?.into_inner();
    Ok(tunnelbench_plot::write_atomic(path, &bytes)?)
}

/// Reads every member of an `.npz` (float32 arrays), in file order, named without `.npy`.
pub fn read_npz(path: &Path) -> Result<Vec<(String, Array)>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let bad = |e: &dyn std::fmt::Display| Error::input(path, format!("not a readable .npz: {e}"));
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(&e))?;
    let mut out = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut member = zip.by_index(i).map_err(|e| bad(&e))?;
        let name = member.name().map_err(|e| bad(&e))?.trim_end_matches(".npy").to_string();
        let mut bytes = Vec::new();
        member.read_to_end(&mut bytes).map_err(|e| bad(&e))?;
        let array = parse_npy(&bytes).map_err(|msg| Error::input(path, format!("member `{name}`: {msg}")))?;
        out.push((name, array));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trips_and_matches_numpy_header() {
        let a = Array {
            shape: vec![2, 3],
            data: vec![1.0, -2.5, 3.0, 0.0, 1e-8, 7.0],
        };
        let bytes = npy_bytes(&a);
        // numpy.save writes this header for a (2, 3) float32 array (numpy 2.x, format 1.0).
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        assert_eq!(&bytes[10..10 + header.len()], header.as_bytes());
        assert_eq!((bytes.len() - 24) % 64, 0);
        assert_eq!(parse_npy(&bytes).unwrap(), a);
        let v = Array {
            shape: vec![4],
            data: vec![0.5; 4],
        };
        assert_eq!(parse_npy(&npy_bytes(&v)).unwrap(), v);
        let mut f8 = npy_bytes(&a);
        f8[10 + 11] = b'8';
        assert!(parse_npy(&f8).unwrap_err().contains("float32"));
        assert!(parse_npy(&bytes[..bytes.len() - 4]).unwrap_err().contains("bytes"));
        assert!(parse_npy(b"PK\x03\x04").is_err());
    }
}
