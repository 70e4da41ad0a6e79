//! One parameter's `AdamW` update, in two implementations of the same arithmetic:
//!
//! - [`composed`]: Burn tensor ops, on every backend (Flex, and the reference the other is tested
//!   against). Each op makes a new tensor unless the backend reuses a uniquely owned buffer.
//! - `libtorch` (the `tch` feature): on a LibTorch tensor, torch's in-place ops in the order of
//!   `PyTorch`'s `_single_tensor_adamw` (`mul_`, `lerp_`, `sqrt`, `addcdiv_`): eight passes over
//!   the parameter's elements and one temporary, the weights and moments updated where they lie.
//!   A buffer another tensor still shares (a clone of the model kept by the caller) is copied
//!   first, so no other holder ever sees it change.

use burn::tensor::Tensor;

/// Which implementation [`AdamW`](super::AdamW) runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AdamWUpdate {
    /// In-place torch ops on LibTorch tensors (with the `tch` feature), [`Composed`](Self::Composed)
    /// on every other backend.
    #[default]
    Fastest,
    /// Burn tensor ops on every backend: the reference the in-place update is tested against.
    Composed,
}

/// The scalars of one parameter's update.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UpdateScalars {
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the denominator after the square root.
    pub eps: f64,
    /// This step's learning rate.
    pub lr: f64,
    /// This parameter's weight decay (0 for rank-1 parameters).
    pub decay: f64,
    /// The parameter's step count, this step included (1 on its first).
    pub step: u64,
}

impl UpdateScalars {
    /// `lr / (1 − β1^t)` and `√(1 − β2^t)`.
    fn corrections(&self) -> (f64, f64) {
        // β < 1, so β^step is 0 in f64 long before i32::MAX steps: saturating is exact.
        let power = i32::try_from(self.step).unwrap_or(i32::MAX);
        let bias_correction1 = 1.0 - self.beta1.powi(power);
        let bias_correction2_sqrt = (1.0 - self.beta2.powi(power)).sqrt();
        (self.lr / bias_correction1, bias_correction2_sqrt)
    }
}

/// A parameter's weights and moments after an update, all `[numel]`.
pub(crate) struct Updated {
    /// The new weights.
    pub weights: Tensor<1>,
    /// The new first moment.
    pub exp_avg: Tensor<1>,
    /// The new second moment.
    pub exp_avg_sq: Tensor<1>,
}

/// Updates one parameter: `weights`, `grad` and the moments (`None` on its first step, as zeros)
/// are flat, of the parameter's dtype.
// burn 0.22 marks burn-tch deprecated in favour of CubeCL; erebor keeps LibTorch on purpose
// (erebor-model's device.rs says why).
#[cfg_attr(feature = "tch", allow(deprecated))]
pub(crate) fn update(
    weights: Tensor<1>,
    grad: Tensor<1>,
    moments: Option<(Tensor<1>, Tensor<1>)>,
    scalars: &UpdateScalars,
    kind: AdamWUpdate,
) -> Updated {
    #[cfg(feature = "tch")]
    if kind == AdamWUpdate::Fastest {
        // The clone shares the buffer only until `weights` is dropped, so a tensor nothing else
        // holds is still updated in place.
        if let Ok(primitive) = weights
            .clone()
            .try_into_primitive::<burn::backend::LibTorch>()
        {
            drop(weights);
            return libtorch::update(primitive, grad, moments, scalars);
        }
    }
    #[cfg(not(feature = "tch"))]
    let _ = kind;
    composed(weights, grad, moments, scalars)
}

/// The update in Burn tensor ops (the arithmetic of `_single_tensor_adamw`).
pub(crate) fn composed(
    weights: Tensor<1>,
    grad: Tensor<1>,
    moments: Option<(Tensor<1>, Tensor<1>)>,
    s: &UpdateScalars,
) -> Updated {
    let (exp_avg, exp_avg_sq) = match moments {
        Some((exp_avg, exp_avg_sq)) => (
            exp_avg.mul_scalar(s.beta1) + grad.clone().mul_scalar(1.0 - s.beta1),
            exp_avg_sq.mul_scalar(s.beta2) + grad.square().mul_scalar(1.0 - s.beta2),
        ),
        None => (
            grad.clone().mul_scalar(1.0 - s.beta1),
            grad.square().mul_scalar(1.0 - s.beta2),
        ),
    };
    let weights = if s.decay == 0.0 {
        weights
    } else {
        weights.mul_scalar(1.0 - s.lr * s.decay)
    };
    let (step_size, bias_correction2_sqrt) = s.corrections();
    let denom = exp_avg_sq
        .clone()
        .sqrt()
        .div_scalar(bias_correction2_sqrt)
        .add_scalar(s.eps);
    let weights = weights - exp_avg.clone().div(denom).mul_scalar(step_size);
    Updated {
        weights,
        exp_avg,
        exp_avg_sq,
    }
}

