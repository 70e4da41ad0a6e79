//! End-to-end: reports as users see them, checked in a real headless Chromium.
//!
//! Two small real workflows run through the binary (command steps that print the curves a
//! quickstart and a DPO-vs-DPOP run record, in seconds, instead of three minutes of training):
//! `quickstart-report` (SFT, DPOP, an evaluation, a report step) and `dpo-vs-dpop-report`, whose
//! `train[dpop]` arm is reused from the first run's `train` through the cache (as the real
//! dpo-vs-dpop reuses the quickstart's DPOP), with leaderboard evaluations and MT-Bench per arm.
//! The report step's page of each run and `erebor report RUN --compare RUN:STEP` are opened in
//! Chromium; a script added to a copy of each page measures every chart's text (tick labels,
//! legends, titles) and every table from the page's own layout and reports what lies outside its
//! chart or the page, and whether the page scrolls sideways. Screenshots are kept under the test
//! target's tmp folder (`e2e_report_browser/`). The plotted points of a chart, read back from the
//! SVG through its tick labels, equal the metrics `erebor metrics` returns. Made the last tick of a
//! schedule (ticks written through the store as the scheduler writes them), the quickstart run's
//! report charts the schedule's history with the regressed run marked on the regressed key only.
//!
//! Chromium (`chromium`, or `EREBOR_CHROMIUM`) must be installed; under CI=true the test fails
//! without it, elsewhere it skips with a message.

#[path = "browser/mod.rs"]
mod browser;
mod common;

use browser::{chart_svg, check_in_browser, chromium, plotted};
use common::{Backend, Sandbox};
use std::path::{Path, PathBuf};

const SFT: &str = r#"#!/bin/sh
# SFT curves: held-out token loss from ln(152) down, training loss with noise.
set -eu
awk 'BEGIN {
  for (i = 0; i <= 710; i += 10) {
    t = i / 710
    print "erebor:metric eval/loss " i " " 0.19 + (5.0239 - 0.19) * exp(-7 * t)
    if (i > 0) print "erebor:metric train/loss " i " " 0.15 + 4.9 * exp(-6 * t) + 0.05 * sin(i)
  }
}'
"#;

const PREFS: &str = r#"#!/bin/sh
# Preference curves of one loss (dpo | dpop), shaped as the quickstart records them: index 0 of
# the eval keys evaluates the reference model itself.
set -eu
loss=${1:?loss}
awk -v loss="$loss" 'BEGIN {
  ref = -0.129769
  for (i = 0; i <= 176; i++) {
    t = i / 176
    if (i > 0) {
      if (loss == "dpo") { lc = -22.4 - 9 * t * t; pen = 50 * (0.02 + 6 * t * t) }
      else { lc = -22.4 + 0.4 * t; pen = 0.2 * exp(-4 * t) }
      print "erebor:metric train/loss " i " " 0.693147 * exp(-3 * t) + 0.02 * sin(i)
      print "erebor:metric rewards/margins " i " " 2.4 * (1 - exp(-4 * t))
      print "erebor:metric dpop/penalty " i " " pen
      print "erebor:metric logps/chosen " i " " lc
    }
    if (i % 22 == 0) {
      if (loss == "dpo") { ae = ref - 3.3 * t; epen = 165 * t } else { ae = ref + 0.06 * t; epen = 0.4 * t }
      acc = (i == 0) ? 0 : 0.62 + 0.33 * (1 - exp(-5 * t))
      print "erebor:metric eval/logps/chosen_after_edit " i " " ae
      print "erebor:metric eval/rewards/accuracies " i " " acc
      print "erebor:metric eval/dpop/penalty " i " " epen
    }
  }
  print "erebor:metric reward_accuracy 0 " acc
}'
"#;

