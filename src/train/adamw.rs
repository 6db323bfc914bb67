//! AdamW with burn's arithmetic, in one multi-threaded pass per parameter on the default backend.
//!
//! burn's `AdamW` updates a parameter with a dozen whole-tensor ops, each a pass over memory on
//! one thread; on ResNet-18 at 32² that was a fifth of a training step. This optimizer computes
//! the same f32 operations in the same order, element by element, over chunks on all threads, in
//! place ([`crate::kernel::optim`]), and keeps burn's state (`AdamWState`), so that the two are
//! interchangeable. Off the `flex` device, for other dtypes and for AMSGrad states it hands the
//! step to burn's `AdamW`.

use burn::optim::{AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer};
use burn::tensor::{DType, Device, Tensor};

use crate::kernel::optim::{AdamW as Step, adamw};

#[derive(Clone)]
pub struct FusedAdamW {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    burn: AdamW,
}

impl FusedAdamW {
    /// burn's `AdamWConfig::new().with_epsilon(epsilon).with_weight_decay(weight_decay).init()`
    /// (betas 0.9 and 0.999, no AMSGrad, no gradient clipping).
    pub fn init(epsilon: f32, weight_decay: f32) -> ModuleOptimizer {
        ModuleOptimizer::from(FusedAdamW {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon,
            weight_decay,
            burn: AdamWConfig::new()
                .with_epsilon(epsilon)
                .with_weight_decay(weight_decay)
                .build(),
        })
    }
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let device = tensor.device();
        let fused = tensor.dtype() == DType::F32
            && grad.dtype() == DType::F32
            && device.clone().inner() == Device::flex()
            && state.as_ref().is_none_or(|s| {
                s.momentum.max_moment_2.is_none()
                    && s.momentum.moment_1.dtype() == DType::F32
                    && s.momentum.moment_2.dtype() == DType::F32
            });
        if !fused {
            return self.burn.step(lr, tensor, grad, state);
        }
        let (time, m, v) = match state {
            Some(s) => (s.momentum.time + 1, s.momentum.moment_1, s.momentum.moment_2),
            // Not read at the first step.
            None => (1, tensor.zeros_like(), tensor.zeros_like()),
        };
        let decay = lr * self.weight_decay as f64;
        let step = Step {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            lr: lr as f32,
            keep: (decay != 0.0).then_some((1.0 - decay) as f32),
            time,
        };
        let (tensor, m, v) = adamw(tensor, grad, m, v, step);
        (tensor, Some(AdamWState::new(AdaptiveMomentumState::new(time, m, v))))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <AdamW as Optimizer>::to_device(state, device)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::Distribution;

    use crate::model::{ArchSpec, Backbone};

    /// Ten steps of a small ResNet (convs, batch norms, a linear head; tensors of 1 to 4 dims,
    /// several larger than a chunk) with this optimizer and with burn's, each step from the same
    /// weights (burn's) and so the same gradients, each optimizer with its own moments: every
    /// updated weight within 1e-6 of burn's, relatively.
    #[test]
    fn updates_equal_burns_adamw() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let spec = ArchSpec::named("resnet-18").with_width(0.5);
        let mut burns = Backbone::new(&spec, 10, 32, &device).unwrap();
        let mut ours = burns.clone();
        let mut burn_optim = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.05).init();
        let mut our_optim = FusedAdamW::init(1e-8, 0.05);
        for step in 0..10 {
            let x = Tensor::<4>::random([4, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
            // The same weights and input (the forward pass is deterministic): the same gradients.
            let grads =
                |m: &Backbone| GradientsParams::from_grads(m.forward(x.clone()).powi_scalar(2).mean().backward(), m);
            let lr = 1e-3 * (step + 1) as f64;
            ours = our_optim.step(lr, ours.clone(), grads(&ours));
            burns = burn_optim.step(lr, burns.clone(), grads(&burns));
            let (a, b) = (flat(&ours), flat(&burns));
            assert_eq!(a.len(), b.len());
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-6 * y.abs().max(1e-3),
                    "step {step}, weight {i}: {x} against burn's {y}"
                );
            }
            ours = burns.clone();
        }
    }

    /// Every float parameter's values, in the module's order.
    pub(in crate::train) fn flat(model: &Backbone) -> Vec<f32> {
        struct All(Vec<f32>);
        impl ModuleVisitor for All {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0.extend(param.val().into_data().try_into_vec::<f32>().unwrap());
            }
        }
        let mut all = All(Vec::new());
        model.visit(&mut all);
        all.0
    }
}
