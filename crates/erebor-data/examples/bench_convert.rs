//! Benchmark of the convert pipeline on MetaMathQA-format rows (`query`, `response` ending in
//! `The answer is: N`), for BENCHMARKS.md.
//!
//! ```text
//! cargo run -p erebor-data --example bench_convert -- [ROWS] [TOKENISE_ROWS]
//! ```
//!
//! Rows are GSM8K test solutions from ../shared (annotations stripped, final line rewritten the
//! MetaMathQA way) repeated with distinct ids, or synthetic 4-8 step problems when ../shared is
//! absent. Phase 1 times reading + low-edit building + statistics + writing without a
//! tokenizer; phase 2 times tokenisation with the SmolLM2 tokenizer on the first `TOKENISE_ROWS`.

use erebor_core::{CancelToken, MemorySink};
use erebor_data::builders::low_edit::strip_annotations;
use erebor_data::builders::synth::{SynthConfig, generate};
use erebor_data::convert::{ConvertConfig, ConvertEnv, run_convert};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn solutions(shared: &Path) -> Vec<(String, String)> {
    let gsm8k = shared.join("data/leaderboard/gsm8k_test.jsonl");
    if let Ok(text) = std::fs::read_to_string(&gsm8k) {
        return text
            .lines()
            .map(|line| {
                let row: serde_json::Value = serde_json::from_str(line).expect("gsm8k row");
                let answer = strip_annotations(row["answer"].as_str().expect("answer"));
                let (body, last) = answer.rsplit_once("\n#### ").expect("#### line");
                (
                    row["question"].as_str().expect("question").to_owned(),
                    format!("{body}\nThe answer is: {last}"),
                )
            })
            .collect();
    }
    eprintln!("../shared is absent: using synthetic 4-8 step problems");
    let config: SynthConfig =
        serde_json::from_value(json!({"count": 2000, "steps": [4, 8], "max_value": 1000}))
            .expect("config");
    (0..2000)
        .map(|index| {
            let problem = generate(&config, index);
            let (body, last) = problem.answer.rsplit_once("\n#### ").expect("#### line");
            (problem.question, format!("{body}\nThe answer is: {last}"))
        })
        .collect()
}

fn write_rows(path: &Path, rows: usize, solutions: &[(String, String)]) -> u64 {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    for index in 0..rows {
        let (query, response) = &solutions[index % solutions.len()];
        // Distinct queries, as MetaMathQA's are, so de-duplication keeps every row.
        let query = format!("{query} (variant {index})");
        let row =
            json!({"id": index, "type": "GSM_Rephrased", "query": query, "response": response});
        serde_json::to_writer(&mut out, &row).expect("write");
        out.write_all(b"\n").expect("write");
    }
    out.flush().expect("flush");
    std::fs::metadata(path).expect("metadata").len()
}

fn convert(config: &serde_json::Value, base: &Path, work: &Path) -> (f64, serde_json::Value) {
    let config = ConvertConfig::parse(config).expect("config");
    let sink = MemorySink::new();
    let env = ConvertEnv {
        base_dir: base,
        work_dir: work,
        cache_dir: &work.join("cache"),
        metrics: &sink,
        progress: &sink,
        cancel: CancelToken::new(),
    };
    let clock = Instant::now();
    let output = run_convert(&config, &env).expect("convert");
    let seconds = clock.elapsed().as_secs_f64();
    (
        seconds,
        serde_json::to_value(&output.report).expect("report"),
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().map_or(400_000, |a| a.parse().expect("ROWS"));
    let tokenise_rows: usize = args
        .next()
        .map_or(20_000, |a| a.parse().expect("TOKENISE_ROWS"));
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("metamath.jsonl");
    let bytes = write_rows(&input, rows, &solutions(&shared));
    println!("input: {rows} rows, {:.1} MB", bytes as f64 / 1e6);

    let (seconds, report) = convert(
        &json!({"sources": [{"path": "metamath.jsonl", "map": {"type": "low_edit", "seed": 1}}], "split": {"eval_rows": 1000}}),
        dir.path(),
        &dir.path().join("untokenised"),
    );
    println!(
        "read + build + dedupe + split + stats + write: {seconds:.2} s, {:.0} rows/s; phases {}",
        rows as f64 / seconds,
        report["seconds"]
    );
    println!(
        "train edit distance (words): {}",
        report["splits"]["train"]["preference"]["edit_distance"]
    );

    let tokenizer = shared.join("tokenizers/smollm2");
    if tokenise_rows == 0 || !tokenizer.exists() {
        println!("tokenisation not measured (TOKENISE_ROWS is 0 or ../shared is absent)");
        return;
    }
    write_rows(
        &dir.path().join("small.jsonl"),
        tokenise_rows,
        &solutions(&shared),
    );
    let (seconds, report) = convert(
        &json!({"sources": [{"path": "small.jsonl", "map": {"type": "low_edit", "seed": 1}}], "tokenizer": tokenizer.display().to_string()}),
        dir.path(),
        &dir.path().join("tokenised"),
    );
    let tokenise = report["seconds"]["tokenise"].as_f64().unwrap_or(f64::NAN);
    println!(
        "tokenise {tokenise_rows} pairs (SmolLM2, ChatML): {tokenise:.2} s, {:.0} pairs/s; whole step {seconds:.2} s",
        tokenise_rows as f64 / tokenise
    );
    println!(
        "train edit distance (tokens): {}",
        report["splits"]["train"]["preference"]["edit_distance"]
    );
    println!(
        "first difference (tokens): {}",
        report["splits"]["train"]["preference"]["first_difference"]
    );
}
