//! ImageFolder layout: `root/<class name>/*.png|jpg|jpeg`, classes sorted by name (byte
//! order, as torchvision's `ImageFolder` sorts them), files sorted by name within a class.
//!
//! Images are decoded and converted to RGB. The store needs one image size, so each image's
//! shorter side is resized to the load size (bicubic, as [`crate::data::transform`]) and the image
//! center-cropped to a square at load time — the first two steps of the evaluation transform, so
//! load at ⌊256/224·res⌋ and `prepare(ds, res)` then only crops. A tree is listed first
//! ([`index_image_folder`]) and only the images a subset keeps are decoded, in parallel, so the
//! memory held is that of the kept images at the load size.

use std::path::{Path, PathBuf};

use crate::data::transform::resize_and_crop;
use crate::data::{ImageDataset, Progress};

mod cache;
use crate::error::{Error, Result};
use cache::CacheShape;

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        out.push(entry.map_err(|e| Error::io(dir, e))?.path());
    }
    out.sort();
    Ok(out)
}

fn is_image(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Decodes one file to channel-major RGB; returns (pixels, height, width).
pub fn decode_rgb(path: &Path) -> Result<(Vec<u8>, usize, usize)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let img = image::load_from_memory(&bytes)
        .map_err(|e| Error::input(path, format!("cannot decode image: {e}")))?
        .to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err(Error::input(path, "image has zero size"));
    }
    let plane = h * w;
    let mut chw = vec![0u8; 3 * plane];
    for (p, px) in img.pixels().enumerate() {
        for c in 0..3 {
            chw[c * plane + p] = px.0[c];
        }
    }
    Ok((chw, h, w))
}

/// An ImageFolder tree listed, nothing decoded: its name (the root's last component), its
/// classes and every image file with its label, classes sorted, files sorted within a class.
pub struct FolderIndex {
    pub name: String,
    pub class_names: Vec<String>,
    pub files: Vec<(PathBuf, u32)>,
}

/// Images decoded at a time (in parallel) before they join the data set.
const DECODE_CHUNK: usize = 256;

/// Lists `root/<class>/<image>`.
pub fn index_image_folder(root: &Path) -> Result<FolderIndex> {
    let class_dirs: Vec<PathBuf> = list_dir(root)?.into_iter().filter(|p| p.is_dir()).collect();
    if class_dirs.is_empty() {
        return Err(Error::input(root, "no class folders (expected root/<class>/<image>)"));
    }
    let mut class_names = Vec::with_capacity(class_dirs.len());
    let mut files: Vec<(PathBuf, u32)> = Vec::new();
    for (c, dir) in class_dirs.iter().enumerate() {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        class_names.push(name);
        let images: Vec<PathBuf> = list_dir(dir)?.into_iter().filter(|p| is_image(p)).collect();
        if images.is_empty() {
            return Err(Error::input(dir, "empty class folder: no .png, .jpg or .jpeg files"));
        }
        files.extend(images.into_iter().map(|p| (p, c as u32)));
    }
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "images".into());
    Ok(FolderIndex {
        name,
        class_names,
        files,
    })
}

impl FolderIndex {
    /// The labels as a data set of empty images: what class subsets are drawn from.
    pub fn labels(&self) -> ImageDataset {
        let mut ds = ImageDataset::empty(self.name.clone(), 3, 0, 0, self.class_names.clone());
        ds.labels = self.files.iter().map(|(_, l)| *l).collect();
        ds
    }

    /// The images at `indices`, in that order, decoded in parallel, each image's shorter side
    /// resized to `size`, center-cropped to `size x size` and then to `crop x crop` (the crop of
    /// [`crate::data::transform::prepare`], so `crop < size` gives the prepared images at once).
    ///
    /// With a cache folder, the images are written to a cache file as they are decoded (one
    /// chunk held at a time) and the data set maps that file; a later call with the same files
    /// (paths, sizes, modification times), sizes and order maps the file without decoding. Without
    /// one, the kept images are held in memory.
    pub fn decode(
        &self,
        indices: &[usize],
        size: usize,
        crop: usize,
        cache: Option<&Path>,
        progress: &mut dyn Progress,
    ) -> Result<ImageDataset> {
        if size == 0 || crop == 0 || crop > size {
            return Err(Error::usage(format!(
                "image folder: cannot center-crop {crop}x{crop} out of a {size}x{size} image"
            )));
        }
        let mut ds = ImageDataset::empty(self.name.clone(), 3, crop, crop, self.class_names.clone());
        ds.labels = indices.iter().map(|&i| self.files[i].1).collect();
        let Some(dir) = cache else {
            ds.pixels.reserve(indices.len() * ds.image_len());
            self.decode_chunks(indices, size, crop, progress, |img| {
                ds.pixels.extend_from_slice(img);
                Ok(())
            })?;
            ds.validate()?;
            return Ok(ds);
        };
        let key = self.cache_key(indices, size, crop)?;
        let path = dir.join(format!("{}-{}.u8", sanitize(&self.name), &key_hex(&key)[..20]));
        let shape = CacheShape {
            key,
            n: indices.len(),
            image_len: ds.image_len(),
        };
        ds.pixels = match cache::open(&path, &shape, &ds.labels) {
            Ok(Some(px)) => px,
            // Missing, or not this data (stale, truncated, corrupt): (re)built, never trusted.
            Ok(None) | Err(_) => {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                let mut writer = cache::Writer::create(&path, &shape)?;
                self.decode_chunks(indices, size, crop, progress, |img| writer.image(img))?;
                writer.finish(&ds.labels)?;
                cache::open(&path, &shape, &ds.labels)?
                    .ok_or_else(|| Error::input(&path, "cache file unreadable right after writing it"))?
            }
        };
        ds.validate()?;
        Ok(ds)
    }

