//! End-to-end: the README's quickstart (workflows/quickstart.yaml: synthetic arithmetic → SFT of
//! the tiny model from scratch → low-edit pairs → DPOP → report, and both models evaluated on
//! the held-out problems with the custom task workflows/tasks/arith.yaml), run through the binary as the
//! README runs it: from the project folder (here a copy of `workflows/`), with the default state
//! folder and database (`.erebor/`, SQLite). About three minutes on a 2-core machine: one real
//! run (two minutes), a fully cached one, and the DPO variant of the preference step (one
//! minute) that must fail the quickstart's `expect:` check.
//!
//! References the numbers are checked against: at optimizer step 1 (and at eval index 0) the
//! policy is the reference, so the DPOP loss is exactly ln 2 and its penalty exactly 0; a
//! randomly initialised model's held-out token loss is close to ln(vocab size) = ln 152; and the
//! DPOP paper's claim, as crates/erebor-train/tests/failure_mode.rs asserts it: DPOP keeps the
//! chosen answers' log-probs after the edit at the reference's, DPO lowers them.

// Exact float comparisons are meant here: a penalty that is exactly 0 at the reference, and a
// stored metric read back through two paths (the store, lm-eval's results file) bit for bit.
#![allow(clippy::float_cmp)]

#[path = "browser/mod.rs"]
mod browser;
mod common;

use common::{Backend, Sandbox};
use erebor_store::StepStatus;
use std::collections::BTreeMap;

/// `erebor ARGS` in the sandbox as a user runs it: default `--home` and `--db`.
fn as_the_readme(sandbox: &Sandbox, args: &[&str], code: i32) -> String {
    common::expect_exit(sandbox.erebor_as_user(), args, code)
}

