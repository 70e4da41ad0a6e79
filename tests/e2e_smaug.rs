//! End-to-end: the Smaug recipes (workflows/smaug/, issue 19).
//!
//! - Every recipe validates and plans without downloads: the model mirror is the config-only
//!   one in workflows/smaug/configs (real dimensions, no weights), so the training steps get a
//!   memory estimate; a training step whose estimate exceeds the memory this machine has is
//!   refused by `erebor plan` (exit 2) naming the memory it needs and the memory it sees, and
//!   `erebor run` refuses it before any step starts. The parameter counts in the notes are
//!   checked against the published sizes.
//! - The evaluation-only path (smaug-72b-eval.yaml) runs end to end, `hf://models/...` resolved
//!   through the mirror override to a tiny random stand-in model, on a few leaderboard documents
//!   per task from ../shared: the metrics are recorded, and the paper's `expect:` checks fail
//!   (a random model), so `erebor run` exits 3 naming them. Without the model in the mirror the
//!   step fails naming the reference.

mod common;

use common::{Backend, Sandbox, repo_root};
use erebor_model::burn::tensor::DType;
use erebor_model::{CausalLm, ModelConfig, SaveOptions, Tokenizer, save_pretrained};
use serde_json::Value;
use std::path::{Path, PathBuf};

const MIRROR_ENV: &str = "EREBOR_HF_MODELS";
use erebor_model::memory::budget::BUDGET_ENV;

fn recipe(name: &str) -> String {
    repo_root()
        .join("workflows/smaug")
        .join(name)
        .display()
        .to_string()
}

fn config_mirror() -> PathBuf {
    repo_root().join("workflows/smaug/configs")
}

/// Total RAM in GB as `erebor plan` reads it.
fn ram_gb() -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = text.lines().find(|l| l.starts_with("MemTotal:")).unwrap();
    let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024.0 / 1e9
}

