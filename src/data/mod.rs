//! In-memory image datasets.
//!
//! Images are kept as u8 `[N, C, H, W]` (channel-major within each image) so that a data set of
//! tens of thousands of images stays small, resizing happens once per resolution, and
//! normalisation to f32 happens only when a batch is built (see [`transform`]).

pub mod fetch;
pub mod formats;
pub mod pixels;
pub mod split;
pub mod synth;
pub mod transform;

use crate::error::{Error, Result};
pub use pixels::Pixels;

/// Progress of a long step over a data set (decoding, feature extraction), reported by the
/// caller's display.
pub trait Progress {
    /// A step of `total` units begins.
    fn start(&mut self, total: usize, label: &str);
    /// `n` more units are done.
    fn advance(&mut self, n: usize);
    fn finish(&mut self);
}

/// No progress display.
pub struct Silent;

impl Progress for Silent {
    fn start(&mut self, _: usize, _: &str) {}
    fn advance(&mut self, _: usize) {}
    fn finish(&mut self) {}
}

/// A labelled set of equally sized images.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDataset {
    pub name: String,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// `N * C * H * W` bytes, channel-major per image, in memory or mapped from a cache file.
    pub pixels: Pixels,
    pub labels: Vec<u32>,
    /// One name per class id; its length defines the number of classes, so a subset keeps the
    /// ids (and names) of the full data set.
    pub class_names: Vec<String>,
}

/// The train and test parts of one data set.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSplit {
    pub train: ImageDataset,
    pub test: ImageDataset,
}

impl ImageDataset {
    /// An empty data set with the given geometry and classes.
    pub fn empty(
        name: impl Into<String>,
        channels: usize,
        height: usize,
        width: usize,
        class_names: Vec<String>,
    ) -> Self {
        ImageDataset {
            name: name.into(),
            channels,
            height,
            width,
            pixels: Pixels::default(),
            labels: Vec::new(),
            class_names,
        }
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The `C * H * W` bytes of image `i`. Panics when `i >= len()`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Appends one image; the caller guarantees `pixels.len() == image_len()`.
    pub fn push(&mut self, pixels: &[u8], label: u32) {
        debug_assert_eq!(pixels.len(), self.image_len());
        self.pixels.extend_from_slice(pixels);
        self.labels.push(label);
    }

    /// Checks the invariants every consumer relies on, so that a corrupt data set is reported
    /// once, by name, instead of surfacing as an index panic deep inside training.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::input(&self.name, msg));
        if self.channels == 0 || self.height == 0 || self.width == 0 {
            return bad(format!(
                "image shape {}x{}x{} has a zero dimension",
                self.channels, self.height, self.width
            ));
        }
        let expected = self.labels.len().checked_mul(self.image_len());
        if expected != Some(self.pixels.len()) {
            return bad(format!(
                "{} pixel bytes for {} images of {}x{}x{}",
                self.pixels.len(),
                self.labels.len(),
                self.channels,
                self.height,
                self.width
            ));
        }
        if self.class_names.is_empty() {
            return bad("no classes".into());
        }
        let k = self.class_names.len();
        if let Some((i, l)) = self.labels.iter().enumerate().find(|(_, l)| **l as usize >= k) {
            return bad(format!("image {i} has label {l} but there are only {k} classes"));
        }
        Ok(())
    }

    /// The images at `indices`, in that order (repeats allowed), with the original class ids.
    pub fn subset(&self, indices: &[usize]) -> Result<ImageDataset> {
        let mut out = ImageDataset::empty(
            self.name.clone(),
            self.channels,
            self.height,
            self.width,
            self.class_names.clone(),
        );
        out.pixels.reserve(indices.len() * self.image_len());
        for &i in indices {
            if i >= self.len() {
                return Err(Error::usage(format!(
                    "{}: index {i} out of range for {} images",
                    self.name,
                    self.len()
                )));
            }
            out.push(self.image(i), self.labels[i]);
        }
        Ok(out)
    }

