//! Procedural image classes, so that every scenario can run with nothing downloaded.
//!
//! Each generator turns a seed into a class definition (an IFS, a closed spline, a noise
//! spectrum) and renders instances of it with nuisance variation (position, scale, rotation,
//! colour, background). Every image has its own random stream derived from
//! `(seed, generator, class, split, index)`, so the bytes do not depend on the order of
//! generation, on the number of classes, or on how many images of other classes are drawn.

pub mod fractal;
pub mod shapes;
pub mod texture;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{DataSplit, ImageDataset};
use crate::error::{Error, Result};

/// What to render: `n_classes` classes, each with `train_per_class` + `test_per_class` RGB
/// images of `height` x `width`.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSpec {
    pub n_classes: usize,
    pub train_per_class: usize,
    pub test_per_class: usize,
    pub height: usize,
    pub width: usize,
    pub seed: u64,
}

/// The procedural families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthKind {
    Fractal,
    Shapes,
    Texture,
}

impl SynthKind {
    pub fn name(self) -> &'static str {
        match self {
            SynthKind::Fractal => "fractal",
            SynthKind::Shapes => "shapes",
            SynthKind::Texture => "texture",
        }
    }

    /// Renders `spec.n_classes` classes of this kind: IFS fractals, spline shapes or textures.
    pub fn generate(self, spec: &SynthSpec) -> Result<DataSplit> {
        match self {
            SynthKind::Fractal => render_split(spec, self, fractal::sample_ifs, fractal::render),
            SynthKind::Shapes => render_split(spec, self, shapes::sample_shape, shapes::render),
            SynthKind::Texture => render_split(spec, self, texture::sample_class, texture::render),
        }
    }
}

/// Smallest side the generators accept: below it classes stop being recognisable shapes.
pub const MIN_SIDE: usize = 8;

impl SynthSpec {
    pub fn validate(&self) -> Result<()> {
        if self.n_classes == 0 {
            return Err(Error::usage("synthetic data needs at least one class"));
        }
        if self.train_per_class == 0 && self.test_per_class == 0 {
            return Err(Error::usage("synthetic data needs at least one image per class"));
        }
        if self.height < MIN_SIDE || self.width < MIN_SIDE {
            return Err(Error::usage(format!(
                "synthetic images must be at least {MIN_SIDE}x{MIN_SIDE}, got {}x{}",
                self.height, self.width
            )));
        }
        let total = self.n_classes * (self.train_per_class + self.test_per_class);
        if total.checked_mul(3 * self.height * self.width).is_none() || self.n_classes > u32::MAX as usize {
            return Err(Error::usage("synthetic data set too large"));
        }
        Ok(())
    }
}

/// Domain tags that keep the random streams of different uses apart.
pub(crate) const STREAM_CLASS: u64 = 1;
pub(crate) const STREAM_TRAIN: u64 = 2;
pub(crate) const STREAM_TEST: u64 = 3;

pub(crate) fn rng_for(parts: &[u64]) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(crate::seed::from_parts(parts))
}

/// Renders a whole split: `class_def` builds each class from its own stream and `render`
/// draws one instance into an `H*W*3` interleaved RGB f32 buffer in [0, 1] (`H`, `W` given).
fn render_split<C: Sync>(
    spec: &SynthSpec,
    kind: SynthKind,
    class_def: impl Fn(&mut ChaCha8Rng) -> C,
    render: impl Fn(&C, &mut ChaCha8Rng, &mut [f32], usize, usize),
) -> Result<DataSplit> {
    spec.validate()?;
    let tag = kind as u64 + 100;
    let classes: Vec<C> = (0..spec.n_classes)
        .map(|c| class_def(&mut rng_for(&[spec.seed, tag, STREAM_CLASS, c as u64])))
        .collect();
    let class_names: Vec<String> = (0..spec.n_classes).map(|c| format!("{}_{c:04}", kind.name())).collect();
    let (h, w) = (spec.height, spec.width);
    let mut rgb = vec![0f32; h * w * 3];
    let mut chw = vec![0u8; 3 * h * w];
    let mut make = |stream: u64, per_class: usize, part: &str| {
        let mut ds = ImageDataset::empty(format!("{}-{part}", kind.name()), 3, h, w, class_names.clone());
        ds.pixels.reserve(spec.n_classes * per_class * 3 * h * w);
        for (c, def) in classes.iter().enumerate() {
            for i in 0..per_class {
                let mut rng = rng_for(&[spec.seed, tag, stream, c as u64, i as u64]);
                rgb.iter_mut().for_each(|v| *v = 0.0);
                render(def, &mut rng, &mut rgb, h, w);
                interleaved_to_chw(&rgb, h, w, &mut chw);
                ds.push(&chw, c as u32);
            }
        }
        ds
    };
    let train = make(STREAM_TRAIN, spec.train_per_class, "train");
    let test = make(STREAM_TEST, spec.test_per_class, "test");
    Ok(DataSplit { train, test })
}

