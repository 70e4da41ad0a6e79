//! Building blocks with Hugging Face numerics: a linear layer (with an optional LoRA adapter),
//! `RMSNorm` computed in f32 like `LlamaRMSNorm`, and the `SwiGLU` MLP.

use burn::module::{Module, Param};
use burn::nn::Dropout;
use burn::tensor::activation::silu;
use burn::tensor::module::linear;
use burn::tensor::{DType, Tensor};

/// A LoRA adapter on a linear layer: `y += scale · dropout(x) · A · B`, with `scale = alpha / r`.
/// `A` is `[in, r]`, `B` is `[r, out]` (PEFT stores their transposes).
#[derive(Module, Debug)]
pub struct LoraAdapter {
    /// Down projection, `[in, r]` (PEFT `lora_A.weight` transposed).
    pub a: Param<Tensor<2>>,
    /// Up projection, `[r, out]` (PEFT `lora_B.weight` transposed).
    pub b: Param<Tensor<2>>,
    /// `alpha / r`.
    pub scale: f64,
    /// Dropout on the adapter's input.
    pub dropout: Dropout,
}

impl LoraAdapter {
    /// The adapter's contribution for input `x`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let x = self.dropout.forward(x);
        let h = linear(x, self.a.val(), None);
        linear(h, self.b.val(), None).mul_scalar(self.scale)
    }

    /// `scale · A · B`, `[in, out]`: what merging adds to the base weight.
    pub fn delta(&self) -> Tensor<2> {
        self.a.val().matmul(self.b.val()).mul_scalar(self.scale)
    }
}

/// A linear layer storing its weight as `[in, out]` (Burn's layout; HF's `[out, in]` transposed).
#[derive(Module, Debug)]
pub struct Linear {
    /// `[in, out]`.
    pub weight: Param<Tensor<2>>,
    /// `[out]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// Optional LoRA adapter.
    pub lora: Option<LoraAdapter>,
}

impl Linear {
    /// A layer from an `[in, out]` weight and optional bias.
    pub fn new(weight: Tensor<2>, bias: Option<Tensor<1>>) -> Self {
        Linear {
            weight: Param::from_tensor(weight),
            bias: bias.map(Param::from_tensor),
            lora: None,
        }
    }

    /// `x · W + b (+ LoRA)`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let out = linear(
            x.clone(),
            self.weight.val(),
            self.bias.as_ref().map(Param::val),
        );
        match &self.lora {
            Some(adapter) => out + adapter.forward(x),
            None => out,
        }
    }

    /// Input width.
    pub fn d_in(&self) -> usize {
        self.weight.shape().dims::<2>()[0]
    }

    /// Output width.
    pub fn d_out(&self) -> usize {
        self.weight.shape().dims::<2>()[1]
    }
}

/// `RMSNorm` as `LlamaRMSNorm`: normalise in f32, cast back, then scale by the weight.
#[derive(Module, Debug)]
pub struct RmsNorm {
    /// `[hidden]`.
    pub weight: Param<Tensor<1>>,
    /// Epsilon added to the mean square.
    pub eps: f64,
}

impl RmsNorm {
    /// A norm with the given weight.
    pub fn new(weight: Tensor<1>, eps: f64) -> Self {
        RmsNorm {
            weight: Param::from_tensor(weight),
            eps,
        }
    }

    /// Normalises the last dimension.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dtype = x.dtype();
        let x32 = if dtype == DType::F32 {
            x
        } else {
            x.cast(DType::F32)
        };
        let variance = x32.clone().square().mean_dim(D - 1);
        let normed = x32 * (variance + self.eps).sqrt().recip();
        let normed = if dtype == DType::F32 {
            normed
        } else {
            normed.cast(dtype)
        };
        normed * self.weight.val().unsqueeze()
    }
}

/// The `SwiGLU` MLP: `down(silu(gate(x)) * up(x))`.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `gate_proj`.
    pub gate_proj: Linear,
    /// `up_proj`.
    pub up_proj: Linear,
    /// `down_proj`.
    pub down_proj: Linear,
}

impl Mlp {
    /// Applies the MLP.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let gate = silu(self.gate_proj.forward(x.clone()));
        self.down_proj.forward(gate * self.up_proj.forward(x))
    }
}
