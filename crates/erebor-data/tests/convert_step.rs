//! The `convert` step kind end to end: `with:` validation, the dataset folder that training
//! reads, the report, metrics, `skip_invalid`, the contamination refusal and the eval split.

use erebor_core::dataset::{
    DatasetKind, DatasetManifest, read_tokenised_preference, read_tokenised_sft,
};
use erebor_core::{
    AttemptId, CancelToken, FailureClass, MemorySink, OutputValue, RunId, StepContext, StepId,
    StepKind, StepOutputs,
};
use erebor_data::ConvertKind;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn run(
    with: Value,
    base_dir: &Path,
    work_dir: &Path,
) -> (Result<StepOutputs, erebor_core::StepFailure>, MemorySink) {
    let sink = MemorySink::new();
    let result = {
        let ctx = StepContext {
            run_id: RunId::new("r1"),
            step_id: StepId::new("convert"),
            attempt_id: AttemptId::new("a1"),
            with,
            base_dir: base_dir.to_owned(),
            work_dir: work_dir.to_owned(),
            cache_dir: work_dir.join("cache"),
            run_data: None,
            metrics: &sink,
            progress: &sink,
            cancel: CancelToken::new(),
        };
        ConvertKind.run(&ctx)
    };
    (result, sink)
}

fn path_output(outputs: &StepOutputs, name: &str) -> PathBuf {
    match outputs.get(name) {
        Some(OutputValue::Path(path)) => path.clone(),
        other => panic!("{name}: {other:?}"),
    }
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn synthetic_problems_become_sft_and_low_edit_sets_with_a_grouped_eval_split() {
    let dir = tempfile::tempdir().unwrap();
    let with = json!({
        "sources": [{"synthetic": {"count": 400, "seed": 3}, "map": "gsm8k"}],
        "split": {"eval_fraction": 0.1, "seed": 1},
    });
    let (result, sink) = run(with, dir.path(), &dir.path().join("sft"));
    let outputs = result.unwrap();
    let dataset = path_output(&outputs, "dataset");
    let manifest = DatasetManifest::read(&dataset).unwrap();
    assert_eq!(manifest.kind, DatasetKind::Sft);
    let (train, eval) = (&manifest.splits["train"], &manifest.splits["eval"]);
    assert_eq!(train.rows + eval.rows, 400);
    assert_eq!(eval.rows, 40);
    assert_eq!(train.tokens, None, "no tokenizer, no tokens");
    let first = &lines(&dataset.join("train.jsonl"))[0];
    assert_eq!(first["messages"][0]["role"], "user");
    assert!(
        first["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("\n#### ")
    );
    assert_eq!(
        outputs.get("train_rows"),
        Some(&OutputValue::Metric(train.rows as f64))
    );
    assert_eq!(sink.series("convert/eval/rows"), vec![(0, 40.0)]);
    assert_eq!(sink.series("convert/rows_read"), vec![(0, 400.0)]);

    let with = json!({
        "sources": [{"synthetic": {"count": 300, "seed": 3}, "map": {"type": "low_edit", "seed": 9}}],
    });
    let (result, sink) = run(with, dir.path(), &dir.path().join("pairs"));
    let outputs = result.unwrap();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(path_output(&outputs, "report")).unwrap())
            .unwrap();
    let stats = &report["splits"]["train"]["preference"];
    assert_eq!(stats["unit"], "words");
    assert_eq!(report["splits"]["train"]["rows"], 300);
    // One number changed in answers of 2-4 lines of "a op b = c": a small, non-zero distance.
    let mean = stats["edit_distance"]["mean"].as_f64().unwrap();
    assert!(mean > 0.0 && mean < 0.15, "{mean}");
    assert_eq!(
        sink.series("convert/train/edit_distance_mean"),
        vec![(0, mean)]
    );
}

#[test]
fn bad_rows_fail_with_their_place_or_are_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        r#"{"id": "a", "question": "Q1?", "choices": ["x", "y"], "gold": 0}"#,
        r#"{"id": "b", "question": "Q2?", "choices": ["x", "y"], "gold": 5}"#,
        r#"{"id": "c", "question": "Q3?", "choices": ["x", "y"]"#,
        r#"{"id": "d", "question": "Q4?", "choices": ["x", "z"], "gold": 1}"#,
    ];
    std::fs::write(dir.path().join("arc.jsonl"), rows.join("\n")).unwrap();
    let with = json!({"sources": [{"path": "arc.jsonl", "map": "arc"}]});
    let (result, _) = run(with.clone(), dir.path(), &dir.path().join("strict"));
    let failure = result.unwrap_err();
    assert_eq!(failure.class, FailureClass::BadInput);
    assert_eq!(
        failure.message,
        "arc.jsonl:2: field `gold`: 5 is not an index of the 2 choices"
    );

    let mut lenient = with;
    lenient["skip_invalid"] = json!(true);
    let (result, sink) = run(lenient, dir.path(), &dir.path().join("lenient"));
    let outputs = result.unwrap();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(path_output(&outputs, "report")).unwrap())
            .unwrap();
    assert_eq!(report["invalid_rows"]["count"], 2);
    let examples = report["invalid_rows"]["examples"].as_array().unwrap();
    assert_eq!(
        examples[0],
        "arc.jsonl:2: field `gold`: 5 is not an index of the 2 choices"
    );
    assert!(
        examples[1]
            .as_str()
            .unwrap()
            .starts_with("arc.jsonl:3: invalid JSON"),
        "{}",
        examples[1]
    );
    assert_eq!(report["sources"][0]["rows_read"], 4);
    assert_eq!(report["splits"]["train"]["rows"], 2);
    assert_eq!(sink.series("convert/invalid_rows"), vec![(0, 2.0)]);
}

