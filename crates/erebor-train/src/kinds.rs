//! The `sft` and `preference` step kinds.

use crate::config::{TrainKind, TrainSettings};
use crate::{memory_plan, run_preference, run_sft};
use erebor_core::hub_models::resolve_model;
use erebor_core::{
    ConfigError, OutputDecl, OutputType, StepContext, StepFailure, StepKind, StepKindInfo,
    StepOutputs,
};
use erebor_model::DeviceSpec;
use std::path::Path;

/// Bump when a change alters what the kinds produce from the same inputs.
const CODE_VERSION: u32 = 1;

const ADAPTER_OUTPUT: OutputDecl = OutputDecl {
    name: "adapter",
    ty: OutputType::Adapter,
    doc: "with `lora:`, the trained adapters as a PEFT folder (`model` is then the merged model)",
};

const COMMON_OUTPUTS: [OutputDecl; 5] = [
    OutputDecl {
        name: "model",
        ty: OutputType::Model,
        doc: "the trained model, a Hugging Face folder (f32 safetensors, tokenizer, chat template)",
    },
    OutputDecl {
        name: "checkpoint",
        ty: OutputType::File,
        doc: "the final training checkpoint (weights, AdamW state, data position, RNG)",
    },
    OutputDecl {
        name: "final_loss",
        ty: OutputType::Metric,
        doc: "training loss of the last optimizer step",
    },
    OutputDecl {
        name: "steps",
        ty: OutputType::Metric,
        doc: "optimizer steps run",
    },
    OutputDecl {
        name: "report",
        ty: OutputType::Report,
        doc: "training.json: precision policy, steps, resume point, final metrics",
    },
];

const SFT_OUTPUTS: [OutputDecl; 8] = [
    ADAPTER_OUTPUT,
    COMMON_OUTPUTS[0],
    COMMON_OUTPUTS[1],
    COMMON_OUTPUTS[2],
    COMMON_OUTPUTS[3],
    COMMON_OUTPUTS[4],
    OutputDecl {
        name: "eval_loss",
        ty: OutputType::Metric,
        doc: "mean token loss on eval_split after training (when eval_split is set)",
    },
    OutputDecl {
        name: "precision",
        ty: OutputType::Text,
        doc: "the precision policy in force (f32, bf16-mixed, bf16)",
    },
];

const PREFERENCE_OUTPUTS: [OutputDecl; 10] = [
    ADAPTER_OUTPUT,
    COMMON_OUTPUTS[0],
    COMMON_OUTPUTS[1],
    COMMON_OUTPUTS[2],
    COMMON_OUTPUTS[3],
    COMMON_OUTPUTS[4],
    OutputDecl {
        name: "ref_logps",
        ty: OutputType::RefLogps,
        doc: "reference log-probs of every pair, shared by steps with the same reference and data",
    },
    OutputDecl {
        name: "reward_accuracy",
        ty: OutputType::Metric,
        doc: "with an eval_split: fraction of held-out pairs whose chosen reward is higher",
    },
    OutputDecl {
        name: "chosen_after_edit",
        ty: OutputType::Metric,
        doc: "with an eval_split: mean log-prob per chosen token from the first edited token on",
    },
    OutputDecl {
        name: "precision",
        ty: OutputType::Text,
        doc: "the precision policy in force (f32, bf16-mixed, bf16)",
    },
];

static SFT_INFO: StepKindInfo = StepKindInfo {
    name: "sft",
    code_version: CODE_VERSION,
    summary: "supervised fine-tuning on assistant turns (AdamW, warmup + decay, checkpoints, resume)",
    outputs: &SFT_OUTPUTS,
};

static PREFERENCE_INFO: StepKindInfo = StepKindInfo {
    name: "preference",
    code_version: CODE_VERSION,
    summary: "preference optimisation: dpop (DPO-Positive), dpo, ipo or slic against cached reference log-probs",
    outputs: &PREFERENCE_OUTPUTS,
};

/// The `sft` and `preference` step kinds: one implementation, parameterised by what it trains
/// (the config, outputs and plan notes differ by [`TrainKind`]; the run loop is shared).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrainStepKind {
    kind: TrainKind,
}

