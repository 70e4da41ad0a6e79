//! Task data named `hf://datasets/...`, resolved through erebor-data's Hub reader from a
//! local mirror laid out as its cache (`<hub cache>/hf/datasets/OWNER/NAME/REV/PATH`):
//! `data_dir`, a custom task's `data_files` and `dataset_path`, and a pinned revision. Nothing
//! is fetched: every reference below is in the mirror, and the documents and data hashes equal
//! those read from the same files on disk.

use std::path::{Path, PathBuf};

use erebor_eval::evaluator::specs::{TaskSpec, build_tasks};
use erebor_eval::{EvalError, Harness, Task, TaskOptions};
use serde_json::json;

fn arc_rows(n: usize) -> String {
    (0..n)
        .map(|i| {
            let row = json!({
                "id": format!("q{i}"),
                "question": format!("What is {i} + 1?"),
                "choices": [format!("{}", i + 1), format!("{}", i + 2), "zero"],
                "gold": 0,
            });
            row.to_string() + "\n"
        })
        .collect()
}

fn arith_rows(n: usize) -> String {
    (0..n)
        .map(|i| {
            json!({"question": format!("{i} + {i}"), "answer": format!("#### {}", 2 * i)})
                .to_string()
                + "\n"
        })
        .collect()
}

/// The same files in a plain folder and in a mirror of `erebor/bench-mini` at `main` and at
/// revision `v1`, under `hub_cache`.
struct Fixture {
    _dir: tempfile::TempDir,
    plain: PathBuf,
    hub_cache: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    let hub_cache = dir.path().join("cache");
    let files = [
        ("leaderboard/arc_easy_test.jsonl", arc_rows(7)),
        ("leaderboard/arc_easy_train.jsonl", arc_rows(4)),
        ("arith/eval.jsonl", arith_rows(3)),
        ("arith/train.jsonl", arith_rows(5)),
    ];
    for revision in ["main", "v1"] {
        let repo = hub_cache
            .join("hf/datasets/erebor/bench-mini")
            .join(revision);
        for (path, text) in &files {
            write(&repo.join(path), text);
        }
        // What a download leaves beside a file; not data.
        write(&repo.join("leaderboard/arc_easy_test.jsonl.sha256"), "x");
    }
    for (path, text) in &files {
        write(&plain.join(path), text);
    }
    Fixture {
        _dir: dir,
        plain,
        hub_cache,
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn options(data_dir: &str, hub_cache: &Path) -> TaskOptions {
    TaskOptions {
        data_dir: PathBuf::from(data_dir),
        num_fewshot: Some(2),
        harness: Harness::B281b09,
        gsm8k_exemplars: None,
        fewshot_seed: None,
        hub_cache: hub_cache.to_path_buf(),
    }
}

fn built(specs: &[TaskSpec], options: &TaskOptions) -> Vec<Box<dyn Task>> {
    build_tasks(specs, options).unwrap()
}

#[test]
fn data_dir_names_a_hub_folder_resolved_from_the_mirror() {
    let f = fixture();
    let spec = [TaskSpec::parse("arc_easy")];
    let plain = built(
        &spec,
        &options(&f.plain.join("leaderboard").to_string_lossy(), &f.hub_cache),
    );
    for uri in [
        "hf://datasets/erebor/bench-mini/leaderboard",
        "hf://datasets/erebor/bench-mini@v1/leaderboard/",
    ] {
        let hub = built(&spec, &options(uri, &f.hub_cache));
        assert_eq!(
            hub[0].instances(None).unwrap(),
            plain[0].instances(None).unwrap(),
            "{uri}"
        );
        let files = hub[0].data_files();
        let revision = if uri.contains("@v1") { "v1" } else { "main" };
        let expected = f
            .hub_cache
            .join("hf/datasets/erebor/bench-mini")
            .join(revision)
            .join("leaderboard/arc_easy_test.jsonl");
        assert_eq!(files[0].path, expected, "{uri}");
        let sha: Vec<_> = files.iter().map(|d| d.sha256.clone()).collect();
        let plain_sha: Vec<_> = plain[0]
            .data_files()
            .iter()
            .map(|d| d.sha256.clone())
            .collect();
        assert_eq!(sha, plain_sha, "hashes of the bytes, not the .sha256 files");
    }
}

#[test]
fn a_custom_task_reads_hub_data_files_and_dataset_path() {
    let f = fixture();
    let body = "output_type: generate_until\ndoc_to_text: \"Question: {{question}}\\nAnswer:\"\n\
                doc_to_target: \"{{answer}}\"\nnum_fewshot: 1\ntest_split: eval\nfewshot_split: train\n";
    let tasks_dir = f.plain.join("tasks");
    let write_task = |name: &str, source: &str| {
        let path = tasks_dir.join(format!("{name}.yaml"));
        write(&path, &format!("task: {name}\n{source}{body}"));
        TaskSpec::File(path)
    };
    let specs = [
        write_task(
            "from_files",
            "dataset:\n  data_files:\n    eval: hf://datasets/erebor/bench-mini/arith/eval.jsonl\n    train: hf://datasets/erebor/bench-mini@v1/arith/train.jsonl\n",
        ),
        write_task(
            "from_folder",
            "dataset_path: hf://datasets/erebor/bench-mini/arith\n",
        ),
        write_task("from_disk", "dataset_path: ../arith\n"),
    ];
    let tasks = built(&specs, &options("", &f.hub_cache));
    let disk = tasks[2].instances(None).unwrap();
    assert_eq!(disk.len(), 3);
    for task in &tasks[..2] {
        assert_eq!(task.instances(None).unwrap(), disk, "{}", task.name());
        let path = &task.data_files()[0].path;
        assert!(
            path.starts_with(f.hub_cache.join("hf/datasets/erebor/bench-mini")),
            "{path:?}"
        );
    }
}

#[test]
fn a_custom_task_without_data_keys_reads_a_hub_data_dir() {
    let f = fixture();
    let path = f.plain.join("tasks/arith.yaml");
    write(
        &path,
        "task: arith\ntest_split: eval\nfewshot_split: train\nnum_fewshot: 0\n\
         doc_to_text: \"{{question}}\"\ndoc_to_target: \"{{answer}}\"\n",
    );
    let tasks = built(
        &[TaskSpec::File(path)],
        &options("hf://datasets/erebor/bench-mini/arith", &f.hub_cache),
    );
    assert_eq!(tasks[0].instances(None).unwrap().len(), 3);
}

#[test]
fn a_malformed_reference_is_an_error_naming_it() {
    let f = fixture();
    let error = build_tasks(
        &[TaskSpec::parse("arc_easy")],
        &options("hf://models/erebor/bench-mini/leaderboard", &f.hub_cache),
    )
    .err()
    .unwrap();
    assert!(matches!(error, EvalError::Hub { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("hf://models/erebor/bench-mini"), "{text}");
    assert!(text.contains("hf://datasets/OWNER/NAME"), "{text}");
}