/// The GB total of the `note: memory (...)` line of `step`.
fn estimate_gb(plan: &str, params: &str) -> f64 {
    let line = plan
        .lines()
        .find(|l| l.contains("note: memory (") && l.contains(params))
        .unwrap_or_else(|| panic!("no memory note with {params}:\n{plan}"));
    let total = line.split(" = ").nth(1).unwrap();
    total.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn every_smaug_recipe_validates_and_plans_without_downloads() {
    let sandbox = Sandbox::new(Backend::Sqlite).unwrap();
    let names: Vec<String> = std::fs::read_dir(repo_root().join("workflows/smaug"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| Path::new(n).extension().is_some_and(|e| e == "yaml"))
        .collect();
    for expected in [
        "smaug-7b-mtbench.yaml",
        "smaug-34b.yaml",
        "smaug-34b-eval.yaml",
        "smaug-72b.yaml",
        "smaug-72b-eval.yaml",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing");
    }
    // (recipe, parameter count in the note, whether it trains)
    let training = [
        ("smaug-7b-mtbench.yaml", "6.74B params"),
        ("smaug-34b.yaml", "34.39B params"),
        ("smaug-72b.yaml", "72.29B params"),
    ];
    for name in &names {
        let file = recipe(name);
        sandbox.expect(&["validate", &file, "--set", "device=cpu"], 0);
        let output = sandbox
            .erebor()
            .env(MIRROR_ENV, config_mirror())
            .args(["plan", &file, "--set", "device=cpu"])
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        let Some((_, params)) = training.iter().find(|(n, _)| n == name) else {
            assert_eq!(output.status.code(), Some(0), "{name}:\n{stdout}\n{stderr}");
            continue;
        };
        let needed = estimate_gb(&stdout, params);
        let fits = needed <= 0.9 * ram_gb();
        if fits {
            assert_eq!(output.status.code(), Some(0), "{name}:\n{stdout}\n{stderr}");
            assert!(!stderr.contains("refused"), "{stderr}");
        } else {
            assert_eq!(output.status.code(), Some(2), "{name}:\n{stdout}\n{stderr}");
            assert!(
                stderr.contains(&format!("needs {needed:.1} GB of memory, sees "))
                    && stderr.contains("GB of RAM"),
                "{name}: {stderr}"
            );
        }
    }
}

#[test]
fn the_72b_plan_and_run_refuse_naming_the_memory_needed_and_seen() {
    let sandbox = Sandbox::new(Backend::Sqlite).unwrap();
    let file = recipe("smaug-72b.yaml");
    let mut plan = sandbox.erebor();
    plan.env(MIRROR_ENV, config_mirror());
    let stdout = common::expect_exit(plan, &["plan", &file, "--set", "device=cpu"], 2);
    // f32 on the CPU: 72.29B parameters are 289 GB of weights before anything else.
    let needed = estimate_gb(&stdout, "72.29B params");
    assert!(needed > 289.0 && needed > ram_gb(), "{stdout}");
    let mut run = sandbox.erebor();
    run.env(MIRROR_ENV, config_mirror());
    let output = run
        .args(["run", &file, "--set", "device=cpu"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refused before any step ran")
            && stderr.contains(&format!(
                "step train: needs {needed:.1} GB of memory, sees "
            ))
            && stderr.contains("GB of RAM"),
        "{stderr}"
    );
    // Nothing ran: no run was recorded.
    assert_eq!(sandbox.latest_run(), None);
}

/// ../shared/data/leaderboard, or None (a failure under CI=true).
fn leaderboard_data() -> Option<PathBuf> {
    common::shared_path("data/leaderboard")
}

/// A random tiny-arith model (config, safetensors, tokenizer) saved into `dir`: the stand-in
/// for the 72B checkpoint.
fn save_stand_in(dir: &Path) {
    let source = repo_root().join("workflows/models/tiny-arith");
    // tiny-arith's 256-token window leaves GSM8K's 256 new tokens no room for a prompt: the
    // stand-in reads 2048 positions (rotary, so no weights change shape).
    let mut config = ModelConfig::from_dir(&source).unwrap();
    config.max_position_embeddings = 2048;
    let device = erebor_model::DeviceSpec::Cpu.device().unwrap();
    let model = CausalLm::random(&config, 7, 0.3, &device, DType::F32);
    let tokenizer = Tokenizer::from_dir(&source).unwrap();
    let mut raw: Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("config.json")).unwrap())
            .unwrap();
    raw["max_position_embeddings"] = 2048.into();
    save_pretrained(
        &model,
        dir,
        Some(&tokenizer),
        Some(&raw),
        &SaveOptions::default(),
    )
    .unwrap();
}

#[test]
fn smaug_72b_eval_runs_end_to_end_on_a_stand_in_through_the_mirror() {
    let Some(data) = leaderboard_data() else {
        return;
    };
    let sandbox = Sandbox::new(Backend::Sqlite).unwrap();
    let mirror = sandbox.path().join("mirror");
    let file = recipe("smaug-72b-eval.yaml");
    let data_set = format!("leaderboard_data={}", data.display());
    // GSM8K's few-shot exemplars come from its train split, which ../shared lacks: eight test
    // rows stand in (the model is random; only the path through the recipe is under test).
    let exemplars = sandbox.path().join("gsm8k_exemplars.jsonl");
    let test_rows = std::fs::read_to_string(data.join("gsm8k_test.jsonl")).unwrap();
    let head: Vec<&str> = test_rows.lines().take(8).collect();
    std::fs::write(&exemplars, head.join("\n") + "\n").unwrap();
    let exemplars_set = format!("gsm8k_exemplars={}", exemplars.display());
    let args = [
        "run",
        &file,
        "--set",
        "device=cpu",
        "--set",
        "limit=2",
        "--set",
        "batch_size=4",
        "--set",
        &data_set,
        "--set",
        &exemplars_set,
    ];

    // Not in the mirror: the step fails naming the reference and the folder looked at.
    std::fs::create_dir_all(&mirror).unwrap();
    let mut missing = sandbox.erebor();
    missing.env(MIRROR_ENV, &mirror);
    let output = missing.args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("hf://models/abacusai/Smaug-72B-v0.1: not in the model mirror")
            && stderr.contains(&mirror.join("abacusai/Smaug-72B-v0.1").display().to_string()),
        "{stderr}"
    );

    // In the mirror: the six tasks run on two documents each (MMLU: two per subject).
    save_stand_in(&mirror.join("abacusai/Smaug-72B-v0.1"));
    let mut run = sandbox.erebor();
    run.env(MIRROR_ENV, &mirror);
    let output = run.args(args).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    // A random model misses the paper's numbers: the run ends with failed expectations (3).
    assert_eq!(output.status.code(), Some(3), "{stdout}\n{stderr}");
    let both = format!("{stdout}{stderr}");
    assert!(
        both.contains("bench/leaderboard/average >= 0.7948"),
        "{both}"
    );
    let run_id = sandbox.latest_run().unwrap();

    eval_outside_a_workflow_takes_the_same_reference(&sandbox, &mirror, &data);
    let json = sandbox.expect(&["metrics", &run_id, "--format", "json"], 0);
    let rows: Value = serde_json::from_str(&json).unwrap();
    let text = rows.to_string();
    for key in [
        "bench/arc_challenge/acc_norm",
        "bench/hellaswag/acc_norm",
        "bench/mmlu/acc",
        "bench/truthfulqa_mc/mc1",
        "bench/winogrande/acc",
        "bench/gsm8k/acc",
        "bench/leaderboard/average",
    ] {
        assert!(
            text.contains(&format!("\"{key}\"")),
            "{key} not recorded: {text}"
        );
    }
}