fn interleaved_to_chw(rgb: &[f32], h: usize, w: usize, out: &mut [u8]) {
    let plane = h * w;
    for p in 0..plane {
        for ch in 0..3 {
            out[ch * plane + p] = (rgb[p * 3 + ch].clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
        }
    }
}

/// A colour from hue/saturation/value, all in [0, 1].
pub(crate) fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h6 = (h.rem_euclid(1.0)) * 6.0;
    let i = h6.floor() as i32;
    let f = h6 - i as f32;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match i {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

pub(crate) fn luminance(c: [f32; 3]) -> f32 {
    0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
}

/// A random foreground/background pair whose luminances differ by at least 0.35, so the
/// object is never invisible against its background.
pub(crate) fn contrasting_colours(rng: &mut ChaCha8Rng) -> ([f32; 3], [f32; 3]) {
    loop {
        let fg = hsv(rng.random(), rng.random_range(0.3..1.0), rng.random_range(0.2..1.0));
        let bg = hsv(rng.random(), rng.random_range(0.0..0.7), rng.random_range(0.0..1.0));
        if (luminance(fg) - luminance(bg)).abs() >= 0.35 {
            return (fg, bg);
        }
    }
}

/// Fills the interleaved RGB buffer with a vertical linear gradient between two close colours,
/// a mild background nuisance.
pub(crate) fn fill_background(rgb: &mut [f32], h: usize, w: usize, top: [f32; 3], rng: &mut ChaCha8Rng) {
    let d: [f32; 3] = [
        rng.random_range(-0.1..0.1),
        rng.random_range(-0.1..0.1),
        rng.random_range(-0.1..0.1),
    ];
    for y in 0..h {
        let t = if h > 1 { y as f32 / (h - 1) as f32 } else { 0.0 };
        for x in 0..w {
            let p = (y * w + x) * 3;
            for c in 0..3 {
                rgb[p + c] = (top[c] + d[c] * t).clamp(0.0, 1.0);
            }
        }
    }
}

/// Blends `fg` over the RGB buffer with per-pixel alpha given by a supersampled coverage mask
/// (`s*h` x `s*w` booleans as u8 0/1), averaging each `s x s` block: the anti-aliasing step.
pub(crate) fn composite_coverage(rgb: &mut [f32], h: usize, w: usize, s: usize, mask: &[u8], fg: [f32; 3]) {
    let sw = s * w;
    let inv = 1.0 / (s * s) as f32;
    for y in 0..h {
        for x in 0..w {
            let mut cov = 0u32;
            for dy in 0..s {
                let row = (y * s + dy) * sw + x * s;
                for dx in 0..s {
                    cov += mask[row + dx] as u32;
                }
            }
            if cov > 0 {
                let a = cov as f32 * inv;
                let p = (y * w + x) * 3;
                for c in 0..3 {
                    rgb[p + c] = rgb[p + c] * (1.0 - a) + fg[c] * a;
                }
            }
        }
    }
}

#[cfg(test)]
mod testutil {
    use super::*;

    /// Per-image foreground map: |grey − median grey|, scaled to [0, 1]. Object colour and
    /// polarity are random nuisances, so raw RGB means of a class wash out; this undoes only
    /// that, leaving position, scale and rotation variation in place.
    pub fn foreground_map(ds: &ImageDataset) -> ImageDataset {
        let plane = ds.height * ds.width;
        let mut out = ImageDataset::empty("fg", 1, ds.height, ds.width, ds.class_names.clone());
        for i in 0..ds.len() {
            let img = ds.image(i);
            let grey: Vec<f32> = (0..plane)
                .map(|p| (0..ds.channels).map(|c| img[c * plane + p] as f32).sum::<f32>())
                .collect();
            let mut sorted = grey.clone();
            sorted.sort_by(|a, b| a.total_cmp(b));
            let med = sorted[plane / 2];
            let dev: Vec<f32> = grey.iter().map(|g| (g - med).abs()).collect();
            let max = dev.iter().cloned().fold(1e-6, f32::max);
            let bytes: Vec<u8> = dev.iter().map(|d| (d / max * 255.0) as u8).collect();
            out.push(&bytes, ds.labels[i]);
        }
        out
    }

    /// Accuracy of a nearest-class-mean classifier on raw pixels (trained on `train`, scored on
    /// `test`): a cheap check that classes differ in ways a learner can pick up.
    pub fn ncm_accuracy(split: &DataSplit) -> f64 {
        let k = split.train.n_classes();
        let n = split.train.image_len();
        let mut means = vec![0f64; k * n];
        let counts = split.train.class_counts();
        for i in 0..split.train.len() {
            let c = split.train.labels[i] as usize;
            for (m, &p) in means[c * n..(c + 1) * n].iter_mut().zip(split.train.image(i)) {
                *m += p as f64 / counts[c] as f64;
            }
        }
        let mut correct = 0;
        for i in 0..split.test.len() {
            let img = split.test.image(i);
            let best = (0..k)
                .map(|c| {
                    let d: f64 = means[c * n..(c + 1) * n]
                        .iter()
                        .zip(img)
                        .map(|(m, &p)| (m - p as f64).powi(2))
                        .sum();
                    (d, c)
                })
                .fold((f64::INFINITY, 0), |a, b| if b.0 < a.0 { b } else { a })
                .1;
            correct += (best == split.test.labels[i] as usize) as usize;
        }
        correct as f64 / split.test.len() as f64
    }

    /// The checks every generator must pass: determinism, seed sensitivity, arbitrary class
    /// counts and sizes, and distinguishable classes.
    pub fn check_generator(kind: SynthKind, min_ncm: f64, foreground: bool) {
        let spec = SynthSpec {
            n_classes: 37,
            train_per_class: 2,
            test_per_class: 1,
            height: 20,
            width: 20,
            seed: 7,
        };
        let generate = |spec: SynthSpec| kind.generate(&spec).unwrap();
        let a = generate(spec.clone());
        let b = generate(spec.clone());
        assert_eq!(a, b, "same seed must give the same bytes");
        a.validate().unwrap();
        assert_eq!(a.train.len(), 74);
        assert_eq!(a.test.len(), 37);
        assert_eq!((a.train.height, a.train.width, a.train.channels), (20, 20, 3));
        assert_eq!(a.train.n_classes(), 37);
        let c = generate(SynthSpec {
            seed: 8,
            ..spec.clone()
        });
        assert_ne!(
            a.train.pixels, c.train.pixels,
            "different seed must give different bytes"
        );
        // Images of one class differ from each other, and train differs from test.
        assert_ne!(a.train.image(0), a.train.image(1));
        assert_ne!(a.train.image(0), a.test.image(0));
        // Adding classes or images does not change the existing ones.
        let more = generate(SynthSpec {
            n_classes: 40,
            train_per_class: 3,
            ..spec.clone()
        });
        assert_eq!(more.train.image(3), a.train.image(2));
        assert_eq!(more.test.image(5), a.test.image(5));

        let big = generate(SynthSpec {
            n_classes: 3,
            train_per_class: 1,
            test_per_class: 1,
            height: 64,
            width: 48,
            seed: 1,
        });
        big.validate().unwrap();
        assert_eq!((big.train.height, big.train.width), (64, 48));
        // Not a blank canvas: the images have real contrast.
        let img = big.train.image(0);
        let (lo, hi) = img.iter().fold((255u8, 0u8), |(l, h), &p| (l.min(p), h.max(p)));
        assert!(hi - lo > 60, "{}: image contrast {lo}..{hi}", kind.name());

        let split = generate(SynthSpec {
            n_classes: 10,
            train_per_class: 30,
            test_per_class: 20,
            height: 16,
            width: 16,
            seed: 3,
        });
        let acc = if foreground {
            ncm_accuracy(&DataSplit {
                train: foreground_map(&split.train),
                test: foreground_map(&split.test),
            })
        } else {
            ncm_accuracy(&split)
        };
        assert!(
            acc >= min_ncm,
            "{}: nearest-class-mean accuracy {acc} < {min_ncm}",
            kind.name()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractal_generator_contract() {
        testutil::check_generator(SynthKind::Fractal, 0.3, true);
    }

    #[test]
    fn shapes_generator_contract() {
        testutil::check_generator(SynthKind::Shapes, 0.3, true);
    }

    #[test]
    fn texture_generator_contract() {
        testutil::check_generator(SynthKind::Texture, 0.5, false);
    }

    #[test]
    fn spec_validation() {
        let ok = SynthSpec {
            n_classes: 2,
            train_per_class: 1,
            test_per_class: 0,
            height: 8,
            width: 8,
            seed: 0,
        };
        ok.validate().unwrap();
        assert!(
            SynthSpec {
                n_classes: 0,
                ..ok.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            SynthSpec {
                height: 7,
                ..ok.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            SynthSpec {
                train_per_class: 0,
                ..ok.clone()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn hsv_primaries() {
        assert_eq!(hsv(0.0, 1.0, 1.0), [1.0, 0.0, 0.0]);
        let g = hsv(1.0 / 3.0, 1.0, 1.0);
        assert!(g[1] == 1.0 && g[0] < 1e-6 && g[2] < 1e-6);
    }
}