    /// Decodes `indices` in parallel chunks of [`DECODE_CHUNK`], handing each image to `sink`
    /// in order.
    fn decode_chunks(
        &self,
        indices: &[usize],
        size: usize,
        crop: usize,
        progress: &mut dyn Progress,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        use rayon::prelude::*;
        progress.start(indices.len(), "decode");
        for chunk in indices.chunks(DECODE_CHUNK) {
            crate::interrupt::check()?;
            let images = chunk
                .par_iter()
                .map(|&i| {
                    let path = &self.files[i].0;
                    let (px, h, w) = decode_rgb(path)?;
                    let img = resize_and_crop(&px, 3, h, w, Some(size), size).map_err(|e| e.in_file(path))?;
                    if crop == size {
                        return Ok(img);
                    }
                    resize_and_crop(&img, 3, size, size, None, crop)
                })
                .collect::<Result<Vec<_>>>()?;
            for img in &images {
                sink(img)?;
            }
            progress.advance(chunk.len());
        }
        progress.finish();
        Ok(())
    }

    /// What a cache file stands for: the format, the sizes, and each kept file in order with its
    /// label, length and modification time (a file replaced or edited gets a new key).
    fn cache_key(&self, indices: &[usize], size: usize, crop: usize) -> Result<[u8; 32]> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(cache::MAGIC);
        h.update(format!(
            "size={size} crop={crop} rgb resampler={}\n",
            crate::data::transform::RESAMPLER
        ));
        for &i in indices {
            let (path, label) = &self.files[i];
            let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            h.update(abs.as_os_str().as_encoded_bytes());
            h.update(format!("\0{label} {} {mtime}\n", meta.len()));
        }
        Ok(h.finalize().into())
    }
}