const LEADERBOARD: &str = r#"#!/bin/sh
# Open LLM Leaderboard scores of one model and an lm-eval results file with its few-shot setting.
set -eu
model=${1:?model}
if [ "$model" = dpo ]; then s=0; else s=1; fi
awk -v s="$s" 'BEGIN {
  split("arc_challenge/acc_norm hellaswag/acc_norm mmlu/acc truthfulqa_mc2/acc winogrande/acc gsm8k/exact_match,strict-match", keys, " ")
  split("0.2654 0.3121 0.2487 0.4190 0.5130 0.0152", base, " ")
  total = 0
  for (k = 1; k <= 6; k++) {
    v = base[k] + s * 0.011 * k
    total += v
    print "erebor:metric bench/" keys[k] " 0 " v
  }
  print "erebor:metric bench/arc_challenge/acc_norm_stderr 0 0.0129"
  print "erebor:metric bench/leaderboard/average 0 " total / 6
}'
cat > results.json <<JSON
{"results": {}, "n-shot": {"arc_challenge": 25, "hellaswag": 10, "mmlu": 5, "truthfulqa_mc2": 0, "winogrande": 5, "gsm8k": 5}}
JSON
"#;

const MT_BENCH: &str = r#"#!/bin/sh
# MT-Bench scores (1-10) of one model per FastChat category and turn.
set -eu
model=${1:?model}
if [ "$model" = dpo ]; then s=0; else s=1; fi
awk -v s="$s" 'BEGIN {
  split("writing roleplay reasoning math coding extraction stem humanities", c, " ")
  split("6.1 5.8 3.2 2.1 2.6 4.4 6.3 7.0", base, " ")
  for (k = 1; k <= 8; k++) print "erebor:metric mt_bench/category/" c[k] " 0 " base[k] + s * 0.4 * (k % 3)
  print "erebor:metric mt_bench/turn1 0 " 5.2 + s * 0.3
  print "erebor:metric mt_bench/turn2 0 " 4.1 + s * 0.5
  print "erebor:metric mt_bench/score 0 " 4.65 + s * 0.4
}'
"#;

const SFT_STEP: &str = r"  - id: sft
    uses: command
    with: {argv: [./bin/sft.sh]}
    expect: {eval/loss: '<= 0.3'}
";

const KEYS: &str = "[eval/logps/chosen_after_edit, eval/rewards/accuracies, eval/dpop/penalty, train/loss, rewards/margins, logps/chosen, dpop/penalty]";

fn quickstart_yaml() -> String {
    format!(
        r"name: quickstart-report
description: SFT then DPOP (curves printed by scripts), an evaluation and a report.
params:
  loss: dpop
steps:
{SFT_STEP}
  - id: train
    uses: command
    needs: [sft]
    with:
      argv: [./bin/prefs.sh, '${{{{ params.loss }}}}']
      metric_outputs: [reward_accuracy]
    expect:
      reward_accuracy: '>= 0.9'
      eval/dpop/penalty: '<= 5'

  - id: report
    uses: report
    needs: [train]
    with:
      title: Quickstart — DPOP on low-edit arithmetic pairs
      steps: [train]
      keys: {KEYS}

  - id: eval-dpop
    uses: command
    needs: [train]
    with: {{argv: [./bin/leaderboard.sh, dpop], outputs: {{results: results.json}}}}
"
    )
}

fn dpo_vs_dpop_yaml() -> String {
    format!(
        r"name: dpo-vs-dpop-report
description: DPO and DPOP from the same SFT model, evaluated, MT-Bench, compared.
steps:
{SFT_STEP}
  - id: train
    uses: command
    needs: [sft]
    matrix: {{loss: [dpo, dpop]}}
    with:
      argv: [./bin/prefs.sh, '${{{{ matrix.loss }}}}']
      metric_outputs: [reward_accuracy]

  - id: eval
    uses: command
    needs: [train]
    matrix: {{model: [dpo, dpop]}}
    with: {{argv: [./bin/leaderboard.sh, '${{{{ matrix.model }}}}'], outputs: {{results: results.json}}}}

  - id: mt-bench
    uses: command
    needs: [train]
    matrix: {{model: [dpo, dpop]}}
    with: {{argv: [./bin/mt-bench.sh, '${{{{ matrix.model }}}}']}}

  - id: compare
    uses: report
    needs: [train, eval, mt-bench]
    with:
      title: DPO vs DPOP on low-edit pairs
      steps: [train]
      keys: {KEYS}
"
    )
}

