//! The files other tools read: samples lines as lm-eval 0.4 writes them (key order, string
//! formats, hashes computed as lm-eval computes them: values below were printed by CPython),
//! the results JSON's keys, group and leaderboard averages, and the table.

mod common;

use common::{GenTask, McTask, arith_docs, tiny_model};
use erebor_core::NullProgress;
use erebor_eval::evaluator::{EvalModel, Hooks};
use erebor_eval::output::{doc_hash, results_table, write_outputs};
use erebor_eval::{
    DataFile, DocInstance, EvalSettings, Evaluator, Harness, MetricInfo, Response, Task,
};
use serde_json::{Value, json};

/// A task under another name, in a group, with its `acc` renamed.
struct Renamed {
    inner: McTask,
    group: Option<&'static str>,
    metric: &'static [MetricInfo],
}

impl Task for Renamed {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn group(&self) -> Option<&str> {
        self.group
    }
    fn num_fewshot(&self) -> usize {
        0
    }
    fn metrics(&self) -> &[MetricInfo] {
        self.metric
    }
    fn version(&self) -> Value {
        json!(1.0)
    }
    fn config(&self) -> Value {
        self.inner.config()
    }
    fn data_files(&self) -> Vec<DataFile> {
        Vec::new()
    }
    fn instances(&self, limit: Option<usize>) -> erebor_eval::Result<Vec<DocInstance>> {
        self.inner.instances(limit)
    }
    fn process_results(
        &self,
        instance: &DocInstance,
        responses: &[Response],
    ) -> erebor_eval::Result<Vec<(String, f64)>> {
        let mut out = self.inner.process_results(instance, responses)?;
        self.metric[0].name.clone_into(&mut out[0].0);
        Ok(out)
    }
}

const MC1: [MetricInfo; 1] = [MetricInfo {
    name: "mc1",
    higher_is_better: true,
}];
const ACC: [MetricInfo; 1] = [MetricInfo {
    name: "acc",
    higher_is_better: true,
}];

fn mc(name: &str, n: usize) -> McTask {
    McTask {
        name: name.into(),
        docs: arith_docs(n),
    }
}

#[test]
fn doc_hash_is_sha256_of_pythons_indented_dump() {
    let doc = json!({"query": "Ann has 2 apples.\nAnswer:", "choices": ["5", "6", "7"], "gold": 0});
    assert_eq!(
        doc_hash(&erebor_eval::output::pyjson::PyValue::from(&doc)),
        "4c0d1bee908666e641d67b2e5f1657ca731851740ae9d7751320e13fa1894476"
    );
}

#[test]
fn samples_and_results_have_lm_evals_keys_and_formats() {
    let (model, tok) = tiny_model();
    let tasks: Vec<Box<dyn Task>> = vec![
        Box::new(Renamed {
            inner: mc("winogrande", 5),
            group: None,
            metric: &ACC,
        }),
        Box::new(Renamed {
            inner: mc("truthfulqa_mc1", 4),
            group: None,
            metric: &MC1,
        }),
        Box::new(Renamed {
            inner: mc("mmlu_a", 3),
            group: Some("mmlu"),
            metric: &ACC,
        }),
        Box::new(Renamed {
            inner: mc("mmlu_b", 2),
            group: Some("mmlu"),
            metric: &ACC,
        }),
        Box::new(GenTask {
            name: "gen".into(),
            docs: vec![("Ann has 2 apples.\nAnswer:".into(), "2".into())],
            until: vec![".".into()],
            max_gen_toks: 4,
        }),
    ];
    let model = EvalModel {
        model: &model,
        tokenizer: &tok,
    };
    let hooks = Hooks {
        progress: &NullProgress,
        cancel: None,
    };
    let report = Evaluator::new(model, EvalSettings::default(), hooks)
        .evaluate(&tasks)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = write_outputs(&report, &common::run_info(Harness::B281b09), dir.path()).unwrap();
    assert!(
        files
            .results
            .ends_with("results_2026-11-30T20-40-12.123456.json")
    );
    assert!(files.samples[0].ends_with("samples_winogrande_2026-11-30T20-40-12.123456.jsonl"));
    check_mc_samples(&std::fs::read_to_string(&files.samples[0]).unwrap());
    check_gen_samples(&std::fs::read_to_string(&files.samples[4]).unwrap());
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(&files.results).unwrap()).unwrap();
    check_results(&results, &report);
    let table = results_table(&report);
    assert!(table.contains("|winogrande"), "{table}");
    assert!(table.contains("leaderboard average"), "{table}");
}

