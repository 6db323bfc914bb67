//! The AdamW update on the default backend, in place: the parameter and its two moments are
//! overwritten where no other tensor shares their memory (else copied once), the gradient read
//! where it lies ([`tunnelbench_kernels::optim`]).

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, TensorMetadata, backend_extension};
use burn::tensor::{Tensor, TensorData};

pub use tunnelbench_kernels::optim::AdamW;

use super::{contiguous, values};

#[backend_extension(Flex)]
pub trait OptimKernels: Backend {
    /// One AdamW step of a parameter: (parameter, first moment, second moment) after it. At the
    /// first step the moments passed in are not read.
    fn tb_adamw(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamW,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

impl OptimKernels for Flex {
    fn tb_adamw(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        step: AdamW,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let grad = contiguous(grad);
        let [mut p, mut m, mut v] = [param, moment_1, moment_2].map(owned);
        let [ps, ms, vs] = [&mut p, &mut m, &mut v].map(|t| {
            let n = t.shape().num_elements();
            &mut t.try_storage_mut::<f32>().expect("an owned tensor")[..n]
        });
        step.step(ps, values(&grad), ms, vs);
        (p, m, v)
    }
}

/// `t` contiguous from the start of a buffer that no other tensor shares: itself where it is,
/// else a copy of its values.
fn owned(mut t: FlexTensor) -> FlexTensor {
    let in_place =
        t.layout().contiguous_offsets().is_some_and(|(start, _)| start == 0) && t.try_storage_mut::<f32>().is_some();
    if in_place {
        t
    } else {
        let shape = t.shape();
        FlexTensor::from_data(TensorData::new(values(&contiguous(t)).to_vec(), shape))
    }
}

/// [`OptimKernels::tb_adamw`] on tensors of the default backend (f32, not tracked).
pub fn adamw<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moment_1: Tensor<D>,
    moment_2: Tensor<D>,
    step: AdamW,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let (p, m, v) = <burn::backend::Dispatch as OptimKernels>::tb_adamw(
        param.into_dispatch(),
        grad.into_dispatch(),
        moment_1.into_dispatch(),
        moment_2.into_dispatch(),
        step,
    );
    (
        Tensor::from_dispatch(p),
        Tensor::from_dispatch(m),
        Tensor::from_dispatch(v),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn tensor(v: &[f32]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len() / 5, 5]), &Device::flex())
    }

    fn read(t: &Tensor<2>) -> Vec<f32> {
        t.to_data().try_into_vec::<f32>().unwrap()
    }

    /// The op gives the slice kernel's values, and a tensor that shares its memory with the
    /// parameter or a moment (a copy of the model, a view) keeps its values.
    #[test]
    fn updates_like_the_kernel_and_leaves_shared_tensors_alone() {
        let n = 40;
        let p0: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let g: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
        let m0: Vec<f32> = (0..n).map(|i| i as f32 * 1e-3).collect();
        let v0: Vec<f32> = (0..n).map(|i| i as f32 * 1e-4).collect();
        let step = AdamW {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            lr: 0.01,
            keep: Some(0.999),
            time: 3,
        };
        let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
        step.step(&mut p, &g, &mut m, &mut v);

        let (param, moment_1) = (tensor(&p0), tensor(&m0));
        let (param_copy, moment_view) = (param.clone(), moment_1.clone().reshape([n]));
        let (p1, m1, v1) = adamw(param, tensor(&g), moment_1, tensor(&v0), step);
        assert_eq!((read(&p1), read(&m1), read(&v1)), (p, m, v));
        assert_eq!(read(&param_copy), p0);
        assert_eq!(moment_view.to_data().try_into_vec::<f32>().unwrap(), m0);
    }
}