/// (index, value) of `key` of `step` as `erebor metrics --format json` returns them.
fn stored(sandbox: &Sandbox, run: &str, step: &str, key: &str) -> Vec<(f64, f64)> {
    let json = sandbox.expect(
        &[
            "metrics", run, "--step", step, "--key", key, "--format", "json",
        ],
        0,
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let mut points: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| (r["index"].as_f64().unwrap(), r["value"].as_f64().unwrap()))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

fn assert_plotted_equals_stored(plotted: &[(f64, f64)], stored: &[(f64, f64)], what: &str) {
    assert_eq!(
        plotted.len(),
        stored.len(),
        "{what}: {plotted:?} vs {stored:?}"
    );
    for ((px, py), (sx, sy)) in plotted.iter().zip(stored) {
        assert!(
            (px - sx).abs() < 0.01 && (py - sy).abs() < 1e-4,
            "{what}: plotted ({px}, {py}), stored ({sx}, {sy})"
        );
    }
}

/// Six nightly ticks of a schedule `nightly` whose last one started `run`, evaluated as the
/// scheduler records them: the last run's DPOP penalty is outside the band of the earlier ones.
fn schedule_history(sandbox: &Sandbox, run: &str) {
    sandbox.with_store(async |store| {
        let schedule = erebor_store::Schedule {
            name: "nightly".into(),
            workflow_file: "quickstart.yaml".into(),
            cron: "0 3 * * *".into(),
            params: serde_json::json!({}),
            enabled: true,
            tz: "UTC".into(),
            missed: "skip".into(),
            overlap: "skip".into(),
            regression_k: 3.0,
            ..Default::default()
        };
        store.put_schedule(&schedule).await.unwrap();
        let penalties = [0.74, 0.81, 0.78, 0.76, 0.8, 2.9];
        for (day, penalty) in penalties.iter().enumerate() {
            let tick_at = 1_764_558_000_000 + i64::try_from(day).unwrap() * 86_400_000;
            let run_id = if day == 5 { run.to_owned() } else { format!("r-earlier-{day}") };
            let tick = erebor_store::NewTick {
                schedule: "nightly",
                tick_at,
                state: erebor_store::TickState::Started,
                run_id: Some(&run_id),
                error: None,
                host: "ci",
                pid: 1,
            };
            assert!(store.claim_tick(&tick).await.unwrap());
            let regressed = day == 5;
            let evaluation = erebor_store::TickEvaluation {
                fresh: true,
                measurements: std::collections::BTreeMap::from([
                    ("train/eval/dpop/penalty".to_owned(), *penalty),
                    ("train/reward_accuracy".to_owned(), 0.95 + 0.002 * day as f64),
                ]),
                regressed,
                reasons: if regressed {
                    vec!["train/eval/dpop/penalty = 2.9 is outside median 0.78 ± 3·MAD 0.02 = [0.72, 0.84] of 5 earlier fresh runs".to_owned()]
                } else {
                    Vec::new()
                },
            };
            store
                .record_tick_evaluation("nightly", tick_at, &evaluation)
                .await
                .unwrap();
        }
    });
}

fn sandbox_with_workflows() -> Sandbox {
    let sandbox = Sandbox::new(Backend::Sqlite).unwrap();
    sandbox.script("bin/sft.sh", SFT);
    sandbox.script("bin/prefs.sh", PREFS);
    sandbox.script("bin/leaderboard.sh", LEADERBOARD);
    sandbox.script("bin/mt-bench.sh", MT_BENCH);
    sandbox.write("quickstart.yaml", &quickstart_yaml());
    sandbox.write("dpo-vs-dpop.yaml", &dpo_vs_dpop_yaml());
    sandbox
}

#[test]
fn reports_of_real_runs_fit_the_page_in_chromium_and_plot_the_stored_metrics() {
    let Some(chromium) = chromium() else { return };
    let sandbox = sandbox_with_workflows();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e_report_browser");
    std::fs::create_dir_all(&shots).unwrap();

    sandbox.expect(&["run", "quickstart.yaml", "-q"], 0);
    let quickstart = sandbox.latest_run().unwrap();
    sandbox.expect(&["run", "dpo-vs-dpop.yaml", "-q"], 0);
    let compare = sandbox.latest_run().unwrap();
    // The DPOP arm came from the quickstart's `train` through the cache, as in the real recipes.
    let reused = format!("train[dpop] (reused from {quickstart}:train)");

    let runs = sandbox.home().join("runs");
    let quickstart_page = runs.join(&quickstart).join("steps/report/report.html");
    let compare_page = runs.join(&compare).join("steps/compare/report.html");
    let html = std::fs::read_to_string(&compare_page).unwrap();
    // One chart per key with both arms and the reference, a legend, no "no data" for the reused arm.
    let svg = chart_svg(&html, "eval/logps/chosen_after_edit");
    for legend in ["train[dpo]", reused.as_str(), "common start (index 0)"] {
        assert!(
            svg.contains(&format!("</title>{legend}</text>")),
            "legend {legend}: {svg}"
        );
    }
    assert!(!html.contains("no data"));
    for arm in ["train[dpo]", &reused] {
        let step = arm.split(' ').next().unwrap();
        let key = "eval/logps/chosen_after_edit";
        assert_plotted_equals_stored(
            &plotted(svg, arm),
            &stored(&sandbox, &compare, step, key),
            arm,
        );
    }
    let loss = chart_svg(&html, "train/loss");
    assert_plotted_equals_stored(
        &plotted(loss, "train[dpo]"),
        &stored(&sandbox, &compare, "train[dpo]", "train/loss"),
        "train[dpo] train/loss",
    );
    // Tables: leaderboard tasks × both arms with the few-shot setting; MT-Bench turns.
    for expected in [
        "<td>arc_challenge</td><td class=\"text\">acc_norm</td><td class=\"text\">25-shot</td>",
        "<th>Leaderboard average</th>",
        "<th>eval[dpo]</th><th>eval[dpop]</th>",
        "data-chart=\"MT-Bench score per category\"",
        "<tr><td>mt-bench[dpop]</td><td>5.50</td><td>4.60</td><td>5.05</td></tr>",
    ] {
        assert!(html.contains(expected), "{expected}");
    }
    let quickstart_html = std::fs::read_to_string(&quickstart_page).unwrap();
    assert!(
        quickstart_html.contains("Expectations: 3 of 3 hold"),
        "{quickstart_html}"
    );

    let out = compared_report(&sandbox, &compare, &quickstart);

    let history = history_report(&sandbox, &quickstart);

    let mut charts = 0;
    for (page, name) in [
        (&history.join("report.html"), "quickstart-history"),
        (&quickstart_page, "quickstart"),
        (&compare_page, "dpo-vs-dpop"),
        (&out.join("report.html"), "report-compare"),
    ] {
        charts += check_in_browser(&chromium, page, &shots, name, 1400);
    }
    // A narrow window: charts scale down, tables scroll inside their box, nothing leaves the page.
    charts += check_in_browser(&chromium, &compare_page, &shots, "dpo-vs-dpop-narrow", 700);
    assert!(charts >= 30, "{charts} charts checked");
    eprintln!("screenshots in {}", shots.display());
}

/// `erebor report` of run `compare` with `quickstart:train` added, into a folder of its own
/// (returned): the added step is charted, and every chart has its PNG.
fn compared_report(sandbox: &Sandbox, compare: &str, quickstart: &str) -> PathBuf {
    let out = sandbox.path().join("compared");
    let printed = sandbox.expect(
        &[
            "report",
            compare,
            "--compare",
            &format!("{quickstart}:train"),
            "--out",
            out.to_str().unwrap(),
        ],
        0,
    );
    assert!(printed.contains("report.html"), "{printed}");
    let compared_html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(compared_html.contains(&format!("</title>{quickstart}:train</text>")));
    for chart in [
        "steps",
        "sft-eval-loss",
        "train-eval-logps-chosen_after_edit",
        "mt_bench-categories",
    ] {
        let png = std::fs::read(out.join("charts").join(format!("{chart}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{chart}");
    }
    out
}

/// The quickstart run as the last tick of a nightly schedule: its report (in the folder
/// returned) charts the history, the penalty's last tick marked as a regression.
fn history_report(sandbox: &Sandbox, quickstart: &str) -> PathBuf {
    schedule_history(sandbox, quickstart);
    let history = sandbox.path().join("history");
    sandbox.expect(
        &["report", quickstart, "--out", history.to_str().unwrap()],
        0,
    );
    let history_html = std::fs::read_to_string(history.join("report.html")).unwrap();
    let penalty = chart_svg(&history_html, "train/eval/dpop/penalty (nightly)");
    assert_eq!(
        penalty.matches("class=\"regression\"").count(),
        1,
        "{penalty}"
    );
    let accuracy = chart_svg(&history_html, "train/reward_accuracy (nightly)");
    assert_eq!(
        accuracy.matches("class=\"regression\"").count(),
        0,
        "{accuracy}"
    );
    history
}