#[test]
fn contamination_is_reported_dropped_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let train: Vec<String> = (0..6)
        .map(|i| format!(r#"{{"id": "t{i}", "question": "Which planet is number {i} from the sun?", "choices": ["a{i}", "b{i}"], "gold": 0}}"#))
        .collect();
    std::fs::write(dir.path().join("train.jsonl"), train.join("\n")).unwrap();
    std::fs::write(
        dir.path().join("eval.jsonl"),
        "{\"question\": \"which planet is number 2 from the SUN\"}\n{\"question\": \"Unrelated.\"}\n",
    )
    .unwrap();
    let mut with = json!({
        "sources": [{"path": "train.jsonl", "map": "arc"}],
        "contamination": {"eval_sets": [{"path": "eval.jsonl", "name": "planets"}]},
    });
    let (result, sink) = run(with.clone(), dir.path(), &dir.path().join("report"));
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(path_output(&result.unwrap(), "report")).unwrap(),
    )
    .unwrap();
    let contamination = &report["contamination"];
    assert_eq!(
        (
            contamination["flagged"].as_u64(),
            contamination["dropped"].as_u64()
        ),
        (Some(1), Some(0))
    );
    assert_eq!(contamination["examples"][0]["id"], "train/t2/1");
    assert_eq!(
        contamination["examples"][0]["overlap"]["eval_set"],
        "planets"
    );
    assert_eq!(contamination["examples"][0]["overlap"]["kind"], "exact");
    assert_eq!(sink.series("convert/contaminated"), vec![(0, 1.0)]);

    with["contamination"]["drop_overlapping"] = json!(true);
    let (result, _) = run(with.clone(), dir.path(), &dir.path().join("drop"));
    let dataset = path_output(&result.unwrap(), "dataset");
    assert_eq!(
        DatasetManifest::read(&dataset).unwrap().splits["train"].rows,
        5
    );

    with["contamination"]["fail_on_overlap"] = json!(true);
    let (result, _) = run(with, dir.path(), &dir.path().join("refuse"));
    let failure = result.unwrap_err();
    assert_eq!(failure.class, FailureClass::BadInput);
    assert!(
        failure.message.contains("1 training rows overlap"),
        "{}",
        failure.message
    );
    assert!(
        failure
            .message
            .contains("train/t2/1 overlaps planets item 0"),
        "{}",
        failure.message
    );
}

#[test]
fn validation_names_the_offending_field() {
    let kind = ConvertKind;
    let base = Path::new(".");
    let error = kind
        .validate(
            &json!({"sources": [{"path": "x.jsonl", "map": "arcc"}]}),
            base,
        )
        .unwrap_err();
    assert_eq!(error.path_string(), "sources.0.map");
    assert!(
        error.message.contains("unknown variant `arcc`"),
        "{}",
        error.message
    );
    let error = kind
        .validate(&json!({"sources": [{"path": "a.jsonl", "map": "arc"}, {"path": "b.jsonl", "map": "sharegpt"}]}), base)
        .unwrap_err();
    assert_eq!(error.path_string(), "sources.1.map");
    let error = kind
        .validate(
            &json!({"sources": [{"path": "a.jsonl", "map": "arc"}], "max_length": 512}),
            base,
        )
        .unwrap_err();
    assert_eq!(error.path_string(), "max_length");
    let error = kind
        .validate(&json!({"sources": [{"map": "arc"}]}), base)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "sources.0: give exactly one of `path` and `synthetic`"
    );
    let error = kind
        .validate(&json!({"sources": [], "skip_invald": true}), base)
        .unwrap_err();
    assert_eq!(error.path_string(), "skip_invald");
    assert!(error.expected_keys.contains(&"skip_invalid".to_owned()));
}

