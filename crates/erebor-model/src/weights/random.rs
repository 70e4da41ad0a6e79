//! Seeded random initialisation as transformers does it for Llama-family models.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::tensor::TensorData;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::ModelConfig;
use crate::error::Result;
use crate::model::{WeightSource, hf_tensor_names};

/// Tensors drawn from `normal(0, std)` (weights), zeros (biases) and ones (norms), from one
/// `ChaCha8` stream seeded with `seed`, in the order of [`hf_tensor_names`]: the same seed gives
/// the same model on every device and platform.
pub(crate) struct RandomSource {
    rng: ChaCha8Rng,
    std: f64,
    names: BTreeSet<String>,
    origin: PathBuf,
}

impl RandomSource {
    /// A source for `config` with the given seed and standard deviation
    /// (transformers' `initializer_range`, 0.02 by default).
    pub(crate) fn new(config: &ModelConfig, seed: u64, std: f64) -> Self {
        RandomSource {
            rng: ChaCha8Rng::seed_from_u64(seed),
            std,
            names: hf_tensor_names(config)
                .into_iter()
                .map(|(n, _)| n)
                .collect(),
            origin: PathBuf::from(format!("<random init, seed {seed}>")),
        }
    }

    /// One standard normal sample (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = self.rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

impl WeightSource for RandomSource {
    // Tensor names, not file names, end in `.bias`; the samples are drawn in f64 and rounded to
    // f32 on purpose.
    #[allow(
        clippy::case_sensitive_file_extension_comparisons,
        clippy::cast_possible_truncation
    )]
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<TensorData> {
        self.names.remove(name);
        let n: usize = shape.iter().product();
        let values: Vec<f32> = if name.ends_with("norm.weight") {
            vec![1.0; n]
        } else if name.ends_with(".bias") {
            vec![0.0; n]
        } else {
            (0..n).map(|_| (self.normal() * self.std) as f32).collect()
        };
        Ok(TensorData::new(values, shape.to_vec()))
    }

    fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    fn remaining(&self) -> Vec<String> {
        self.names.iter().cloned().collect()
    }

    fn origin(&self) -> &Path {
        &self.origin
    }
}
