//! Custom YAML tasks: lm-eval 0.4 task files reproduce the built-in prompts, generation with an
//! exact-match regex on converted-dataset rows, and clear errors for bad files and rows.

// Scores of single documents are exactly 0 or 1: equality is the check.
#![allow(clippy::float_cmp)]

use std::path::Path;

use erebor_eval::{CustomTask, Harness, Request, Response, Task, TaskOptions, leaderboard_tasks};

fn options(dir: &Path, harness: Harness, num_fewshot: Option<usize>) -> TaskOptions {
    TaskOptions {
        data_dir: dir.to_path_buf(),
        num_fewshot,
        harness,
        gsm8k_exemplars: None,
        fewshot_seed: None,
        hub_cache: std::path::PathBuf::new(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const ANSWER_KEYS: [&str; 3] = ["A", "B", "C"];

fn arc_rows(count: usize, offset: usize) -> String {
    (0..count)
        .map(|i| {
            let n = i + offset;
            serde_json::json!({
                "id": format!("q{n}"),
                "question": format!("Which number is {n}?"),
                "choices": {"text": [format!("{n}"), format!("{}", n + 1), "none"], "label": ["A", "B", "C"]},
                "answerKey": ANSWER_KEYS[n % 3],
            })
            .to_string()
                + "\n"
        })
        .collect()
}

/// lm-eval 0.4.12's `arc_easy.yaml`, with the data read from local JSON files.
const ARC_YAML: &str = r#"
tag:
  - ai2_arc
task: arc_easy
dataset_path: json
dataset_kwargs:
  data_files:
    train: arc_easy_train.jsonl
    test: arc_easy_test.jsonl
output_type: multiple_choice
training_split: train
test_split: test
doc_to_text: "Question: {{question}}\nAnswer:"
doc_to_target: "{{choices.label.index(answerKey)}}"
doc_to_choice: "{{choices.text}}"
should_decontaminate: true
doc_to_decontamination_query: "Question: {{question}}\nAnswer:"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"#;

#[test]
fn lm_eval_arc_yaml_reproduces_the_built_in_v04_prompts() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "arc_easy_test.jsonl", &arc_rows(6, 0));
    write(dir.path(), "arc_easy_train.jsonl", &arc_rows(30, 100));
    let yaml = write(dir.path(), "arc.yaml", ARC_YAML);
    let options = options(dir.path(), Harness::V04, Some(3));
    let custom = CustomTask::from_file(&yaml, &options).unwrap();
    let built_in = leaderboard_tasks(&["arc_easy"], &options)
        .unwrap()
        .remove(0);
    let (a, b) = (
        custom.instances(None).unwrap(),
        built_in.instances(None).unwrap(),
    );
    assert_eq!(a.len(), 6);
    for (custom, built_in) in a.iter().zip(&b) {
        assert_eq!(custom.requests, built_in.requests, "doc {}", custom.doc_id);
        assert_eq!(custom.target, built_in.target);
    }
    assert_eq!(custom.version(), serde_json::json!(1.0));
    let lls = [-1.0, -3.0, -2.0];
    let responses: Vec<Response> = lls
        .iter()
        .map(|&logprob| Response::Loglikelihood {
            logprob,
            is_greedy: false,
        })
        .collect();
    let metrics = custom.process_results(&a[1], &responses).unwrap();
    assert_eq!(
        metrics,
        vec![("acc".to_string(), 0.0), ("acc_norm".to_string(), 0.0)],
        "gold of doc 1 is B"
    );
    let metrics = custom.process_results(&a[0], &responses).unwrap();
    assert_eq!(
        metrics,
        vec![("acc".to_string(), 1.0), ("acc_norm".to_string(), 0.0)],
        "doc 0: gold A; normalised by length \"none\" (-2/4) beats \"0\" (-1/1)"
    );
}

/// The quickstart's held-out arithmetic: rows as the `convert` step writes them (`eval.jsonl`).
const ARITH_YAML: &str = r#####"
task: arith_heldout
dataset:
  path: dataset
test_split: eval
output_type: generate_until
doc_to_text: "<|im_start|>user\n{{ messages[0].content }}<|im_end|>\n<|im_start|>assistant\n"
doc_to_target: "{{ messages[1].content }}"
num_fewshot: 0
generation_kwargs:
  until: ["<|im_end|>"]
  max_gen_toks: 64
metric_list:
  - metric: exact_match
    regex: "#### (\\-?[0-9\\.\\,]+)"
"#####;

#[test]
fn generation_with_exact_match_on_the_final_answer() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("dataset")).unwrap();
    let row = |id: &str, q: &str, a: &str| {
        serde_json::json!({"id": id, "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}).to_string()
    };
    let rows = [
        row(
            "0",
            "Tom has 3 apples and gets 4. How many?",
            "3 + 4 = 7\n#### 7",
        ),
        row("1", "12 - 5?", "12 - 5 = 7\n#### 7"),
    ];
    write(
        &dir.path().join("dataset"),
        "eval.jsonl",
        &(rows.join("\n") + "\n"),
    );
    let yaml = write(dir.path(), "arith.yaml", ARITH_YAML);
    let task = CustomTask::from_file(&yaml, &options(dir.path(), Harness::B281b09, None)).unwrap();
    let instances = task.instances(None).unwrap();
    let first = instances.iter().find(|i| i.doc_id == 0).unwrap();
    assert_eq!(
        first.requests,
        vec![Request::GenerateUntil {
            context: "<|im_start|>user\nTom has 3 apples and gets 4. How many?<|im_end|>\n<|im_start|>assistant\n".into(),
            until: vec!["<|im_end|>".into()],
            max_gen_toks: 64,
        }]
    );
    assert_eq!(first.target, "3 + 4 = 7\n#### 7");
    let score = |text: &str| {
        task.process_results(first, &[Response::Generated(text.into())])
            .unwrap()[0]
            .1
    };
    assert_eq!(score("3 + 4 = 7\n#### 7"), 1.0);
    assert_eq!(
        score("3+4 makes 7, so\n#### 7"),
        1.0,
        "only the final answer counts"
    );
    assert_eq!(score("3 + 4 = 8\n#### 8"), 0.0);
    assert_eq!(score("7"), 0.0, "no #### answer");
    assert_eq!(task.metrics()[0].name, "exact_match");
    // filtered_resps hold what is compared: the extracted answer, as lm-eval's regex filter.
    let filtered =
        |text: &str| task.filtered_responses("none", first, &[Response::Generated(text.into())]);
    assert_eq!(
        filtered("3+4 makes 7, so\n#### 7 apples"),
        vec![serde_json::json!("7")]
    );
    assert_eq!(
        filtered("no answer here"),
        vec![serde_json::json!("[invalid]")]
    );
}

#[test]
fn fewshot_from_the_scored_split_never_shows_the_document_itself() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = String::new();
    for i in 0..4 {
        rows.push_str(&format!("{{\"q\": \"q{i}\", \"a\": \"a{i}\"}}\n"));
    }
    write(dir.path(), "data.jsonl", &rows);
    let yaml = "task: tiny\ndataset: {data_files: {test: data.jsonl}}\ntest_split: test\ndoc_to_text: \"{{q}}\"\ndoc_to_target: a\nnum_fewshot: 3\n";
    let path = write(dir.path(), "tiny.yaml", yaml);
    for harness in [Harness::B281b09, Harness::V04] {
        let task = CustomTask::from_file(&path, &options(dir.path(), harness, None)).unwrap();
        for instance in task.instances(None).unwrap() {
            let Request::GenerateUntil { context, until, .. } = &instance.requests[0] else {
                panic!("generation")
            };
            let own = format!("q{}", instance.doc_id);
            assert!(context.ends_with(&own));
            assert_eq!(context.matches(&own).count(), 1, "{context:?}");
            assert_eq!(
                context.matches("\n\n").count(),
                3,
                "three examples: {context:?}"
            );
            assert_eq!(
                until,
                &["\n\n"],
                "the default stop string is the few-shot delimiter"
            );
        }
    }
}

