//! `AdamW` with `PyTorch`'s semantics, and clipping by the global gradient norm.
//!
//! burn-optim has an `AdamW`, but its state is keyed by parameter ids that are not stable across a
//! reload and its clipping is per tensor; training here needs state that survives a checkpoint and
//! `PyTorch`'s `clip_grad_norm_` over all parameters. The update is `PyTorch`'s `_single_tensor_adamw`
//! step for step:
//!
//! ```text
//! p   ← p · (1 − lr·wd)                     decoupled weight decay, on the old weights
//! m   ← β1·m + (1 − β1)·g
//! v   ← β2·v + (1 − β2)·g²
//! p   ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
//! ```
//!
//! with `t` counted per parameter. Rank-1 parameters (norm weights, biases) get no weight decay,
//! which is the set transformers' `Trainer` exempts for Llama-family models.
//!
//! On LibTorch (the `tch` feature) the update is torch's in-place ops on the tensors burn-tch holds,
//! as `PyTorch` runs it; elsewhere it is Burn tensor ops ([`AdamWUpdate`]). The state is the same
//! either way: flat moments per parameter, in the parameter's dtype, keyed by module path.

use crate::TrainError;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use update::{UpdateScalars, Updated};

#[path = "optim_update.rs"]
mod update;

pub use update::AdamWUpdate;

/// `AdamW` hyper-parameters (the learning rate comes from the schedule at each step).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the denominator, after the square root (`PyTorch`'s placement).
    pub eps: f64,
    /// Decoupled weight decay, multiplied by the learning rate.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    /// transformers' `TrainingArguments` defaults: β = (0.9, 0.999), ε = 1e-8, no weight decay.
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// The optimizer state of one parameter, flattened.
#[derive(Clone, Debug)]
pub(crate) struct MomentState {
    /// Steps this parameter has taken.
    pub step: u64,
    /// First moment, `[numel]`.
    pub exp_avg: Tensor<1>,
    /// Second moment, `[numel]`.
    pub exp_avg_sq: Tensor<1>,
}

/// `AdamW` over the float parameters of a burn module, its state keyed by module path.
#[derive(Clone, Debug)]
pub struct AdamW {
    config: AdamWConfig,
    states: BTreeMap<String, MomentState>,
    update: AdamWUpdate,
}

impl AdamW {
    /// A fresh optimizer.
    pub fn new(config: AdamWConfig) -> Self {
        Self {
            config,
            states: BTreeMap::new(),
            update: AdamWUpdate::default(),
        }
    }

    /// The same optimizer with another implementation of the update (the arithmetic is the
    /// same; [`AdamWUpdate::Composed`] is the reference the in-place one is tested against).
    #[must_use]
    pub fn with_update(mut self, update: AdamWUpdate) -> Self {
        self.update = update;
        self
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// Per-parameter state, by module path (`layers.0.attention.q_proj.weight`).
    pub(crate) fn states(&self) -> &BTreeMap<String, MomentState> {
        &self.states
    }

    /// Replaces the state (when resuming from a checkpoint).
    pub(crate) fn set_states(&mut self, states: BTreeMap<String, MomentState>) {
        self.states = states;
    }

    /// Updates every parameter that has a gradient in `grads`; the others are left as they are.
    pub fn step<M: Module>(&mut self, module: M, grads: &mut GradientsParams, lr: f64) -> M {
        let mut mapper = AdamWMapper {
            config: self.config,
            states: &mut self.states,
            grads,
            lr,
            update: self.update,
            path: Vec::new(),
        };
        module.map(&mut mapper)
    }
}

struct AdamWMapper<'a> {
    config: AdamWConfig,
    states: &'a mut BTreeMap<String, MomentState>,
    grads: &'a mut GradientsParams,
    lr: f64,
    update: AdamWUpdate,
    path: Vec<String>,
}