/// A small SFT of `hf://models/test/tiny` (through the mirror) on 40 synthetic problems.
fn tiny_sft_workflow(tokenizer: &Path) -> String {
    format!(
        r"name: cached-oversized
steps:
  - id: data
    uses: convert
    with:
      sources:
        - name: arith
          synthetic: {{count: 40, seed: 1, steps: [2, 2], start: [2, 20], operand: [1, 9], max_value: 30, operations: [add, sub]}}
          map: gsm8k
      tokenizer: {}
  - id: train
    uses: sft
    with:
      model: hf://models/test/tiny
      init: random
      seed: 1
      dataset: ${{{{ steps.data.outputs.dataset }}}}
      device: cpu
      lr: 1.0e-3
      batch_size: 8
      epochs: 1
",
        tokenizer.display()
    )
}

/// A `hf://models/test/tiny` mirror holding tiny-arith's config and tokenizer (`init: random`
/// needs no weights), and the two-step SFT workflow over it.
struct TinyMirror {
    mirror: PathBuf,
    model: PathBuf,
    workflow: PathBuf,
}

impl TinyMirror {
    fn new(sandbox: &Sandbox) -> Self {
        let mirror = sandbox.path().join("mirror");
        let model = mirror.join("test/tiny");
        std::fs::create_dir_all(&model).unwrap();
        let source = repo_root().join("workflows/models/tiny-arith");
        for file in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
            std::fs::copy(source.join(file), model.join(file)).unwrap();
        }
        let workflow = sandbox.write("wf.yaml", &tiny_sft_workflow(&source));
        Self {
            mirror,
            model,
            workflow,
        }
    }

    /// `erebor` in the sandbox with the mirror configured.
    fn erebor(&self, sandbox: &Sandbox) -> std::process::Command {
        let mut command = sandbox.erebor();
        command.env(MIRROR_ENV, &self.mirror);
        command
    }
}