#[test]
fn a_tokenizer_makes_the_token_files_training_reads() {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if !shared.exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "../shared is absent and CI=true: shared fixtures are required on CI"
        );
        println!("skipping: ../shared is absent");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tokenizer = shared.join("tokenizers/smollm2").display().to_string();
    let with = json!({
        "sources": [{"synthetic": {"count": 60, "seed": 5}, "map": {"type": "low_edit", "seed": 2}}],
        "tokenizer": tokenizer,
        "split": {"eval_rows": 10},
        "max_length": 4096,
    });
    let (result, _) = run(with, dir.path(), &dir.path().join("pref"));
    let outputs = result.unwrap();
    let dataset = path_output(&outputs, "dataset");
    let manifest = DatasetManifest::read(&dataset).unwrap();
    let reference = manifest.tokenizer.as_ref().unwrap();
    assert_eq!(reference.chat_template, "checkpoint");
    assert_eq!(reference.tokenizer_sha256.len(), 64);
    let rows = read_tokenised_preference(&dataset, "train").unwrap();
    let records = lines(&dataset.join("train.jsonl"));
    assert_eq!(rows.len(), records.len());
    assert_eq!(rows.len() as u64, manifest.splits["train"].rows);
    assert_eq!(rows[0].id, records[0]["id"].as_str().unwrap());
    assert!(
        rows.iter()
            .all(|row| row.chosen_ids != row.rejected_ids && row.chosen_ids.ends_with(&[2, 198]))
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(path_output(&outputs, "report")).unwrap())
            .unwrap();
    assert_eq!(report["splits"]["train"]["preference"]["unit"], "tokens");
    assert_eq!(report["length_filter"]["removed"], 0);

    // SFT: lengths without a limit, then a limit at the median drops exactly the longer rows.
    let sft = |max_length: Option<usize>, name: &str| {
        let mut with = json!({
            "sources": [{"synthetic": {"count": 20, "seed": 5}, "map": "gsm8k"}],
            "tokenizer": shared.join("tokenizers/smollm2").display().to_string(),
        });
        if let Some(max) = max_length {
            with["max_length"] = json!(max);
        }
        let (result, _) = run(with, dir.path(), &dir.path().join(name));
        let outputs = result.unwrap();
        let dataset = path_output(&outputs, "dataset");
        let report: Value = serde_json::from_str(
            &std::fs::read_to_string(path_output(&outputs, "report")).unwrap(),
        )
        .unwrap();
        (read_tokenised_sft(&dataset, "train").unwrap(), report)
    };
    let (all, _) = sft(None, "sft-all");
    assert_eq!(all.len(), 20);
    assert!(
        all.iter()
            .all(|row| row.target_tokens() > 0 && row.target_spans.len() == 1)
    );
    let mut lengths: Vec<usize> = all.iter().map(|row| row.input_ids.len()).collect();
    lengths.sort_unstable();
    let limit = lengths[10];
    let kept = lengths.iter().filter(|&&length| length <= limit).count();
    let (short, report) = sft(Some(limit), "sft-short");
    assert_eq!(short.len(), kept);
    assert!(short.iter().all(|row| row.input_ids.len() <= limit));
    assert_eq!(
        report["length_filter"]["removed"].as_u64(),
        Some((20 - kept) as u64)
    );
}