// burn-tch is deprecated in burn 0.22; erebor keeps LibTorch on purpose (erebor-model's device.rs).
#[cfg(feature = "tch")]
#[allow(deprecated)]
mod libtorch {
    use super::{UpdateScalars, Updated};
    use burn::backend::LibTorch;
    use burn::backend::tensor::FloatTensor;
    use burn::tensor::Tensor;

    /// burn-tch's float tensor: the `tch::Tensor` and the shared-buffer count burn-tch keeps.
    type TchTensor = FloatTensor<LibTorch>;

    /// The LibTorch primitive of `tensor`, which lives where its parameter does.
    fn primitive(tensor: Tensor<1>, what: &str) -> TchTensor {
        tensor
            .try_into_primitive::<LibTorch>()
            .unwrap_or_else(|error| {
                panic!("the {what} of a LibTorch parameter is not a LibTorch tensor: {error:?}")
            })
    }

    /// `tensor` itself when nothing else shares its buffer, else a copy of it.
    fn writable(tensor: TchTensor) -> TchTensor {
        if tensor.can_mut() {
            tensor
        } else {
            TchTensor::new(tensor.tensor.copy())
        }
    }

    /// The update in place, as `_single_tensor_adamw` does it:
    ///
    /// ```text
    /// p.mul_(1 − lr·wd)                        (no-op without decay)
    /// m.lerp_(g, 1 − β1)
    /// v.lerp_(g², 1 − β2)                      torch: v.mul_(β2).addcmul_(g, g, 1 − β2)
    /// d = √v · (−1 / (step_size·√bc2)) − ε / step_size
    /// p.addcdiv_(m, d)                         torch: p.addcdiv_(m, √v/√bc2 + ε, −step_size)
    /// ```
    ///
    /// tch binds `addcmul_`/`addcdiv_` without their `value`, so the scale goes into `g²`'s
    /// interpolation weight and into the denominator: the same quantities, rounded in another
    /// order (a few ulp).
    pub(super) fn update(
        weights: TchTensor,
        grad: Tensor<1>,
        moments: Option<(Tensor<1>, Tensor<1>)>,
        s: &UpdateScalars,
    ) -> Updated {
        let grad = primitive(grad, "gradient");
        let mut weights = writable(weights);
        let (mut exp_avg, mut exp_avg_sq) = match moments {
            Some((exp_avg, exp_avg_sq)) => (
                writable(primitive(exp_avg, "first moment")),
                writable(primitive(exp_avg_sq, "second moment")),
            ),
            None => (
                TchTensor::new(weights.tensor.zeros_like()),
                TchTensor::new(weights.tensor.zeros_like()),
            ),
        };
        if s.decay != 0.0 {
            let _ = weights.tensor.g_mul_scalar_(1.0 - s.lr * s.decay);
        }
        let _ = exp_avg.tensor.lerp_(&grad.tensor, 1.0 - s.beta1);
        let scratch = grad.tensor.square();
        let _ = exp_avg_sq.tensor.lerp_(&scratch, 1.0 - s.beta2);
        let (step_size, bias_correction2_sqrt) = s.corrections();
        // A zero learning rate (the last step of a decay to 0) leaves the weights as they are;
        // the folded denominator below would divide by it.
        if step_size != 0.0 {
            let mut denom = exp_avg_sq.tensor.sqrt_out(&scratch);
            let _ = denom.g_mul_scalar_(-1.0 / (step_size * bias_correction2_sqrt));
            let _ = denom.g_add_scalar_(-s.eps / step_size);
            let _ = weights.tensor.addcdiv_(&exp_avg.tensor, &denom);
        }
        let wrap = Tensor::<1>::from_primitive::<LibTorch>;
        Updated {
            weights: wrap(weights),
            exp_avg: wrap(exp_avg),
            exp_avg_sq: wrap(exp_avg_sq),
        }
    }
}