impl ModuleMapper for AdamWMapper<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(grad) = self.grads.remove::<D>(param.id) else {
            return param;
        };
        let key = self.path.join(".");
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let checkpointing = tensor.gradient_checkpointing_strategy();
        let shape = tensor.shape();
        let numel = shape.num_elements();
        let weights = tensor.inner().reshape([numel]);
        let grad = grad.inner().reshape([numel]);
        let c = self.config;
        let state = self.states.remove(&key);
        let step = state.as_ref().map_or(1, |state| state.step + 1);
        let scalars = UpdateScalars {
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            lr: self.lr,
            decay: if D > 1 { c.weight_decay } else { 0.0 },
            step,
        };
        let moments = state.map(|state| (state.exp_avg, state.exp_avg_sq));
        let Updated {
            weights: updated,
            exp_avg,
            exp_avg_sq,
        } = update::update(weights, grad, moments, &scalars, self.update);
        self.states.insert(
            key,
            MomentState {
                step,
                exp_avg,
                exp_avg_sq,
            },
        );
        let mut updated = Tensor::from_inner(updated.reshape(shape));
        if let Some(strategy) = checkpointing {
            updated = updated.with_gradient_checkpointing_strategy(strategy);
        }
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

/// The global L2 norm of the gradients of `module`'s parameters, before any clipping.
pub(crate) fn global_grad_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    let mut visitor = SquaredNorm { grads, total: None };
    module.visit(&mut visitor);
    match visitor.total {
        Some(total) => f64::from(total.sqrt().into_scalar::<f32>()),
        None => 0.0,
    }
}

/// Scales all gradients so that their global norm is at most `max_norm`, as `PyTorch`'s
/// `clip_grad_norm_` does (coefficient `max_norm / (norm + 1e-6)`, capped at 1). Returns the
/// norm before clipping.
pub(crate) fn clip_grad_norm<M: Module>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    let norm = global_grad_norm(module, grads);
    let coefficient = max_norm / (norm + 1e-6);
    if coefficient < 1.0 {
        let mut visitor = Scale {
            grads,
            factor: coefficient,
        };
        module.visit(&mut visitor);
    }
    norm
}

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let squares = grad.square().sum();
            self.total = Some(match self.total.take() {
                Some(total) => total + squares,
                None => squares,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            self.grads
                .register::<D>(param.id, grad.mul_scalar(self.factor));
        }
    }
}

/// A moment state read back to the host, for checkpoints.
#[derive(Clone, Debug)]
pub(crate) struct HostMomentState {
    /// Steps this parameter has taken.
    pub step: u64,
    /// First moment values.
    pub exp_avg: Vec<f32>,
    /// Second moment values.
    pub exp_avg_sq: Vec<f32>,
}

impl MomentState {
    /// Copies the state to the host as f32.
    pub(crate) fn to_host(&self, key: &str) -> Result<HostMomentState, TrainError> {
        let read = |t: &Tensor<1>, name: &str| {
            t.to_data()
                .try_into_vec_as::<f32>()
                .map_err(|error| TrainError::TensorRead {
                    what: format!("optimizer state {key}.{name}"),
                    message: format!("{error:?}"),
                })
        };
        Ok(HostMomentState {
            step: self.step,
            exp_avg: read(&self.exp_avg, "exp_avg")?,
            exp_avg_sq: read(&self.exp_avg_sq, "exp_avg_sq")?,
        })
    }

    /// Puts a host state on `device` in `dtype`, its parameter's: the moments of a pure-bf16
    /// run are bf16, as the optimizer makes them from bf16 gradients, so a resumed run updates
    /// its parameters exactly as an uninterrupted one (and keeps them bf16).
    pub(crate) fn from_host(
        host: HostMomentState,
        device: &burn::tensor::Device,
        dtype: burn::tensor::DType,
    ) -> Self {
        let put = |values: Vec<f32>| {
            let len = values.len();
            let tensor = Tensor::<1>::from_data(TensorData::new(values, [len]), device);
            if tensor.dtype() == dtype {
                tensor
            } else {
                tensor.cast(dtype)
            }
        };
        Self {
            step: host.step,
            exp_avg: put(host.exp_avg),
            exp_avg_sq: put(host.exp_avg_sq),
        }
    }
}

#[cfg(test)]
#[path = "optim_tests.rs"]
mod tests;
