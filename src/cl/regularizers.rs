//! EWC (Kirkpatrick et al. 2017, diagonal empirical Fisher) and LwF distillation (Li & Hoiem 2016).

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::input_batch;
use crate::data::ImageDataset;
use crate::data::transform::Normalization;
use crate::error::Result;
use crate::model::Backbone;

/// Images used to estimate the Fisher information.
const FISHER_SAMPLES: usize = 512;
const FISHER_BATCH: usize = 64;

/// Every float parameter of a module, flattened, by id.
struct Flatten {
    out: HashMap<ParamId, Tensor<1>>,
}

impl ModuleVisitor for Flatten {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let n = t.shape().num_elements();
        self.out.insert(param.id, t.reshape([n]));
    }
}

/// Squared gradients accumulated per parameter.
struct SquaredGrads<'a> {
    grads: &'a GradientsParams,
    acc: &'a mut HashMap<ParamId, Tensor<1>>,
}

impl ModuleVisitor for SquaredGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let n = g.shape().num_elements();
            let sq = g.reshape([n]).square();
            let entry = self.acc.remove(&param.id);
            self.acc.insert(
                param.id,
                match entry {
                    Some(prev) => prev + sq,
                    None => sq,
                },
            );
        }
    }
}

fn flatten(model: &Backbone) -> HashMap<ParamId, Tensor<1>> {
    let mut v = Flatten { out: HashMap::new() };
    model.visit(&mut v);
    v.out
}

/// Anchored parameters with their Fisher weights.
pub struct Ewc {
    terms: Vec<(ParamId, Tensor<1>, Tensor<1>)>,
    lambda: f64,
}

impl Ewc {
    /// Estimate the diagonal Fisher of `model` (on the autodiff device) on a task's data.
    pub fn estimate(
        model: &Backbone,
        ds: &ImageDataset,
        norm: &Normalization,
        class_groups: Option<&[usize]>,
        ad: &Device,
    ) -> Result<Ewc> {
        let n = ds.len().min(FISHER_SAMPLES);
        let idx: Vec<usize> = (0..ds.len()).step_by((ds.len() / n.max(1)).max(1)).take(n).collect();
        let mut acc = HashMap::new();
        let mut batches = 0usize;
        // Parameters are read in eval mode so that BatchNorm statistics stay as trained.
        let frozen_bn = model.clone();
        for chunk in idx.chunks(FISHER_BATCH) {
            if chunk.len() < 2 {
                continue;
            }
            let x = input_batch(ds, chunk, norm, ad)?;
            let mut logits = frozen_bn.forward(x);
            if let Some(groups) = class_groups {
                logits = logits + crate::train::group_mask(groups, ds, chunk, ad);
            }
            let classes = logits.dims()[1];
            let labels = crate::train::batch_labels(ds, chunk);
            let targets = crate::train::soft_targets(&labels, classes, 0.0, class_groups, ad);
            let loss = crate::kernel::rows::cross_entropy(logits, targets);
            let grads = GradientsParams::from_grads(loss.backward(), &frozen_bn);
            frozen_bn.visit(&mut SquaredGrads {
                grads: &grads,
                acc: &mut acc,
            });
            batches += 1;
        }
        let anchors = flatten(model);
        let scale = 1.0 / batches.max(1) as f64;
        let terms = acc
            .into_iter()
            .filter_map(|(id, f)| {
                anchors
                    .get(&id)
                    .map(|a| (id, f.mul_scalar(scale).to_device(ad), a.clone().detach()))
            })
            .collect();
        Ok(Ewc { terms, lambda: 0.0 })
    }

    pub fn with_lambda(mut self, lambda: f64) -> Self {
        self.lambda = lambda;
        self
    }

    /// Online EWC: Fisher information adds up over tasks, anchors move to the latest task.
    pub fn merge(self, newer: Ewc, lambda: f64) -> Ewc {
        let mut old: HashMap<ParamId, Tensor<1>> = self.terms.into_iter().map(|(id, f, _)| (id, f)).collect();
        let terms = newer
            .terms
            .into_iter()
            .map(|(id, f, a)| {
                let f = match old.remove(&id) {
                    Some(prev) => prev + f,
                    None => f,
                };
                (id, f, a)
            })
            .collect();
        Ewc { terms, lambda }
    }

    /// λ/2 · Σ F (θ − θ*)².
    pub fn penalty(&self, model: &Backbone) -> Tensor<1> {
        let current = flatten(model);
        let mut total: Option<Tensor<1>> = None;
        for (id, f, anchor) in &self.terms {
            if let Some(theta) = current.get(id) {
                let d = theta.clone() - anchor.clone();
                let term = crate::kernel::rows::dot(f.clone() * d.clone(), d);
                total = Some(match total {
                    Some(t) => t + term,
                    None => term,
                });
            }
        }
        match total {
            Some(t) => t.mul_scalar(self.lambda / 2.0),
            None => Tensor::zeros([1], &current.values().next().map(|t| t.device()).unwrap_or_default()),
        }
    }
}

/// LwF: T² · KL-style distillation of the previous model's softened outputs on the old classes.
pub fn distillation(
    prev: &Backbone,
    x: &Tensor<4>,
    logits: &Tensor<2>,
    old_classes: &[i64],
    temperature: f64,
    ad: &Device,
) -> Tensor<1> {
    if old_classes.is_empty() {
        return Tensor::zeros([1], ad);
    }
    let idx = Tensor::<1, Int>::from_data(TensorData::new(old_classes.to_vec(), [old_classes.len()]), ad);
    let old = prev
        .forward(x.clone().detach())
        .detach()
        .select(1, idx.clone())
        .div_scalar(temperature);
    let new = logits.clone().select(1, idx).div_scalar(temperature);
    // −mean Σ softmax(old)·log softmax(new), the previous outputs as soft targets.
    crate::kernel::rows::cross_entropy(new, crate::kernel::rows::softmax(old)).mul_scalar(temperature * temperature)
}