#[test]
fn an_explicit_eval_source_wins_over_an_identical_training_row() {
    let dir = tempfile::tempdir().unwrap();
    let row = |id: &str, question: &str| {
        format!(r#"{{"id": "{id}", "question": "{question}", "answer": "1 + 1 = 2\n#### 2"}}"#)
    };
    std::fs::write(
        dir.path().join("train.jsonl"),
        [row("a", "Q1"), row("b", "Q2"), row("c", "Q3")].join("\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("held.jsonl"), row("z", "Q2")).unwrap();
    let with = json!({"sources": [
        {"path": "train.jsonl", "map": "gsm8k"},
        {"path": "held.jsonl", "map": "gsm8k", "split": "eval"},
    ]});
    let (result, _) = run(with, dir.path(), &dir.path().join("work"));
    let dataset = path_output(&result.unwrap(), "dataset");
    let ids = |split: &str| -> Vec<String> {
        lines(&dataset.join(format!("{split}.jsonl")))
            .iter()
            .map(|row| row["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids("train"), ["train/a", "train/c"]);
    assert_eq!(ids("eval"), ["held/z"]);
}

#[test]
fn a_cancelled_step_stops_with_the_cancelled_class() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MemorySink::new();
    let cancel = CancelToken::new();
    cancel.cancel();
    let ctx = StepContext {
        run_id: RunId::new("r1"),
        step_id: StepId::new("convert"),
        attempt_id: AttemptId::new("a1"),
        with: json!({"sources": [{"synthetic": {"count": 10000}, "map": "gsm8k"}]}),
        base_dir: dir.path().to_owned(),
        work_dir: dir.path().join("work"),
        cache_dir: dir.path().join("cache"),
        run_data: None,
        metrics: &sink,
        progress: &sink,
        cancel,
    };
    let failure = ConvertKind.run(&ctx).unwrap_err();
    assert_eq!(failure.class, FailureClass::Cancelled);
    assert!(!dir.path().join("work/dataset").exists());
}

/// Levenshtein distance, the textbook O(n·m) table: the independent reference for the report.
fn edit_distance(a: &[u32], b: &[u32]) -> usize {
    let mut table: Vec<Vec<usize>> = (0..=a.len()).map(|i| vec![i; b.len() + 1]).collect();
    for (j, cell) in table[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitute = table[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            table[i][j] = substitute.min(table[i - 1][j] + 1).min(table[i][j - 1] + 1);
        }
    }
    table[a.len()][b.len()]
}

#[test]
fn token_edit_distance_measures_the_answers_without_the_end_of_turn_tokens() {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if !shared.exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "../shared is absent and CI=true: shared fixtures are required on CI"
        );
        println!("skipping: ../shared is absent");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let arc = shared.join("data/leaderboard/arc_challenge_train.jsonl");
    let with = json!({
        "sources": [{"path": arc.display().to_string(), "map": "arc", "limit": 300}],
        "tokenizer": shared.join("tokenizers/smollm2").display().to_string(),
    });
    let (result, sink) = run(with, dir.path(), &dir.path().join("arc"));
    let outputs = result.unwrap();
    let dataset = path_output(&outputs, "dataset");
    let rows = read_tokenised_preference(&dataset, "train").unwrap();
    assert_eq!(rows.len(), 900, "300 questions, 3 wrong answers each");
    // SmolLM2's ChatML closes every answer with `<|im_end|>` (id 2) and a newline (id 198).
    let turn_end = [2, 198];
    let distance = |chosen: &[u32], rejected: &[u32]| {
        edit_distance(chosen, rejected) as f64 / chosen.len().max(rejected.len()) as f64
    };
    let mean_of = |distances: Vec<f64>| distances.iter().sum::<f64>() / distances.len() as f64;
    let expected = mean_of(
        rows.iter()
            .map(|row| {
                assert!(
                    row.chosen_ids.ends_with(&turn_end) && row.rejected_ids.ends_with(&turn_end)
                );
                distance(
                    &row.chosen_ids[..row.chosen_ids.len() - 2],
                    &row.rejected_ids[..row.rejected_ids.len() - 2],
                )
            })
            .collect(),
    );
    let with_turn_end = mean_of(
        rows.iter()
            .map(|row| distance(&row.chosen_ids, &row.rejected_ids))
            .collect(),
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(path_output(&outputs, "report")).unwrap())
            .unwrap();
    let stats = &report["splits"]["train"]["preference"];
    assert_eq!(stats["unit"], "tokens");
    let mean = stats["edit_distance"]["mean"].as_f64().unwrap();
    assert!((mean - expected).abs() < 1e-9, "{mean} vs {expected}");
    println!("ARC token edit distance: {mean} ({with_turn_end} counting the end-of-turn tokens)");
    // Short answers: the two shared end-of-turn tokens weigh a lot, and different answers share
    // few tokens (the DPOP paper reports 90% for its ARC pairs).
    assert!(
        mean > 0.6 && mean > with_turn_end + 0.15,
        "{mean} vs {with_turn_end}"
    );
    assert_eq!(
        sink.series("convert/train/edit_distance_mean"),
        vec![(0, mean)]
    );
}