/// A training step whose estimate no longer fits is refused only when it would run: reused
/// from the cache, `plan` notes it and `run` proceeds; forced to run, both refuse. The machine
/// "shrinks" through `EREBOR_MEMORY_BUDGET_GB`, which is not part of any fingerprint.
#[test]
fn a_cached_oversized_training_step_is_noted_not_refused() {
    let sandbox = Sandbox::new(Backend::Sqlite).unwrap();
    let tiny = TinyMirror::new(&sandbox);
    let file = tiny.workflow.to_str().unwrap();
    let erebor = || tiny.erebor(&sandbox);
    common::expect_exit(erebor(), &["run", file], 0);
    let first = sandbox.latest_run().unwrap();

    // A machine too small for the step: the budget override, which is not part of the
    // fingerprint (the mirror's files are: changing them would make the step run again).
    let small = || {
        let mut command = erebor();
        command.env(BUDGET_ENV, "0.000001");
        command
    };
    let plan = common::expect_exit(small(), &["plan", file], 0);
    assert!(plan.contains("2 steps, 2 cached, 0 to run"), "{plan}");
    assert!(
        plan.contains(&format!(
            "note: not refused: reused from run {first}; running it here would be refused: needs "
        )),
        "{plan}"
    );
    let stdout = common::expect_exit(small(), &["run", file], 0);
    let second = sandbox.latest_run().unwrap();
    assert_ne!(first, second, "{stdout}");

    let output = small()
        .args(["run", file, "--force", "train"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refused before any step ran") && stderr.contains("step train: needs "),
        "{stderr}"
    );
    assert_eq!(sandbox.latest_run(), Some(second));
}

/// A step naming `hf://models/...` is fingerprinted by the mirrored folder's files: replacing
/// them under the same reference makes the step run again instead of reusing the old result.
#[test]
fn a_changed_mirrored_model_is_not_reused_from_the_cache() {
    let sandbox = Sandbox::new(Backend::Sqlite).unwrap();
    let tiny = TinyMirror::new(&sandbox);
    let file = tiny.workflow.to_str().unwrap();
    let erebor = || tiny.erebor(&sandbox);
    common::expect_exit(erebor(), &["run", file], 0);
    let plan = common::expect_exit(erebor(), &["plan", file], 0);
    assert!(plan.contains("2 steps, 2 cached, 0 to run"), "{plan}");
    let config = tiny.model.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n")).unwrap();
    let plan = common::expect_exit(erebor(), &["plan", file], 0);
    assert!(
        plan.contains("1 cached, 1 to run"),
        "the step on the changed mirror must run again: {plan}"
    );
}

/// `../shared/data/mt_bench`, or None (a failure under `CI=true`).
fn mt_bench_data() -> Option<PathBuf> {
    common::shared_path("data/mt_bench")
}

/// `erebor mt-bench hf://models/...` resolves through the mirror as `erebor eval` does: missing,
/// it fails naming the reference and the folder looked at; mirrored, the stand-in answers and
/// the files take the repository's name (`stand-in-v0.1`, dot included).
#[test]
fn mt_bench_takes_an_hf_models_reference_from_the_mirror() {
    let Some(data) = mt_bench_data() else {
        return;
    };
    let sandbox = Sandbox::new(Backend::Sqlite).unwrap();
    let mirror = sandbox.path().join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    let out = sandbox.path().join("mt-out");
    let reference = "hf://models/test/stand-in-v0.1";
    let args = [
        "mt-bench",
        reference,
        "--data-dir",
        data.to_str().unwrap(),
        "--limit",
        "1",
        "--max-new-tokens",
        "4",
        "--temperature",
        "0",
        "--output",
        out.to_str().unwrap(),
    ];
    let mut missing = sandbox.erebor();
    missing.env(MIRROR_ENV, &mirror);
    let output = missing.args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let folder = mirror.join("test/stand-in-v0.1");
    assert!(
        stderr.contains(&format!("{reference}: not in the model mirror"))
            && stderr.contains(&folder.display().to_string()),
        "{stderr}"
    );

    save_stand_in(&folder);
    let mut run = sandbox.erebor();
    run.env(MIRROR_ENV, &mirror);
    common::expect_exit(run, &args, 0);
    let answers = out.join("stand-in-v0.1/model_answer/stand-in-v0.1.jsonl");
    let text =
        std::fs::read_to_string(&answers).unwrap_or_else(|e| panic!("{}: {e}", answers.display()));
    let first_question: Value = serde_json::from_str(
        std::fs::read_to_string(data.join("question.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert_eq!(rows[0]["question_id"], first_question["question_id"]);
    assert_eq!(rows[0]["model_id"], "stand-in-v0.1");
    assert_eq!(rows[0]["choices"][0]["turns"].as_array().unwrap().len(), 2);
}

/// An `eval` step gets a memory note in `plan` (weights in its dtype, logits, KV cache and one
/// layer for its batch) and is refused when that exceeds 90% of this machine's memory: the 72B
/// config from the config-only mirror, in f32 on the CPU.
#[test]
fn an_eval_step_of_a_72b_model_is_estimated_and_refused_where_it_cannot_fit() {
    let sandbox = Sandbox::new(Backend::Sqlite).unwrap();
    let file = sandbox.write(
        "eval72.yaml",
        "name: eval72\nsteps:\n  - id: score\n    uses: eval\n    with:\n      model: hf://models/moreh/MoMo-72B-lora-1.8.7-DPO\n      tasks: [arc_challenge]\n      data_dir: data\n      device: cpu\n      batch_size: 2\n      max_length: 512\n",
    );
    let output = sandbox
        .erebor()
        .env(MIRROR_ENV, config_mirror())
        .args(["plan", file.to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    let line = stdout
        .lines()
        .find(|l| {
            l.contains("note: memory (evaluation, 72.29B params in F32, batch 2 x 512 tokens)")
        })
        .unwrap_or_else(|| panic!("no evaluation memory note:\n{stdout}"));
    let total = line.split(" = ").nth(1).unwrap();
    let needed: f64 = total.split_whitespace().next().unwrap().parse().unwrap();
    // 72.29B parameters in f32 are 289 GB before the batch.
    assert!((289.0..300.0).contains(&needed), "{line}");
    if needed <= 0.9 * ram_gb() {
        assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    } else {
        assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
        assert!(
            stderr.contains(&format!(
                "step score: needs {needed:.1} GB of memory, sees "
            )) && stderr.contains("cannot evaluate hf://models/moreh/MoMo-72B-lora-1.8.7-DPO here"),
            "{stderr}"
        );
    }
}

/// `erebor eval` outside a workflow takes the same `hf://models/...` reference through the
/// mirror.
fn eval_outside_a_workflow_takes_the_same_reference(sandbox: &Sandbox, mirror: &Path, data: &Path) {
    let out = sandbox.path().join("eval-out");
    let mut eval = sandbox.erebor();
    eval.env(MIRROR_ENV, mirror);
    let table = common::expect_exit(
        eval,
        &[
            "eval",
            "hf://models/abacusai/Smaug-72B-v0.1",
            "--tasks",
            "arc_challenge",
            "--limit",
            "2",
            "--data-dir",
            data.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
        0,
    );
    assert!(table.contains("|arc_challenge"), "{table}");
}