    /// Appends `other` after `self`. Both must have the same image shape and class names, as
    /// labels are only comparable under the same class list.
    /// The data set with three channels: a grey image's plane repeated (a colour one unchanged).
    pub fn rgb(mut self) -> ImageDataset {
        if self.channels == 1 {
            let plane = self.height * self.width;
            self.pixels = Pixels::from(
                self.pixels
                    .chunks_exact(plane)
                    .flat_map(|p| p.repeat(3))
                    .collect::<Vec<u8>>(),
            );
            self.channels = 3;
        }
        self
    }

    pub fn concat(&self, other: &ImageDataset) -> Result<ImageDataset> {
        if (self.channels, self.height, self.width) != (other.channels, other.height, other.width) {
            return Err(Error::usage(format!(
                "cannot concatenate {} ({}x{}x{}) and {} ({}x{}x{}): image shapes differ",
                self.name,
                self.channels,
                self.height,
                self.width,
                other.name,
                other.channels,
                other.height,
                other.width
            )));
        }
        if self.class_names != other.class_names {
            return Err(Error::usage(format!(
                "cannot concatenate {} and {}: class lists differ",
                self.name, other.name
            )));
        }
        let mut out = self.clone();
        out.pixels.extend_from_slice(&other.pixels);
        out.labels.extend_from_slice(&other.labels);
        Ok(out)
    }

    /// Number of images of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.n_classes()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// Indices of the images of each class, in data set order.
    pub fn indices_by_class(&self) -> Vec<Vec<usize>> {
        let mut by = vec![Vec::new(); self.n_classes()];
        for (i, &l) in self.labels.iter().enumerate() {
            if let Some(v) = by.get_mut(l as usize) {
                v.push(i);
            }
        }
        by
    }
}

impl DataSplit {
    pub fn validate(&self) -> Result<()> {
        self.train.validate()?;
        self.test.validate()?;
        if self.train.class_names != self.test.class_names {
            return Err(Error::input(
                &self.test.name,
                "train and test parts have different class lists",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ImageDataset {
        let mut d = ImageDataset::empty("tiny", 1, 2, 2, vec!["a".into(), "b".into()]);
        d.push(&[0, 1, 2, 3], 0);
        d.push(&[4, 5, 6, 7], 1);
        d.push(&[8, 9, 10, 11], 1);
        d
    }

    #[test]
    fn accessors_and_subset() {
        let d = tiny();
        assert_eq!(d.len(), 3);
        assert_eq!(d.n_classes(), 2);
        assert_eq!(d.image(1), &[4, 5, 6, 7]);
        d.validate().unwrap();
        let s = d.subset(&[2, 0]).unwrap();
        assert_eq!(s.labels, vec![1, 0]);
        assert_eq!(s.image(0), &[8, 9, 10, 11]);
        assert_eq!(s.n_classes(), 2);
        assert!(d.subset(&[3]).is_err());
        assert_eq!(d.class_counts(), vec![1, 2]);
        assert_eq!(d.indices_by_class(), vec![vec![0], vec![1, 2]]);
    }

    #[test]
    fn concat_checks_shapes_and_classes() {
        let d = tiny();
        let c = d.concat(&d).unwrap();
        assert_eq!(c.len(), 6);
        assert_eq!(c.image(4), d.image(1));
        let mut other = d.clone();
        other.width = 1;
        other.height = 4;
        assert!(d.concat(&other).is_err());
        let mut other = d.clone();
        other.class_names[0] = "z".into();
        assert!(d.concat(&other).is_err());
    }

    #[test]
    fn validate_catches_corruption() {
        let mut d = tiny();
        d.labels[0] = 2;
        assert!(d.validate().unwrap_err().to_string().contains("label 2"));
        let mut d = tiny();
        d.pixels.to_mut().pop();
        assert!(d.validate().is_err());
        let mut d = tiny();
        d.class_names.clear();
        assert!(d.validate().is_err());
    }
}