#[test]
fn an_unknown_key_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "task: t\ndataset: {path: x.jsonl}\ntest_split: test\ndoc_to_text: q\ndoc_to_target: a\nprocess_docs: utils.process\n";
    let path = write(dir.path(), "bad.yaml", yaml);
    let error = CustomTask::from_file(&path, &options(dir.path(), Harness::B281b09, None))
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("bad.yaml"), "{error}");
    assert!(error.contains("process_docs"), "{error}");
    assert!(
        error.contains("line 6") || error.contains("6:"),
        "line number: {error}"
    );
}

#[test]
fn a_row_missing_a_field_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "arc_easy_test.jsonl",
        &(arc_rows(2, 0) + "{\"question\": \"q?\", \"answerKey\": \"A\"}\n"),
    );
    let error = leaderboard_tasks(
        &["arc_easy"],
        &options(dir.path(), Harness::B281b09, Some(0)),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        error.ends_with("arc_easy_test.jsonl:3: missing field `choices`"),
        "{error}"
    );
    let yaml = "task: t\ndataset: {path: rows.jsonl}\ntest_split: test\ndoc_to_text: \"{{ question }}\"\ndoc_to_target: a\n";
    write(
        dir.path(),
        "rows.jsonl",
        "{\"question\": \"1?\", \"a\": \"1\"}\n{\"a\": \"2\"}\n",
    );
    let path = write(dir.path(), "t.yaml", yaml);
    let task = CustomTask::from_file(&path, &options(dir.path(), Harness::V04, None)).unwrap();
    let error = task.instances(None).err().unwrap().to_string();
    assert!(error.contains("rows.jsonl:2: doc_to_text"), "{error}");
    assert!(error.contains("question"), "{error}");
}