/// Metric key → (index, value) series of one step, read with `erebor metrics --format json`.
fn metrics_of(sandbox: &Sandbox, run: &str, step: &str) -> BTreeMap<String, Vec<(i64, f64)>> {
    let json = as_the_readme(
        sandbox,
        &["metrics", run, "--step", step, "--format", "json"],
        0,
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let mut series: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for row in rows {
        assert_eq!(row["step"], step, "{row}");
        series
            .entry(row["key"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                row["index"].as_i64().unwrap(),
                row["value"].as_f64().unwrap(),
            ));
    }
    for points in series.values_mut() {
        points.sort_by_key(|(index, _)| *index);
    }
    series
}

fn last(series: &BTreeMap<String, Vec<(i64, f64)>>, key: &str) -> f64 {
    series[key].last().unwrap().1
}

fn first(series: &BTreeMap<String, Vec<(i64, f64)>>, key: &str) -> (i64, f64) {
    series[key][0]
}

#[test]
// One real run followed through from its output to its cache hit; split, its stages would
// share a run they cannot each set up (about two minutes of training).
#[allow(clippy::too_many_lines)]
fn the_readme_quickstart_trains_dpop_records_it_and_caches_it() {
    let sandbox = Sandbox::new(Backend::Sqlite).unwrap();
    sandbox.copy_ml_workflows();
    let quickstart = "workflows/quickstart.yaml";

    let out = as_the_readme(&sandbox, &["run", quickstart], 0);
    assert!(
        out.contains(": succeeded") && !out.contains("expectation failed"),
        "{out}"
    );
    assert!(
        sandbox.home().join("erebor.db").is_file(),
        "the default store is .erebor/erebor.db"
    );
    let list = as_the_readme(&sandbox, &["runs", "list"], 0);
    let run = list
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let row = list.lines().nth(1).unwrap();
    assert!(
        row.contains("quickstart") && row.contains("succeeded") && row.contains("7/7"),
        "{list}"
    );

    // SFT: from near-uniform predictions (ln 152 nats per token) to a model that knows the task.
    let sft = metrics_of(&sandbox, &run, "sft");
    let (index, initial) = first(&sft, "eval/loss");
    assert_eq!(index, 0);
    assert!(
        (initial - 152f64.ln()).abs() < 0.05,
        "eval/loss at 0: {initial}"
    );
    assert!(last(&sft, "eval/loss") <= 0.3, "{:?}", sft["eval/loss"]);

    // DPOP: every optimizer step and every evaluation is in the store.
    let train = metrics_of(&sandbox, &run, "train");
    let steps = 176; // 700 training pairs / 16 per step = 44 steps per epoch, 4 epochs
    for key in [
        "train/loss",
        "train/lr",
        "train/grad_norm",
        "dpop/penalty",
        "rewards/accuracies",
        "rewards/margins",
        "logps/chosen",
    ] {
        let indices: Vec<i64> = train[key].iter().map(|(i, _)| *i).collect();
        assert_eq!(indices, (1..=steps).collect::<Vec<_>>(), "{key}");
    }
    let evals: Vec<i64> = (0..=steps).step_by(22).collect();
    for key in [
        "eval/loss",
        "eval/rewards/accuracies",
        "eval/dpop/penalty",
        "eval/logps/chosen_after_edit",
    ] {
        let indices: Vec<i64> = train[key].iter().map(|(i, _)| *i).collect();
        assert_eq!(indices, evals, "{key}");
    }
    let ln2 = std::f64::consts::LN_2;
    assert!((first(&train, "train/loss").1 - ln2).abs() < 1e-6);
    assert!((first(&train, "eval/loss").1 - ln2).abs() < 1e-6);
    assert_eq!(first(&train, "dpop/penalty").1, 0.0);
    assert_eq!(first(&train, "eval/dpop/penalty").1, 0.0);
    assert!(
        train["rewards/accuracies"]
            .iter()
            .all(|(_, v)| (0.0..=1.0).contains(v))
    );
    // The outcome the quickstart's `expect:` states, and the paper's point: the preference is
    // learned while the chosen answers keep (here: exceed) the reference's likelihood.
    let accuracy = last(&train, "eval/rewards/accuracies");
    assert!(accuracy >= 0.9, "{:?}", train["eval/rewards/accuracies"]);
    assert_eq!(last(&train, "reward_accuracy"), accuracy);
    assert!(
        last(&train, "eval/dpop/penalty") <= 15.0,
        "{:?}",
        train["eval/dpop/penalty"]
    );
    let reference_after_edit = first(&train, "eval/logps/chosen_after_edit").1;
    let dpop_after_edit = last(&train, "eval/logps/chosen_after_edit");
    assert!(
        dpop_after_edit >= reference_after_edit - 0.05,
        "DPOP: {reference_after_edit} → {dpop_after_edit}"
    );

    // The trained model is a Hugging Face folder that `erebor model inspect` reads.
    let run_dir = sandbox.home().join("runs").join(&run);
    let model = run_dir.join("steps/train/model");
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        assert!(model.join(file).is_file(), "{file} in {}", model.display());
    }
    let show = as_the_readme(&sandbox, &["runs", "show", &run], 0);
    assert!(
        show.lines()
            .any(|l| l.trim_start().starts_with("train.model ") && l.contains("steps/train/model")),
        "{show}"
    );
    let inspect = as_the_readme(&sandbox, &["model", "inspect", model.to_str().unwrap()], 0);
    assert!(
        inspect.contains("LlamaForCausalLM")
            && inspect.contains("4 layers, hidden 128")
            && inspect.contains("vocab 152")
            && inspect.contains("\"chat_template\":true"),
        "{inspect}"
    );
    assert_ne!(
        std::fs::read(model.join("model.safetensors")).unwrap(),
        std::fs::read(run_dir.join("steps/sft/model/model.safetensors")).unwrap(),
        "DPOP changed the SFT weights"
    );
    evaluations_are_recorded(&sandbox, &run, &run_dir);
    let report = std::fs::read_to_string(run_dir.join("steps/report/report.html")).unwrap();
    assert!(
        report.contains("<svg") && report.contains("eval/dpop/penalty"),
        "{report}"
    );

    // The second run reuses every step.
    let plan = as_the_readme(&sandbox, &["plan", quickstart], 0);
    assert!(plan.contains("7 steps, 7 cached, 0 to run"), "{plan}");
    as_the_readme(&sandbox, &["run", quickstart], 0);
    let second = sandbox.latest_run().unwrap();
    assert_ne!(second, run);
    sandbox.with_store(async |store| {
        let steps = store
            .steps_of(&erebor_store::RunId::new(&second))
            .await
            .unwrap();
        assert_eq!(steps.len(), 7);
        for step in &steps {
            assert_eq!(step.status, StepStatus::Cached, "{step:?}");
            assert_eq!(
                step.cached_from_run
                    .as_ref()
                    .map(erebor_store::RunId::as_str),
                Some(run.as_str())
            );
        }
        assert!(
            store
                .attempts_of(&erebor_store::RunId::new(&second))
                .await
                .unwrap()
                .is_empty()
        );
    });
    // dpo-vs-dpop shares the quickstart's data, SFT and DPOP arm: only DPO and the report run.
    let plan = as_the_readme(&sandbox, &["plan", "workflows/dpo-vs-dpop.yaml"], 0);
    assert!(plan.contains("6 steps, 4 cached, 2 to run"), "{plan}");

    dpo_fails_the_quickstart_checks(&sandbox, &run, dpop_after_edit);
    reports_in_chromium(&sandbox, &run);
}

