//! The DPOP paper's failure mode, reproduced small on CPU (Pal et al. 2024, section 3).
//!
//! A tiny Llama (workflows/models/tiny-arith, random init) is fine-tuned on synthetic two-step
//! arithmetic with worked answers until it gives its answers high probability. Low-edit pairs are
//! built from other problems: the rejected answer is the chosen one with one intermediate result
//! changed (erebor-data's MetaMath-style builder). The same start is then trained with DPO and
//! with DPOP at the same learning rate. On held-out pairs both learn the preference (reward
//! accuracy >= 0.9); DPO does it by also lowering the chosen answer's tokens after the edit
//! (mean per-token log-prob at least 0.5 nats below the reference's), DPOP keeps them (within
//! 0.05 nats of the reference, or above). The paper's MetaMath means: DPO -1.82, reference
//! -0.37, DPOP -0.26.
//!
//! The steps and their `with:` blocks are read from workflows/dpo-vs-dpop.yaml and run through
//! the real step kinds, so the shipped workflow is what is tested. `FM_<PARAM>` environment
//! variables override the workflow's params (for exploring, not for CI).

use erebor_core::{CancelToken, MemorySink, StepContext, StepKind, StepOutputs};
use erebor_data::ConvertKind;
use erebor_train::TrainStepKind;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn workflows() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../workflows")
}

/// Replaces `${{ params.X }}`, `${{ matrix.X }}` and `${{ steps.ID.outputs.NAME }}`; a string
/// that is exactly one template takes the value's type, as the workflow engine does.
fn resolve(value: &Value, vars: &BTreeMap<String, Value>) -> Value {
    match value {
        Value::String(text) => {
            let trimmed = text.trim();
            if let Some(inner) = trimmed
                .strip_prefix("${{")
                .and_then(|t| t.strip_suffix("}}"))
                && !inner.contains("${{")
            {
                let name = inner.trim();
                return vars
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| panic!("unresolved {name}"));
            }
            assert!(
                !text.contains("${{"),
                "embedded templates are not used here: {text}"
            );
            value.clone()
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, vars)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), resolve(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn run(kind: &dyn StepKind, id: &str, with: Value, dir: &Path) -> (StepOutputs, MemorySink) {
    let sink = MemorySink::new();
    let progress = MemorySink::new();
    let started = Instant::now();
    let ctx = StepContext {
        run_id: "r-failure-mode".into(),
        step_id: id.into(),
        attempt_id: "a1".into(),
        with,
        base_dir: workflows(),
        work_dir: dir.join(erebor_core::StepId::from(id).file_name()),
        cache_dir: dir.join("cache"),
        run_data: None,
        metrics: &sink,
        progress: &progress,
        cancel: CancelToken::new(),
    };
    let outputs = kind.run(&ctx).unwrap_or_else(|e| panic!("{id}: {e}"));
    println!("{id} took {:.1}s", started.elapsed().as_secs_f64());
    (outputs, sink)
}

fn curve(sink: &MemorySink, key: &str) -> String {
    let points: Vec<String> = sink
        .series(key)
        .iter()
        .map(|(i, v)| format!("{i}:{v:.3}"))
        .collect();
    format!("{key} [{}]", points.join(" "))
}

#[test]
fn dpo_lowers_the_chosen_answer_after_the_edit_and_dpop_keeps_it() {
    let text = std::fs::read_to_string(workflows().join("dpo-vs-dpop.yaml")).unwrap();
    let workflow: Value = serde_saphyr::from_str(&text).unwrap();
    let mut vars = BTreeMap::new();
    for (name, value) in workflow["params"].as_object().unwrap() {
        let value = match std::env::var(format!("FM_{}", name.to_uppercase())) {
            Ok(over) => serde_json::from_str(&over).unwrap_or(Value::String(over)),
            Err(_) => value.clone(),
        };
        vars.insert(format!("params.{name}"), value);
    }
    let steps: BTreeMap<String, Value> = workflow["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_owned(), s.clone()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let step =
        |id: &str, arm: Option<&str>, kind: &dyn StepKind, vars: &mut BTreeMap<String, Value>| {
            let with = resolve(&steps[id]["with"], vars);
            let step_id = match arm {
                Some(arm) => format!("{id}[{arm}]"),
                None => id.to_owned(),
            };
            let (outputs, sink) = run(kind, &step_id, with, dir.path());
            for (name, value) in &outputs.values {
                vars.insert(
                    format!("steps.{id}.outputs.{name}"),
                    Value::String(value.to_template_string()),
                );
            }
            sink
        };
    step("sft-data", None, &ConvertKind, &mut vars);
    let sft = step("sft", None, &TrainStepKind::SFT, &mut vars);
    println!("{}", curve(&sft, "eval/loss"));
    step("pairs", None, &ConvertKind, &mut vars);

    let mut arms = Vec::new();
    for loss in ["dpo", "dpop"] {
        vars.insert("matrix.loss".into(), Value::String(loss.into()));
        let sink = step("train", Some(loss), &TrainStepKind::PREFERENCE, &mut vars);
        for key in [
            "eval/logps/chosen_after_edit",
            "eval/rewards/accuracies",
            "eval/logps/chosen",
            "eval/logps/rejected",
        ] {
            println!("{loss} {}", curve(&sink, key));
        }
        let after_edit = sink.series("eval/logps/chosen_after_edit");
        let accuracy = sink.series("eval/rewards/accuracies");
        arms.push((
            loss,
            after_edit[0].1,
            after_edit.last().unwrap().1,
            accuracy.last().unwrap().1,
        ));
    }
    for (loss, reference, trained, accuracy) in arms {
        assert!(
            accuracy >= 0.9,
            "{loss}: held-out reward accuracy {accuracy} < 0.9"
        );
        if loss == "dpo" {
            assert!(
                trained <= reference - 0.5,
                "dpo: chosen after the edit {trained:.3} nats/token, reference {reference:.3}: not 0.5 lower"
            );
        } else {
            assert!(
                trained >= reference - 0.05,
                "dpop: chosen after the edit {trained:.3} nats/token fell below reference {reference:.3} - 0.05"
            );
        }
    }
}