#[test]
fn a_metric_that_does_not_fit_the_output_type_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rows.jsonl", "{\"q\": \"1?\", \"a\": \"1\"}\n");
    let yaml = "task: t\ndataset: {path: rows.jsonl}\ntest_split: test\ndoc_to_text: q\ndoc_to_target: a\nmetric_list: [{metric: acc_norm}]\n";
    let path = write(dir.path(), "t.yaml", yaml);
    let error = CustomTask::from_file(&path, &options(dir.path(), Harness::V04, None))
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("acc_norm") && error.contains("generate_until"),
        "{error}"
    );
}

#[test]
fn the_quickstart_task_reads_the_converted_datasets_held_out_split_from_the_data_dir() {
    let task_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/tasks/arith.yaml");
    let dataset = tempfile::tempdir().unwrap();
    let row = serde_json::json!({"id": "arith:7", "messages": [
        {"role": "user", "content": "Mia has 12 coins. She gets 5 more. How many coins does Mia have now?"},
        {"role": "assistant", "content": "12 + 5 = 17\n#### 17"},
    ]});
    write(dataset.path(), "eval.jsonl", &format!("{row}\n"));
    let task = CustomTask::from_file(&task_file, &options(dataset.path(), Harness::B281b09, None))
        .unwrap();
    let instance = &task.instances(None).unwrap()[0];
    let Request::GenerateUntil { context, until, .. } = &instance.requests[0] else {
        panic!("generation")
    };
    assert!(
        context.starts_with("<|im_start|>user\nMia has 12 coins."),
        "{context}"
    );
    assert!(
        context.ends_with("<|im_end|>\n<|im_start|>assistant\n"),
        "{context}"
    );
    assert_eq!(until, &["<|im_end|>"]);
    let score = |text: &str| {
        task.process_results(instance, &[Response::Generated(text.into())])
            .unwrap()[0]
            .1
    };
    assert_eq!(score("12 + 5 = 17\n#### 17"), 1.0);
    assert_eq!(score("12 + 5 = 18\n#### 18"), 0.0);
    assert_eq!(task.data_files()[0].path, dataset.path().join("eval.jsonl"));
}