fn key_hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file-name-safe version of a data set name.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Loads `root/<class>/<image>`, each image's shorter side resized to `size` and center-cropped
/// to `size x size`; the data set is named after `root`'s last component.
#[cfg(test)]
fn load_image_folder(root: &Path, size: usize) -> Result<ImageDataset> {
    let index = index_image_folder(root)?;
    index.decode(
        &(0..index.files.len()).collect::<Vec<_>>(),
        size,
        size,
        None,
        &mut crate::data::Silent,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Silent;

    fn save(path: &Path, w: u32, h: u32, v: u8) {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([v, x as u8, y as u8]));
        img.save(path).unwrap();
    }

    #[test]
    fn loads_sorted_classes_png_and_jpeg() {
        let tmp = crate::scratch::tempdir().unwrap();
        let root = tmp.path().join("pets");
        for c in ["dog", "cat"] {
            std::fs::create_dir_all(root.join(c)).unwrap();
        }
        save(&root.join("dog/b.png"), 5, 4, 10);
        save(&root.join("dog/a.PNG"), 5, 4, 20);
        save(&root.join("cat/x.jpg"), 5, 4, 200);
        std::fs::write(root.join("cat/notes.txt"), "ignored").unwrap();
        // Grey PNG is converted to RGB.
        image::GrayImage::from_pixel(5, 4, image::Luma([77]))
            .save(root.join("cat/y.png"))
            .unwrap();
        // The shorter side is already 4: the load size keeps the pixels and crops 5 to 4 columns.
        let ds = load_image_folder(&root, 4).unwrap();
        assert_eq!(ds.name, "pets");
        assert_eq!(ds.class_names, vec!["cat", "dog"]);
        assert_eq!(ds.labels, vec![0, 0, 1, 1]);
        assert_eq!((ds.channels, ds.height, ds.width), (3, 4, 4));
        // a.PNG sorts before b.png; PNG is lossless: R plane is constant, G is x, B is y.
        assert_eq!(ds.image(2)[0], 20);
        assert_eq!(ds.image(3)[0], 10);
        assert_eq!(ds.image(3)[16 + 3], 3);
        assert_eq!(ds.image(3)[32 + 4 * 2], 2);
        assert!(ds.image(1).iter().all(|&v| v == 77));
        // JPEG is lossy: only roughly 200.
        assert!(ds.image(0)[0].abs_diff(200) < 12);
    }

    #[test]
    fn mixed_sizes_are_resized() {
        let tmp = crate::scratch::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("a")).unwrap();
        save(&root.join("a/1.png"), 8, 6, 1);
        save(&root.join("a/2.png"), 7, 6, 1);
        let ds = load_image_folder(root, 4).unwrap();
        assert_eq!((ds.len(), ds.height, ds.width), (2, 4, 4));
    }

    #[test]
    fn bad_folders() {
        let tmp = crate::scratch::tempdir().unwrap();
        let root = tmp.path();
        let e = load_image_folder(root, 4).unwrap_err().to_string();
        assert!(e.contains("no class folders"), "{e}");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::create_dir_all(root.join("b")).unwrap();
        save(&root.join("a/1.png"), 4, 4, 1);
        let e = load_image_folder(root, 4).unwrap_err().to_string();
        assert!(e.contains("empty class folder") && e.contains('b'), "{e}");
        std::fs::write(root.join("b/broken.png"), b"\x89PNG not really").unwrap();
        let e = load_image_folder(root, 4).unwrap_err().to_string();
        assert!(e.contains("broken.png") && e.contains("cannot decode"), "{e}");
        let e = load_image_folder(&root.join("missing"), 4).unwrap_err();
        assert!(matches!(e, Error::Io { .. }));
    }

    /// Counts the images decoded.
    #[derive(Default)]
    struct Count(usize);

    impl Progress for Count {
        fn start(&mut self, _: usize, _: &str) {}
        fn advance(&mut self, n: usize) {
            self.0 += n;
        }
        fn finish(&mut self) {}
    }

    fn cache_files(dir: &Path) -> Vec<PathBuf> {
        list_dir(dir).unwrap_or_default()
    }

    /// The first load writes the cache, the second maps it without decoding; a changed image,
    /// a truncated or a corrupted cache file is decoded again, never read.
    #[test]
    fn cache_is_written_read_and_rebuilt() {
        let tmp = crate::scratch::tempdir().unwrap();
        let root = tmp.path().join("set");
        let cache = tmp.path().join("cache");
        for c in ["a", "b"] {
            std::fs::create_dir_all(root.join(c)).unwrap();
            for i in 0..3u8 {
                save(&root.join(c).join(format!("{i}.png")), 9, 7, 30 * i + c.len() as u8);
            }
        }
        let index = index_image_folder(&root).unwrap();
        let keep = [5, 0, 2, 3];
        let load = |index: &FolderIndex| {
            let mut n = Count::default();
            let ds = index.decode(&keep, 6, 4, Some(&cache), &mut n).unwrap();
            (ds, n.0)
        };
        let plain = index.decode(&keep, 6, 4, None, &mut Silent).unwrap();
        assert!(!plain.pixels.is_mapped());
        let (first, decoded) = load(&index);
        assert_eq!(decoded, 4);
        assert!(first.pixels.is_mapped());
        assert_eq!(first, plain);
        let files = cache_files(&cache);
        assert_eq!(files.len(), 1, "{files:?}");
        let (second, decoded) = load(&index);
        assert_eq!(decoded, 0);
        assert_eq!(second, plain);

        // A truncated file, then one with a flipped pixel: rebuilt, the same images again.
        let file = &files[0];
        let bytes = std::fs::read(file).unwrap();
        std::fs::write(file, &bytes[..bytes.len() - 5]).unwrap();
        let (again, decoded) = load(&index);
        assert_eq!((decoded, &again), (4, &plain));
        let mut flipped = std::fs::read(file).unwrap();
        assert_eq!(flipped, bytes);
        flipped[cache::MAGIC.len() + 32 + 16 + 10] ^= 1;
        std::fs::write(file, &flipped).unwrap();
        let (again, decoded) = load(&index);
        assert_eq!((decoded, &again), (4, &plain));
        assert_eq!(std::fs::read(file).unwrap(), bytes);

        // An image replaced: a new cache file, the new pixels.
        save(&root.join("a/0.png"), 9, 7, 250);
        let index = index_image_folder(&root).unwrap();
        let (changed, decoded) = load(&index);
        assert_eq!(decoded, 4);
        assert_ne!(changed, plain);
        assert!(changed.image(1).iter().take(16).all(|&v| v == 250));
        assert_eq!(cache_files(&cache).len(), 2);
    }

    /// A decoding error leaves no file in the cache folder, finished or not.
    #[test]
    fn failed_decoding_leaves_no_cache_file() {
        let tmp = crate::scratch::tempdir().unwrap();
        let root = tmp.path().join("set");
        let cache = tmp.path().join("cache");
        std::fs::create_dir_all(root.join("a")).unwrap();
        save(&root.join("a/1.png"), 4, 4, 1);
        std::fs::write(root.join("a/2.png"), b"not a png").unwrap();
        let index = index_image_folder(&root).unwrap();
        let e = index.decode(&[0, 1], 4, 4, Some(&cache), &mut Silent).unwrap_err();
        assert!(e.to_string().contains("2.png"), "{e}");
        assert!(cache_files(&cache).is_empty());
    }
}
