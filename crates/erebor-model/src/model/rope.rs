//! Rotary position embedding as Hugging Face computes it (`rotate_half`, the two halves of each
//! head rotated together), with `linear` and `llama3` frequency scaling.

use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::config::{ModelConfig, RopeScaling};

/// Inverse frequencies of the rotary embedding, computed once from the config.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rope {
    inv_freq: Vec<f32>,
    head_dim: usize,
}

impl Rope {
    /// `inv_freq[i] = 1 / theta^(2i/d)` (in f32, as transformers computes it), then scaled.
    // transformers computes the frequencies in f32: the config's f64 values are rounded to f32
    // on purpose.
    #[allow(clippy::cast_possible_truncation)]
    pub(crate) fn new(config: &ModelConfig) -> Self {
        let d = config.head_dim;
        let theta = config.rope_theta as f32;
        let base: Vec<f32> = (0..d / 2)
            .map(|i| 1.0 / theta.powf((2 * i) as f32 / d as f32))
            .collect();
        let inv_freq = match config.rope_scaling {
            RopeScaling::None => base,
            RopeScaling::Linear { factor } => base.iter().map(|f| f / factor as f32).collect(),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                let (factor, low, high) = (
                    factor as f32,
                    low_freq_factor as f32,
                    high_freq_factor as f32,
                );
                let old_len = original_max_position_embeddings as f32;
                let low_freq_wavelen = old_len / low;
                let high_freq_wavelen = old_len / high;
                base.iter()
                    .map(|&f| {
                        let wavelen = 2.0 * std::f32::consts::PI / f;
                        let scaled = if wavelen > low_freq_wavelen {
                            f / factor
                        } else {
                            f
                        };
                        let medium = wavelen >= high_freq_wavelen && wavelen <= low_freq_wavelen;
                        if medium {
                            let smooth = (old_len / wavelen - low) / (high - low);
                            (1.0 - smooth) * scaled / factor + smooth * scaled
                        } else {
                            scaled
                        }
                    })
                    .collect()
            }
        };
        Rope {
            inv_freq,
            head_dim: d,
        }
    }

    /// `cos` and `sin` tables `[batch, 1, seq, head_dim]` for the given positions (one row of
    /// positions per sequence), in `dtype`.
    pub(crate) fn tables(
        &self,
        positions: &[Vec<usize>],
        dtype: DType,
        device: &Device,
    ) -> (Tensor<4>, Tensor<4>) {
        let batch = positions.len();
        let seq = positions.first().map_or(0, Vec::len);
        let half = self.head_dim / 2;
        let mut cos = Vec::with_capacity(batch * seq * self.head_dim);
        let mut sin = Vec::with_capacity(batch * seq * self.head_dim);
        for row in positions {
            debug_assert_eq!(row.len(), seq, "ragged position rows");
            for &p in row {
                let angles: Vec<f32> = self.inv_freq.iter().map(|f| p as f32 * f).collect();
                for _ in 0..2 {
                    cos.extend(angles.iter().map(|a| a.cos()));
                    sin.extend(angles.iter().map(|a| a.sin()));
                }
            }
        }
        debug_assert_eq!(cos.len(), batch * seq * half * 2);
        let shape = [batch, 1, seq, self.head_dim];
        let cos = Tensor::<4>::from_data(TensorData::new(cos, shape), (device, dtype));
        let sin = Tensor::<4>::from_data(TensorData::new(sin, shape), (device, dtype));
        (cos, sin)
    }
}

/// `x * cos + rotate_half(x) * sin` for `x` of shape `[batch, heads, seq, head_dim]`.
pub(crate) fn apply_rotary(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let d = x.dims()[3];
    let x1 = x.clone().narrow(3, 0, d / 2);
    let x2 = x.clone().narrow(3, d / 2, d / 2);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone() + rotated * sin.clone()
}
