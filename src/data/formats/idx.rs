//! IDX files (the MNIST family), raw or gzip-compressed.
//!
//! Only unsigned-byte arrays (type code 0x08) are read. Images are `[N, rows, cols]`
//! (one channel); `[N, C, rows, cols]` is accepted too, so colour subsets can be stored in the
//! same format. Labels are `[N]`.

use std::path::Path;

use super::{read_maybe_gz, write_gz_atomic};
use crate::data::ImageDataset;
use crate::error::{Error, Result};

/// A decoded IDX array.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parses IDX bytes; `path` is only used in error messages.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(Error::input(
            path,
            format!("truncated IDX header ({} bytes)", bytes.len()),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(Error::input(
            path,
            format!("wrong magic {:02x} {:02x}: not an IDX file", bytes[0], bytes[1]),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(Error::input(
            path,
            format!(
                "IDX element type 0x{:02x} unsupported (only unsigned bytes, 0x08)",
                bytes[2]
            ),
        ));
    }
    let ndims = bytes[3] as usize;
    if ndims == 0 {
        return Err(Error::input(path, "IDX array with zero dimensions"));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(Error::input(path, "truncated IDX header"));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let n = n.ok_or_else(|| Error::input(path, format!("IDX dimensions {dims:?} overflow")))?;
    let body = bytes.len() - header;
    if body < n {
        return Err(Error::input(
            path,
            format!("truncated: dimensions {dims:?} need {n} bytes, file has {body}"),
        ));
    }
    if body > n {
        return Err(Error::input(
            path,
            format!("{} unexpected bytes after the data of dimensions {dims:?}", body - n),
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Reads an IDX file, gzip-compressed or not.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    parse_idx(&read_maybe_gz(path)?, path)
}

/// Encodes an unsigned-byte IDX array.
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, 0x08, dims.len() as u8]);
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Loads an image file and a label file. Without `class_names` the classes are named "0",
/// "1", … up to the largest label; with them, a label outside the list is an error.
pub fn load_idx(images: &Path, labels: &Path, name: &str, class_names: Option<Vec<String>>) -> Result<ImageDataset> {
    let img = read_idx(images)?;
    let (n, c, h, w) = match img.dims[..] {
        [n, h, w] => (n, 1, h, w),
        [n, c, h, w] => (n, c, h, w),
        _ => {
            return Err(Error::input(
                images,
                format!("image array has dimensions {:?}; expected [N, rows, cols]", img.dims),
            ));
        }
    };
    if n == 0 {
        return Err(Error::input(images, "zero images"));
    }
    if c == 0 || h == 0 || w == 0 {
        return Err(Error::input(images, format!("empty image shape {:?}", img.dims)));
    }
    let lab = read_idx(labels)?;
    if lab.dims.len() != 1 {
        return Err(Error::input(
            labels,
            format!("label array has dimensions {:?}; expected [N]", lab.dims),
        ));
    }
    if lab.dims[0] != n {
        return Err(Error::input(
            labels,
            format!("{} labels for {n} images in {}", lab.dims[0], images.display()),
        ));
    }
    let max = lab.data.iter().copied().max().unwrap_or(0) as usize;
    let class_names = match class_names {
        Some(names) => {
            if max >= names.len() {
                return Err(Error::input(
                    labels,
                    format!("label {max} out of range for {} classes", names.len()),
                ));
            }
            names
        }
        None => (0..=max).map(|i| i.to_string()).collect(),
    };
    let ds = ImageDataset {
        name: name.to_string(),
        channels: c,
        height: h,
        width: w,
        pixels: img.data.into(),
        labels: lab.data.iter().map(|&l| l as u32).collect(),
        class_names,
    };
    ds.validate()?;
    Ok(ds)
}

/// Writes a data set as a gzip-compressed IDX pair (`[N, rows, cols]` for one channel,
/// `[N, C, rows, cols]` otherwise). Labels must fit in a byte.
pub fn write_idx_gz(ds: &ImageDataset, images: &Path, labels: &Path) -> Result<()> {
    if ds.n_classes() > 256 {
        return Err(Error::usage(format!(
            "{}: {} classes do not fit in IDX byte labels",
            ds.name,
            ds.n_classes()
        )));
    }
    let dims: Vec<usize> = if ds.channels == 1 {
        vec![ds.len(), ds.height, ds.width]
    } else {
        vec![ds.len(), ds.channels, ds.height, ds.width]
    };
    write_gz_atomic(images, &encode_idx(&dims, &ds.pixels))?;
    let lab: Vec<u8> = ds.labels.iter().map(|&l| l as u8).collect();
    write_gz_atomic(labels, &encode_idx(&[ds.len()], &lab))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(path: &Path, bytes: &[u8], gz: bool) {
        let mut f = std::fs::File::create(path).unwrap();
        if gz {
            let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            e.write_all(bytes).unwrap();
            e.finish().unwrap();
        } else {
            f.write_all(bytes).unwrap();
        }
    }

    fn pair(dir: &Path, gz: bool) -> (std::path::PathBuf, std::path::PathBuf) {
        let img = dir.join("img");
        let lab = dir.join("lab");
        let pixels: Vec<u8> = (0..3 * 2 * 3).map(|v| v as u8).collect();
        write(&img, &encode_idx(&[3, 2, 3], &pixels), gz);
        write(&lab, &encode_idx(&[3], &[2, 0, 1]), gz);
        (img, lab)
    }

    #[test]
    fn reads_raw_and_gz() {
        for gz in [false, true] {
            let dir = crate::scratch::tempdir().unwrap();
            let (img, lab) = pair(dir.path(), gz);
            let ds = load_idx(&img, &lab, "t", None).unwrap();
            assert_eq!((ds.len(), ds.channels, ds.height, ds.width), (3, 1, 2, 3));
            assert_eq!(ds.labels, vec![2, 0, 1]);
            assert_eq!(ds.image(1), &[6, 7, 8, 9, 10, 11]);
            assert_eq!(ds.class_names, vec!["0", "1", "2"]);
        }
    }

    #[test]
    fn write_read_roundtrip_colour() {
        let dir = crate::scratch::tempdir().unwrap();
        let mut ds = ImageDataset::empty("c", 3, 2, 2, vec!["a".into(), "b".into()]);
        ds.push(&[1; 12], 1);
        ds.push(&[2; 12], 0);
        let (i, l) = (dir.path().join("i.gz"), dir.path().join("l.gz"));
        write_idx_gz(&ds, &i, &l).unwrap();
        let back = load_idx(&i, &l, "c", Some(ds.class_names.clone())).unwrap();
        assert_eq!(back, ds);
    }

    fn err(img: &Path, lab: &Path, names: Option<Vec<String>>) -> String {
        load_idx(img, lab, "t", names).unwrap_err().to_string()
    }

    #[test]
    fn bad_files() {
        let dir = crate::scratch::tempdir().unwrap();
        let d = dir.path();
        let (img, lab) = pair(d, false);
        // Label out of range of the given names.
        let e = err(&img, &lab, Some(vec!["a".into(), "b".into()]));
        assert!(e.contains("lab") && e.contains("label 2 out of range"), "{e}");
        // Wrong magic.
        let bad = d.join("magic");
        write(&bad, b"\x01\x02\x08\x01\0\0\0\x01\x05", false);
        let e = err(&bad, &lab, None);
        assert!(e.contains("magic") && e.contains("wrong magic"), "{e}");
        // Truncated.
        let trunc = d.join("trunc");
        let mut bytes = encode_idx(&[3, 2, 3], &[0; 18]);
        bytes.truncate(bytes.len() - 1);
        write(&trunc, &bytes, false);
        let e = err(&trunc, &lab, None);
        assert!(e.contains("trunc") && e.contains("truncated"), "{e}");
        // Truncated header.
        write(&trunc, &[0, 0, 8], false);
        assert!(err(&trunc, &lab, None).contains("truncated"));
        // Zero images.
        let zero = d.join("zero");
        write(&zero, &encode_idx(&[0, 2, 3], &[]), false);
        assert!(err(&zero, &lab, None).contains("zero images"));
        // Mismatched counts.
        let lab2 = d.join("lab2");
        write(&lab2, &encode_idx(&[2], &[0, 1]), false);
        let e = err(&img, &lab2, None);
        assert!(e.contains("lab2") && e.contains("2 labels for 3 images"), "{e}");
        // Unreadable (missing) file.
        let e = load_idx(&d.join("missing"), &lab, "t", None).unwrap_err();
        assert!(matches!(e, Error::Io { .. }) && e.to_string().contains("missing"));
        // Corrupt gzip.
        let cg = d.join("cg");
        write(&cg, &[0x1f, 0x8b, 0, 1, 2, 3], false);
        assert!(err(&cg, &lab, None).contains("corrupt gzip"));
        // Wrong rank and trailing bytes.
        let rank = d.join("rank");
        write(&rank, &encode_idx(&[6], &[0; 6]), false);
        assert!(err(&rank, &lab, None).contains("expected [N, rows, cols]"));
        let mut extra = encode_idx(&[3, 2, 3], &[0; 18]);
        extra.push(0);
        write(&rank, &extra, false);
        assert!(err(&rank, &lab, None).contains("unexpected bytes"));
    }
}
