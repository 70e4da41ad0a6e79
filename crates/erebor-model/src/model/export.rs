//! Reading the model's parameters back out under their Hugging Face names and layouts.

use burn::tensor::{Tensor, TensorData};

use super::CausalLm;
use super::layers::Linear;
use crate::error::Result;

/// `[in, out]` → HF `[out, in]`, as CPU data.
fn linear_weight(l: &Linear) -> TensorData {
    l.weight.val().transpose().into_data()
}

fn data<const D: usize>(t: Tensor<D>) -> TensorData {
    t.into_data()
}

impl CausalLm {
    /// Calls `f(name, data)` for every tensor of the HF checkpoint, in
    /// [`super::hf_tensor_names`] order, with HF layouts (`[out, in]` linear weights). LoRA
    /// adapters are not included (see [`crate::lora`] to save or merge them).
    pub(crate) fn export_hf(
        &self,
        f: &mut dyn FnMut(String, TensorData) -> Result<()>,
    ) -> Result<()> {
        f(
            "model.embed_tokens.weight".into(),
            data(self.embed_tokens.val()),
        )?;
        for (l, layer) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{l}");
            f(
                format!("{p}.input_layernorm.weight"),
                data(layer.input_layernorm.weight.val()),
            )?;
            let a = &layer.self_attn;
            for (name, lin) in [
                ("q_proj", &a.q_proj),
                ("k_proj", &a.k_proj),
                ("v_proj", &a.v_proj),
            ] {
                f(format!("{p}.self_attn.{name}.weight"), linear_weight(lin))?;
                if let Some(b) = &lin.bias {
                    f(format!("{p}.self_attn.{name}.bias"), data(b.val()))?;
                }
            }
            f(
                format!("{p}.self_attn.o_proj.weight"),
                linear_weight(&a.o_proj),
            )?;
            if let Some(b) = &a.o_proj.bias {
                f(format!("{p}.self_attn.o_proj.bias"), data(b.val()))?;
            }
            f(
                format!("{p}.post_attention_layernorm.weight"),
                data(layer.post_attention_layernorm.weight.val()),
            )?;
            let m = &layer.mlp;
            for (name, lin) in [
                ("gate_proj", &m.gate_proj),
                ("up_proj", &m.up_proj),
                ("down_proj", &m.down_proj),
            ] {
                f(format!("{p}.mlp.{name}.weight"), linear_weight(lin))?;
                if let Some(b) = &lin.bias {
                    f(format!("{p}.mlp.{name}.bias"), data(b.val()))?;
                }
            }
        }
        f("model.norm.weight".into(), data(self.norm.weight.val()))?;
        if let Some(head) = &self.lm_head {
            f("lm_head.weight".into(), linear_weight(head))?;
        }
        Ok(())
    }

    /// The linear layers by their HF module path (`model.layers.0.self_attn.q_proj`, ...,
    /// `lm_head`), for LoRA targeting.
    pub fn linear_layers(&self) -> Vec<(String, &Linear)> {
        let mut out = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{l}");
            let a = &layer.self_attn;
            for (name, lin) in [
                ("q_proj", &a.q_proj),
                ("k_proj", &a.k_proj),
                ("v_proj", &a.v_proj),
                ("o_proj", &a.o_proj),
            ] {
                out.push((format!("{p}.self_attn.{name}"), lin));
            }
            let m = &layer.mlp;
            for (name, lin) in [
                ("gate_proj", &m.gate_proj),
                ("up_proj", &m.up_proj),
                ("down_proj", &m.down_proj),
            ] {
                out.push((format!("{p}.mlp.{name}"), lin));
            }
        }
        if let Some(head) = &self.lm_head {
            out.push(("lm_head".to_string(), head));
        }
        out
    }

    /// Mutable access to the linear layers by HF module path.
    pub fn linear_layers_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let mut out = Vec::new();
        for (l, layer) in self.layers.iter_mut().enumerate() {
            let p = format!("model.layers.{l}");
            let a = &mut layer.self_attn;
            out.push((format!("{p}.self_attn.q_proj"), &mut a.q_proj));
            out.push((format!("{p}.self_attn.k_proj"), &mut a.k_proj));
            out.push((format!("{p}.self_attn.v_proj"), &mut a.v_proj));
            out.push((format!("{p}.self_attn.o_proj"), &mut a.o_proj));
            let m = &mut layer.mlp;
            out.push((format!("{p}.mlp.gate_proj"), &mut m.gate_proj));
            out.push((format!("{p}.mlp.up_proj"), &mut m.up_proj));
            out.push((format!("{p}.mlp.down_proj"), &mut m.down_proj));
        }
        if let Some(head) = &mut self.lm_head {
            out.push(("lm_head".to_string(), head));
        }
        out
    }
}
