//! Grouped-query self-attention with HF `RoPE`, a per-layer KV cache and causal/padding/sliding
//! window masking.

use std::cell::Cell;

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, Tensor, TensorData};

use super::layers::Linear;
use super::rope::apply_rotary;

/// Which implementation of attention a forward pass uses on a LibTorch device (Flex and other
/// backends always take Burn's ops).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttentionPath {
    /// torch's `scaled_dot_product_attention` for every layout (causal, padding, KV cache,
    /// sliding window, packed segments), with torch's own backward under autodiff. The default.
    #[default]
    Fused,
    /// Burn's ops, as on every other backend: under autodiff, or with any mask, Burn composes
    /// attention from matmuls and a softmax and keeps the score matrices for backward.
    Composed,
}

thread_local! {
    static ATTENTION_PATH: Cell<AttentionPath> = const { Cell::new(AttentionPath::Fused) };
}

/// The attention path forward passes on this thread take (see [`with_attention_path`]).
pub fn attention_path() -> AttentionPath {
    ATTENTION_PATH.with(Cell::get)
}

/// Runs `f` with forward passes on this thread taking `path` (restored afterwards, also when `f`
/// panics); a way to compare the fused and composed paths on the same weights and inputs. The
/// choice is made in the forward pass: the backward of a fused forward is torch's whatever the
/// path when it runs.
pub fn with_attention_path<T>(path: AttentionPath, f: impl FnOnce() -> T) -> T {
    /// Puts the previous path back when dropped.
    struct Restore(AttentionPath);
    impl Drop for Restore {
        fn drop(&mut self) {
            ATTENTION_PATH.with(|cell| cell.set(self.0));
        }
    }
    let _restore = Restore(ATTENTION_PATH.with(|cell| cell.replace(path)));
    f()
}

/// Which keys each query may see, for one forward call.
#[derive(Debug, Clone)]
pub(crate) struct AttentionLayout {
    /// Per sequence, whether each key position (cached ones first, then the new ones) is a real
    /// token (`false` = padding).
    pub key_valid: Vec<Vec<bool>>,
    /// Number of cached positions before the new tokens.
    pub past_len: usize,
    /// Number of new tokens.
    pub new_len: usize,
    /// Per sequence, the segment of each key position when several examples are packed in one
    /// row: a query attends only to keys of its own segment. `None`: one segment per row.
    pub key_segments: Option<Vec<Vec<u32>>>,
}

impl AttentionLayout {
    /// True when plain causal attention over the new tokens is exact (no cache, no padding).
    pub(crate) fn is_plain_causal(&self, window: Option<usize>) -> bool {
        self.past_len == 0
            && self.key_valid.iter().all(|row| row.iter().all(|v| *v))
            && window.is_none_or(|w| self.new_len <= w)
            && self.key_segments.is_none()
    }

    /// Whether each query may attend to each key, `[batch, new, past + new]` row-major: causal,
    /// padding, sliding window and segments.
    pub(crate) fn allowed(&self, window: Option<usize>) -> Vec<bool> {
        let total = self.past_len + self.new_len;
        let mut allowed = Vec::with_capacity(self.key_valid.len() * self.new_len * total);
        for (b, row) in self.key_valid.iter().enumerate() {
            let segments = self.key_segments.as_ref().map(|s| &s[b]);
            for i in 0..self.new_len {
                let q = self.past_len + i;
                allowed.extend(row.iter().enumerate().map(|(k, valid)| {
                    *valid
                        && k <= q
                        && window.is_none_or(|w| q - k < w)
                        && segments.is_none_or(|s| s[k] == s[q])
                }));
            }
        }
        allowed
    }

    /// Additive bias `[batch, 1, new, past + new]`: 0 where attention is allowed, a large
    /// negative number elsewhere (causal, padding, sliding window).
    fn bias(
        &self,
        window: Option<usize>,
        dtype: DType,
        device: &burn::tensor::Device,
    ) -> Tensor<4> {
        let total = self.past_len + self.new_len;
        let batch = self.key_valid.len();
        let blocked = match dtype {
            DType::F16 => -65_504.0f32,
            _ => f32::MIN,
        };
        let data: Vec<f32> = self
            .allowed(window)
            .into_iter()
            .map(|allowed| if allowed { 0.0 } else { blocked })
            .collect();
        Tensor::<4>::from_data(
            TensorData::new(data, [batch, 1, self.new_len, total]),
            (device, dtype),
        )
    }
}

/// Cached keys and values of one layer, `[batch, kv_heads, len, head_dim]` each.
#[derive(Debug, Clone)]
pub(crate) struct LayerCache {
    /// Keys after `RoPE`.
    pub keys: Tensor<4>,
    /// Values.
    pub values: Tensor<4>,
}

