//! Feature extraction: eval-mode forward passes over a dataset yield the probe features of the
//! probed layers (method §3.2), kept in host memory as row-major f32 matrices.
//!
//! The features of every layer of a large data set need not fit in memory: [`layer_groups`]
//! splits the layers into groups whose features fit a budget, and [`extract_layers`] keeps one
//! group per pass. Each pass runs the same batches through the same network, so a layer's
//! features do not depend on the grouping.

use std::ops::Range;

use burn::tensor::{Device, Tensor, TensorData};

use crate::data::transform::{Normalization, to_f32_batch};
use crate::data::{ImageDataset, Progress, Silent};
use crate::error::Result;
use crate::model::Backbone;

/// The features of one probed layer for every image of a dataset.
pub struct LayerFeatures {
    pub dim: usize,
    /// Row-major `[n_images, dim]`.
    pub data: Vec<f32>,
}

/// Run `model` (a non-autodiff model on a plain device) over `ds` (already prepared at the model's
/// resolution) and collect every probed layer's features, plus the logits' predictions.
pub fn extract_features(
    model: &Backbone,
    ds: &ImageDataset,
    norm: &Normalization,
    batch: usize,
    device: &Device,
) -> Result<(Vec<LayerFeatures>, Vec<u32>)> {
    extract_layers(model, ds, norm, batch, device, 0..usize::MAX, &mut Silent)
}

/// [`extract_features`] keeping only the probed layers in `keep` (0-based, clamped to the
/// model's layers), reporting each batch's images to `progress`.
pub fn extract_layers(
    model: &Backbone,
    ds: &ImageDataset,
    norm: &Normalization,
    batch: usize,
    device: &Device,
    keep: Range<usize>,
    progress: &mut dyn Progress,
) -> Result<(Vec<LayerFeatures>, Vec<u32>)> {
    let n = ds.len();
    let mut layers: Vec<LayerFeatures> = Vec::new();
    let mut predictions = Vec::with_capacity(n);
    let mut buf = Vec::new();
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(batch.max(1)) {
        crate::interrupt::check()?;
        to_f32_batch(ds, chunk, norm, &mut buf)?;
        let x = Tensor::<4>::from_data(
            TensorData::new(buf.clone(), [chunk.len(), 3, ds.height, ds.width]),
            device,
        );
        let out = model.forward_features(x);
        let total = out.features.len();
        let keep = keep.start.min(total)..keep.end.min(total);
        let kept: Vec<_> = out.features.into_iter().skip(keep.start).take(keep.len()).collect();
        if layers.is_empty() {
            layers = kept
                .iter()
                .map(|f| {
                    let dim = f.dims()[1];
                    LayerFeatures {
                        dim,
                        data: Vec::with_capacity(n * dim),
                    }
                })
                .collect();
        }
        for (layer, f) in layers.iter_mut().zip(kept) {
            let v = crate::backend::floats(f)?;
            layer.data.extend_from_slice(&v);
        }
        let pred = crate::backend::ints(out.logits.argmax(1))?;
        predictions.extend(pred.into_iter().map(|p| p as u32));
        progress.advance(chunk.len());
        // A mapped data set is read once per pass: its pages need not stay resident.
        let image = ds.channels * ds.height * ds.width;
        ds.pixels.release(chunk[0] * image..(chunk[0] + chunk.len()) * image);
    }
    Ok((layers, predictions))
}

/// The feature width of every probed layer, from one forward pass of one image of `ds`.
pub fn feature_dims(model: &Backbone, ds: &ImageDataset, norm: &Normalization, device: &Device) -> Result<Vec<usize>> {
    let sample = ds.subset(&[0])?;
    let (layers, _) = extract_features(model, &sample, norm, 1, device)?;
    Ok(layers.iter().map(|l| l.dim).collect())
}

/// Consecutive groups of layers whose features for `n_images` images (f32) take at most
/// `budget_bytes` each; a layer larger than the budget alone is a group of its own. One group
/// (a single pass) when everything fits.
pub fn layer_groups(dims: &[usize], n_images: usize, budget_bytes: u64) -> Vec<Range<usize>> {
    let bytes = |dim: usize| (dim as u64).saturating_mul(n_images as u64).saturating_mul(4);
    let mut groups = Vec::new();
    let (mut start, mut held) = (0, 0u64);
    for (i, &d) in dims.iter().enumerate() {
        if i > start && held.saturating_add(bytes(d)) > budget_bytes {
            groups.push(start..i);
            (start, held) = (i, 0);
        }
        held = held.saturating_add(bytes(d));
    }
    if start < dims.len() {
        groups.push(start..dims.len());
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_fit_the_budget() {
        // 10 images: 40 bytes per feature.
        assert_eq!(layer_groups(&[1, 2, 3], 10, 1000), vec![0..3]);
        assert_eq!(layer_groups(&[1, 2, 3], 10, 120), vec![0..2, 2..3]);
        assert_eq!(layer_groups(&[5, 1, 1], 10, 40), vec![0..1, 1..2, 2..3]);
        assert_eq!(layer_groups(&[5, 1, 1], 10, 80), vec![0..1, 1..3]);
        assert!(layer_groups(&[], 10, 80).is_empty());
    }

    /// Extracting the layers group by group gives exactly the features (and predictions) of one
    /// pass over all layers.
    #[test]
    fn grouped_extraction_is_one_pass() {
        use crate::data::synth::{SynthKind, SynthSpec};
        use crate::model::ArchSpec;
        use burn::module::Module;
        let device = Device::flex();
        let model = Backbone::new(&ArchSpec::named("resnet-18"), 4, 32, &device)
            .unwrap()
            .valid();
        let ds = SynthKind::Shapes
            .generate(&SynthSpec {
                n_classes: 4,
                train_per_class: 3,
                test_per_class: 1,
                height: 32,
                width: 32,
                seed: 5,
            })
            .unwrap()
            .train;
        let norm = Normalization::IMAGENET;
        let (all, pred) = extract_features(&model, &ds, &norm, 5, &device).unwrap();
        let dims = feature_dims(&model, &ds, &norm, &device).unwrap();
        assert_eq!(dims, all.iter().map(|l| l.dim).collect::<Vec<_>>());
        let budget = 4 * ds.len() as u64 * 300;
        let groups = layer_groups(&dims, ds.len(), budget);
        assert!(groups.len() > 2, "{groups:?}");
        let mut grouped = Vec::new();
        for g in groups {
            let (f, p) = extract_layers(&model, &ds, &norm, 5, &device, g, &mut Silent).unwrap();
            assert_eq!(p, pred);
            grouped.extend(f);
        }
        assert_eq!(grouped.len(), all.len());
        for (g, a) in grouped.iter().zip(&all) {
            assert_eq!(g.dim, a.dim);
            assert!(g.data.iter().zip(&a.data).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
        // Another extraction batch: the same features too.
        let (other, other_pred) = extract_features(&model, &ds, &norm, 2, &device).unwrap();
        assert_eq!(other_pred, pred);
        for (o, a) in other.iter().zip(&all) {
            assert!(o.data.iter().zip(&a.data).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }
}