impl TrainStepKind {
    /// `uses: sft`.
    pub const SFT: Self = Self {
        kind: TrainKind::Sft,
    };
    /// `uses: preference`.
    pub const PREFERENCE: Self = Self {
        kind: TrainKind::Preference,
    };
}

/// Parses the block (closed sets such as `device`, `loss`, `precision` and `lr_schedule` are
/// enums, so a wrong value fails here) and refuses a device this build cannot use.
fn validate(with: &serde_json::Value, kind: TrainKind) -> Result<(), ConfigError> {
    let config = TrainSettings::parse(with, kind)?;
    if !config.device.is_compiled_in() {
        let supported: Vec<String> = DeviceSpec::compiled_in_spellings()
            .iter()
            .map(|name| format!("`{name}`"))
            .collect();
        return Err(ConfigError::field(
            "device",
            format!(
                "`{}` needs LibTorch, which this build of erebor does not have (rebuild with \
                 `--features tch`); this build supports {}",
                config.device,
                supported.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The declared outputs a step with this `with:` block produces: `adapter` only with `lora:`,
/// the held-out metrics only with an `eval_split`.
fn outputs_for(info: &StepKindInfo, with: &serde_json::Value) -> Vec<(String, OutputType)> {
    let set = |key: &str| with.get(key).is_some_and(|v| !v.is_null());
    info.outputs
        .iter()
        .filter(|output| match output.name {
            "adapter" => set("lora"),
            "eval_loss" | "reward_accuracy" | "chosen_after_edit" => set("eval_split"),
            _ => true,
        })
        .map(|output| (output.name.to_owned(), output.ty))
        .collect()
}

fn notes(with: &serde_json::Value, base_dir: &Path, kind: TrainKind) -> Vec<String> {
    let Ok(config) = TrainSettings::parse(with, kind) else {
        return Vec::new();
    };
    match resolve_model(base_dir, &config.model) {
        Ok(model_dir) => memory_plan::memory_notes(&config, kind, &model_dir),
        Err(error) => vec![format!("memory: not estimated: {error}")],
    }
}

fn refusal(with: &serde_json::Value, base_dir: &Path, kind: TrainKind) -> Option<String> {
    let config = TrainSettings::parse(with, kind).ok()?;
    let model_dir = resolve_model(base_dir, &config.model).ok()?;
    memory_plan::memory_refusal(&config, kind, &model_dir)
}

impl StepKind for TrainStepKind {
    fn info(&self) -> &'static StepKindInfo {
        match self.kind {
            TrainKind::Sft => &SFT_INFO,
            TrainKind::Preference => &PREFERENCE_INFO,
        }
    }

    fn validate(&self, with: &serde_json::Value, _base_dir: &Path) -> Result<(), ConfigError> {
        validate(with, self.kind)
    }

    fn outputs_for(&self, with: &serde_json::Value) -> Vec<(String, OutputType)> {
        outputs_for(self.info(), with)
    }

    fn plan_notes(&self, with: &serde_json::Value, base_dir: &Path) -> Vec<String> {
        notes(with, base_dir, self.kind)
    }

    fn plan_refusal(&self, with: &serde_json::Value, base_dir: &Path) -> Option<String> {
        refusal(with, base_dir, self.kind)
    }

    fn run(&self, ctx: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
        match self.kind {
            TrainKind::Sft => run_sft::run(ctx),
            TrainKind::Preference => run_preference::run(ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outputs_depend_on_lora_and_the_eval_split() {
        let names = |kind: &dyn StepKind, with| -> Vec<String> {
            kind.outputs_for(&with)
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        };
        let plain = names(&TrainStepKind::PREFERENCE, json!({"model": "m"}));
        assert!(!plain.contains(&"adapter".to_owned()));
        assert!(!plain.contains(&"reward_accuracy".to_owned()));
        assert!(plain.contains(&"ref_logps".to_owned()));
        let full = names(
            &TrainStepKind::PREFERENCE,
            json!({"lora": {"rank": 8}, "eval_split": "eval"}),
        );
        assert!(full.contains(&"adapter".to_owned()));
        assert!(full.contains(&"chosen_after_edit".to_owned()));
        let sft = names(&TrainStepKind::SFT, json!({"eval_split": "eval"}));
        assert!(sft.contains(&"eval_loss".to_owned()) && !sft.contains(&"ref_logps".to_owned()));
    }
}