/// Self-attention of one decoder layer.
#[derive(Module, Debug)]
pub struct Attention {
    /// `q_proj`.
    pub q_proj: Linear,
    /// `k_proj`.
    pub k_proj: Linear,
    /// `v_proj`.
    pub v_proj: Linear,
    /// `o_proj`.
    pub o_proj: Linear,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// Sliding window of this layer (0 = none).
    pub window: usize,
}

impl Attention {
    /// Attends `x` `[batch, new, hidden]`; `cache` holds the previous keys/values and is
    /// extended with the new ones when given.
    pub(crate) fn forward(
        &self,
        x: Tensor<3>,
        rope: &(Tensor<4>, Tensor<4>),
        layout: &AttentionLayout,
        cache: Option<&mut Option<LayerCache>>,
    ) -> Tensor<3> {
        let [batch, seq, _] = x.dims();
        let split = |t: Tensor<3>, heads: usize| {
            t.reshape([batch, seq, heads, self.head_dim])
                .swap_dims(1, 2)
        };
        let q = split(self.q_proj.forward(x.clone()), self.num_heads);
        let k = split(self.k_proj.forward(x.clone()), self.num_kv_heads);
        let v = split(self.v_proj.forward(x), self.num_kv_heads);
        let q = apply_rotary(q, &rope.0, &rope.1);
        let mut k = apply_rotary(k, &rope.0, &rope.1);
        let mut v = v;
        if let Some(slot) = cache {
            if let Some(prev) = slot.take() {
                k = Tensor::cat(vec![prev.keys, k], 2);
                v = Tensor::cat(vec![prev.values, v], 2);
            }
            *slot = Some(LayerCache {
                keys: k.clone(),
                values: v.clone(),
            });
        }
        let k = self.repeat_kv(k);
        let v = self.repeat_kv(v);
        let window = (self.window > 0).then_some(self.window);
        #[cfg(feature = "tch")]
        let out = (attention_path() == AttentionPath::Fused)
            .then(|| super::sdpa::attention(&q, &k, &v, layout, window))
            .flatten()
            .unwrap_or_else(|| self.composed(q, k, v, layout, window));
        #[cfg(not(feature = "tch"))]
        let out = self.composed(q, k, v, layout, window);
        let out = out
            .swap_dims(1, 2)
            .reshape([batch, seq, self.num_heads * self.head_dim]);
        self.o_proj.forward(out)
    }

    /// Attention from Burn's ops (every backend but LibTorch, and LibTorch under
    /// [`AttentionPath::Composed`]): the backend's fused kernel for plain causal attention, an
    /// additive bias otherwise, and an f32 softmax for half precision under autodiff.
    fn composed(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        layout: &AttentionLayout,
        window: Option<usize>,
    ) -> Tensor<4> {
        let [batch, _, seq, _] = q.dims();
        let dtype = q.dtype();
        let half = !matches!(dtype, DType::F32 | DType::F64);
        let total = layout.past_len + layout.new_len;
        if layout.is_plain_causal(window) && !(half && q.is_autodiff()) {
            // Backends run their fused kernel here (LibTorch: scaled_dot_product_attention).
            let options = AttentionModuleOptions {
                is_causal: true,
                ..Default::default()
            };
            attention(q, k, v, None, None, options)
        } else if !half {
            let bias =
                layout
                    .bias(window, dtype, &q.device())
                    .expand([batch, self.num_heads, seq, total]);
            attention(q, k, v, None, Some(bias), AttentionModuleOptions::default())
        } else {
            // Half precision without a fused kernel: softmax in f32 as transformers' eager
            // attention does, not in bf16 as Burn's generic composition would.
            let scale = (self.head_dim as f64).powf(-0.5);
            let scores = q
                .matmul(k.swap_dims(2, 3))
                .mul_scalar(scale)
                .cast(DType::F32);
            let bias = layout.bias(window, DType::F32, &scores.device()).expand([
                batch,
                self.num_heads,
                seq,
                total,
            ]);
            let probs = softmax(scores + bias, 3).cast(dtype);
            probs.matmul(v)
        }
    }

    /// Repeats each key/value head for its group of query heads.
    fn repeat_kv(&self, kv: Tensor<4>) -> Tensor<4> {
        let groups = self.num_heads / self.num_kv_heads;
        if groups == 1 {
            return kv;
        }
        let [b, h, t, d] = kv.dims();
        kv.unsqueeze_dim::<5>(2)
            .expand([b, h, groups, t, d])
            .reshape([b, h * groups, t, d])
    }
}