fn check_mc_samples(text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5);
    // Python's separators, lm-eval's key order.
    assert!(
        lines[0].starts_with(r#"{"doc_id": 0, "doc": {"#),
        "{}",
        lines[0]
    );
    let sample: Value = serde_json::from_str(lines[0]).unwrap();
    let keys: Vec<&str> = sample
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "acc",
        "arguments",
        "doc",
        "doc_hash",
        "doc_id",
        "filter",
        "filtered_resps",
        "metrics",
        "prompt_hash",
        "resps",
        "target",
        "target_hash",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    let order: Vec<usize> = [
        "\"doc_id\"",
        "\"doc\"",
        "\"target\"",
        "\"arguments\"",
        "\"resps\"",
        "\"filtered_resps\"",
        "\"filter\"",
        "\"metrics\"",
        "\"doc_hash\"",
        "\"prompt_hash\"",
        "\"target_hash\"",
        "\"acc\"",
    ]
    .iter()
    .map(|k| lines[0].find(&format!("{k}: ")).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    let context = arith_docs(1)[0].0.clone();
    assert_eq!(sample["arguments"]["gen_args_1"]["arg_0"], json!(context));
    assert_eq!(
        sample["arguments"]["gen_args_1"]["arg_1"],
        json!(format!(" {}", arith_docs(1)[0].1[1]))
    );
    assert_eq!(sample["target"], json!("0"));
    assert_eq!(sample["filter"], json!("none"));
    assert_eq!(sample["metrics"], json!(["acc"]));
    // resps: per request a list of one [str(loglikelihood), str(is_greedy)].
    let resp = &sample["resps"][0][0];
    let ll = resp[0].as_str().unwrap();
    assert!(ll.contains('.') || ll.contains('e'), "{ll}");
    assert!(ll.parse::<f64>().unwrap() < 0.0);
    assert!(resp[1] == json!("True") || resp[1] == json!("False"));
    assert_eq!(sample["filtered_resps"][0], *resp);
    assert!(sample["acc"] == json!(1.0) || sample["acc"] == json!(0.0));
    assert!(lines[0].contains("\"acc\": 1.0") || lines[0].contains("\"acc\": 0.0"));
    assert_eq!(
        sample["prompt_hash"].as_str().unwrap(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(context.as_bytes()))
    );
    // sha256("0"), as CPython's hashlib prints it.
    assert_eq!(
        sample["target_hash"],
        json!("5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9")
    );
}

fn check_gen_samples(text: &str) {
    let sample: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let args = &sample["arguments"]["gen_args_0"];
    assert_eq!(args["arg_0"], json!("Ann has 2 apples.\nAnswer:"));
    assert_eq!(args["arg_1"]["until"], json!(["."]));
    assert_eq!(args["arg_1"]["do_sample"], json!(false));
    assert!(sample["resps"][0][0].is_string());
    assert_eq!(sample["filtered_resps"][0], sample["resps"][0][0]);
    assert_eq!(sample["metrics"], json!(["exact_match"]));
}

fn check_results(results: &Value, report: &erebor_eval::EvalReport) {
    let wino = &results["results"]["winogrande"];
    let acc = report.tasks[0].metric("acc").unwrap();
    assert_eq!(wino["alias"], json!("winogrande"));
    assert_eq!(wino["acc,none"], json!(acc.value));
    assert_eq!(wino["acc_stderr,none"], json!(acc.stderr.unwrap()));
    assert_eq!(results["results"]["mmlu_a"]["alias"], json!(" - mmlu_a"));
    // MMLU: the unweighted mean over its subjects.
    let a = report.tasks[2].metric("acc").unwrap().value;
    let b = report.tasks[3].metric("acc").unwrap().value;
    let mmlu = results["groups"]["mmlu"]["acc,none"].as_f64().unwrap();
    assert!((mmlu - f64::midpoint(a, b)).abs() < 1e-12);
    assert_eq!(
        results["group_subtasks"]["mmlu"],
        json!(["mmlu_a", "mmlu_b"])
    );
    assert_eq!(
        results["n-samples"]["winogrande"],
        json!({"original": 5, "effective": 5})
    );
    assert_eq!(results["n-shot"]["winogrande"], json!(0));
    assert_eq!(
        results["higher_is_better"]["truthfulqa_mc1"],
        json!({"mc1": true})
    );
    assert_eq!(results["versions"]["winogrande"], json!(1.0));
    assert_eq!(
        results["configs"]["winogrande"]["task"],
        json!("winogrande")
    );
    assert_eq!(results["config"]["batch_size"], json!(8));
    assert_eq!(results["config"]["device"], json!("cpu"));
    assert_eq!(results["config"]["fewshot_seed"], json!(42));
    assert_eq!(results["total_evaluation_time_seconds"], json!("9.5"));
    let erebor = &results["erebor"];
    assert_eq!(erebor["harness"], json!("b281b09"));
    assert_eq!(erebor["chat_template"], json!("none"));
    assert_eq!(erebor["add_bos"], json!(false));
    assert_eq!(erebor["dtype"], json!("f32"));
    assert_eq!(erebor["model_sha256"], json!("ab".repeat(32)));
    assert!(
        erebor["forward_tokens"].as_u64().unwrap()
            < erebor["forward_tokens_unshared"].as_u64().unwrap()
    );
    assert_eq!(erebor["tasks"]["winogrande"]["documents_scored"], json!(5));
    // Leaderboard: Winogrande, TruthfulQA (mc1 for mc2, said so) and MMLU of the six.
    let lb = &erebor["leaderboard"];
    let benchmarks: Vec<&str> = lb["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["benchmark"].as_str().unwrap())
        .collect();
    assert_eq!(benchmarks, ["MMLU", "TruthfulQA", "Winogrande"]);
    assert_eq!(lb["missing"], json!(["ARC", "HellaSwag", "GSM8K"]));
    assert!(
        lb["notes"][0]
            .as_str()
            .unwrap()
            .contains("mc1 stands in for mc2")
    );
    let tqa = report.tasks[1].metric("mc1").unwrap().value;
    let expected = (mmlu + tqa + acc.value) / 3.0;
    assert!((lb["value"].as_f64().unwrap() - expected).abs() < 1e-12);
}
