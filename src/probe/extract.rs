//! Feature extraction: one eval-mode forward pass over a dataset yields the probe features of every
//! probed layer (method §3.2), kept in host memory as row-major f32 matrices.

use burn::tensor::{Device, Tensor, TensorData};

use crate::data::ImageDataset;
use crate::data::transform::{Normalization, to_f32_batch};
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
    let n = ds.len();
    let mut layers: Vec<LayerFeatures> = Vec::new();
    let mut predictions = Vec::with_capacity(n);
    let mut buf = Vec::new();
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(batch.max(1)) {
        to_f32_batch(ds, chunk, norm, &mut buf)?;
        let x = Tensor::<4>::from_data(
            TensorData::new(buf.clone(), [chunk.len(), 3, ds.height, ds.width]),
            device,
        );
        let out = model.forward_features(x);
        if layers.is_empty() {
            layers = out
                .features
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
        for (layer, f) in layers.iter_mut().zip(out.features) {
            let v = crate::backend::floats(f)?;
            layer.data.extend_from_slice(&v);
        }
        let pred = crate::backend::ints(out.logits.argmax(1))?;
        predictions.extend(pred.into_iter().map(|p| p as u32));
    }
    Ok((layers, predictions))
}
