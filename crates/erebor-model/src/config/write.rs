//! The config written back as a Hugging Face `config.json`.

use serde_json::{Map, Value, json};

use super::{Architecture, ModelConfig, RopeScaling};

impl ModelConfig {
    /// The config as transformers writes it (`dtype` is the weights' dtype name, e.g. `float32`).
    pub fn to_hf_json(&self, dtype: &str) -> Value {
        let mut m = Map::new();
        m.insert(
            "architectures".into(),
            json!([self.architecture.hf_class()]),
        );
        m.insert("model_type".into(), json!(self.architecture.model_type()));
        m.insert("vocab_size".into(), json!(self.vocab_size));
        m.insert("hidden_size".into(), json!(self.hidden_size));
        m.insert("intermediate_size".into(), json!(self.intermediate_size));
        m.insert("num_hidden_layers".into(), json!(self.num_layers));
        m.insert("num_attention_heads".into(), json!(self.num_heads));
        m.insert("num_key_value_heads".into(), json!(self.num_kv_heads));
        m.insert("head_dim".into(), json!(self.head_dim));
        m.insert(
            "max_position_embeddings".into(),
            json!(self.max_position_embeddings),
        );
        m.insert("rms_norm_eps".into(), json!(self.rms_norm_eps));
        m.insert("rope_theta".into(), json!(self.rope_theta));
        m.insert("rope_scaling".into(), rope_scaling_json(&self.rope_scaling));
        m.insert(
            "tie_word_embeddings".into(),
            json!(self.tie_word_embeddings),
        );
        m.insert("hidden_act".into(), json!("silu"));
        if self.architecture != Architecture::Qwen2 {
            m.insert("attention_bias".into(), json!(self.qkv_bias));
        }
        if self.architecture == Architecture::Llama {
            m.insert("mlp_bias".into(), json!(self.mlp_bias));
        }
        match self.architecture {
            Architecture::Mistral => {
                m.insert("sliding_window".into(), json!(self.sliding_window));
            }
            Architecture::Qwen2 => {
                m.insert(
                    "use_sliding_window".into(),
                    json!(self.sliding_window.is_some()),
                );
                m.insert("sliding_window".into(), json!(self.sliding_window));
                // transformers 5 reads `layer_types`; earlier versions `max_window_layers`
                // (exact when the sliding layers are the last ones, as Qwen2 has them).
                let sliding: Vec<bool> = (0..self.num_layers)
                    .map(|l| self.window_of_layer(l).is_some())
                    .collect();
                let first = sliding.iter().position(|s| *s).unwrap_or(self.num_layers);
                m.insert("max_window_layers".into(), json!(first));
                let types: Vec<&str> = sliding
                    .iter()
                    .map(|s| {
                        if *s {
                            "sliding_attention"
                        } else {
                            "full_attention"
                        }
                    })
                    .collect();
                m.insert("layer_types".into(), json!(types));
            }
            Architecture::Llama => {}
        }
        m.insert("bos_token_id".into(), json!(self.bos_token_id));
        m.insert(
            "eos_token_id".into(),
            match self.eos_token_ids.as_slice() {
                [] => Value::Null,
                [one] => json!(one),
                many => json!(many),
            },
        );
        m.insert("torch_dtype".into(), json!(dtype));
        Value::Object(m)
    }
}

fn rope_scaling_json(s: &RopeScaling) -> Value {
    match s {
        RopeScaling::None => Value::Null,
        RopeScaling::Linear { factor } => json!({"rope_type": "linear", "factor": factor}),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => json!({
            "rope_type": "llama3",
            "factor": factor,
            "low_freq_factor": low_freq_factor,
            "high_freq_factor": high_freq_factor,
            "original_max_position_embeddings": original_max_position_embeddings,
        }),
    }
}