/// The reports users open (docs/reports.md): dpo-vs-dpop now runs only its report step (its
/// arms are reused from the quickstart's and the DPO run's `train`); its page overlays both
/// arms on one chart whose plotted points equal the stored metrics, with the reference model
/// (index 0) dashed; it and `erebor report` of the quickstart open in headless Chromium with
/// every label inside its chart and the page (screenshots in `target/tmp/e2e_quickstart/`).
fn reports_in_chromium(sandbox: &Sandbox, quickstart: &str) {
    let Some(chromium) = browser::chromium() else {
        return;
    };
    as_the_readme(sandbox, &["run", "workflows/dpo-vs-dpop.yaml", "-q"], 0);
    let dpo_vs_dpop = sandbox.latest_run().unwrap();
    let page = sandbox
        .home()
        .join("runs")
        .join(&dpo_vs_dpop)
        .join("steps/compare/report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let svg = browser::chart_svg(&html, "eval/logps/chosen_after_edit");
    assert!(
        svg.contains("class=\"reference\"") && svg.contains("</title>train[dpo] (reused from "),
        "{svg}"
    );
    let dpop = format!("train[dpop] (reused from {quickstart}:train)");
    let plotted = browser::plotted(svg, &dpop);
    let stored = &metrics_of(sandbox, quickstart, "train")["eval/logps/chosen_after_edit"];
    assert_eq!(plotted.len(), stored.len(), "{plotted:?} vs {stored:?}");
    for ((px, py), (index, value)) in plotted.iter().zip(stored) {
        assert!(
            (px - *index as f64).abs() < 0.01 && (py - value).abs() < 1e-4,
            "plotted ({px}, {py}), stored ({index}, {value})"
        );
    }
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e_quickstart");
    std::fs::create_dir_all(&shots).unwrap();
    let out = sandbox.path().join("quickstart-report");
    as_the_readme(
        sandbox,
        &["report", quickstart, "--out", out.to_str().unwrap()],
        0,
    );
    browser::check_in_browser(
        &chromium,
        &out.join("report.html"),
        &shots,
        "quickstart",
        1400,
    );
    browser::check_in_browser(&chromium, &page, &shots, "dpo-vs-dpop", 1400);
}

/// `--set loss=dpo`: the preference is learned, but by pushing the chosen answers down, so the
/// penalty check fails and `erebor run` exits 3; the upstream steps come from the cache.
fn dpo_fails_the_quickstart_checks(sandbox: &Sandbox, dpop_run: &str, dpop_after_edit: f64) {
    let out = as_the_readme(
        sandbox,
        &[
            "run",
            "workflows/quickstart.yaml",
            "--set",
            "loss=dpo",
            "-q",
        ],
        3,
    );
    // DPO also wrecks generation: its answers to the held-out problems lose the format.
    assert!(
        out.contains("expectation failed: train: eval/dpop/penalty <= 15 (got ")
            && out.contains(
                "expectation failed: eval-dpop: bench/arith_heldout/exact_match >= 0.05 (got "
            )
            && !out.contains("reward_accuracy")
            && !out.contains("eval-sft"),
        "{out}"
    );
    let run = sandbox.latest_run().unwrap();
    sandbox.with_store(async |store| {
        for step in store
            .steps_of(&erebor_store::RunId::new(&run))
            .await
            .unwrap()
        {
            let reused = ["sft-data", "sft", "pairs", "eval-sft"].contains(&step.step_id.as_str());
            let expected = if reused {
                StepStatus::Cached
            } else {
                StepStatus::Succeeded
            };
            assert_eq!(step.status, expected, "{step:?}");
            if reused {
                assert_eq!(
                    step.cached_from_run
                        .as_ref()
                        .map(erebor_store::RunId::as_str),
                    Some(dpop_run)
                );
            }
        }
    });
    let train = metrics_of(sandbox, &run, "train");
    assert!(last(&train, "eval/rewards/accuracies") >= 0.9);
    let reference_after_edit = first(&train, "eval/logps/chosen_after_edit").1;
    let dpo_edit_logp = last(&train, "eval/logps/chosen_after_edit");
    assert!(
        dpo_edit_logp <= reference_after_edit - 0.5 && dpo_edit_logp < dpop_after_edit - 0.5,
        "DPO: {reference_after_edit} → {dpo_edit_logp}, DPOP: {dpop_after_edit}"
    );
    let plan = as_the_readme(sandbox, &["plan", "workflows/dpo-vs-dpop.yaml"], 0);
    assert!(plan.contains("6 steps, 5 cached, 1 to run"), "{plan}");
}

/// The two `eval` steps: exact match on the 64 held-out problems in the store under
/// `bench/…` (a random model scores 0, `tests/e2e_eval.rs`; the floor is 0.05), and lm-eval's
/// results and samples files in each step's folder.
fn evaluations_are_recorded(sandbox: &Sandbox, run: &str, run_dir: &std::path::Path) {
    let key = "bench/arith_heldout/exact_match";
    let sft = last(&metrics_of(sandbox, run, "eval-sft"), key);
    let dpop = last(&metrics_of(sandbox, run, "eval-dpop"), key);
    assert!(sft >= 0.05 && dpop >= 0.05, "SFT {sft}, DPOP {dpop}");
    for step in ["eval-sft", "eval-dpop"] {
        let folder = run_dir.join("steps").join(step).join("eval");
        let files: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let samples = files
            .iter()
            .find(|f| f.starts_with("samples_arith_heldout_"))
            .unwrap();
        let lines = std::fs::read_to_string(folder.join(samples)).unwrap();
        assert_eq!(lines.lines().count(), 64, "{step}");
        let results = files.iter().find(|f| f.starts_with("results_")).unwrap();
        let results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(folder.join(results)).unwrap()).unwrap();
        let value = results["results"]["arith_heldout"]["exact_match,none"]
            .as_f64()
            .unwrap();
        assert_eq!(value, if step == "eval-sft" { sft } else { dpop });
        assert_eq!(
            results["n-samples"]["arith_heldout"],
            serde_json::json!({"original": 64, "effective": 64})
        );
    }
}
