//! Metric logging throughput: records N points in batches from one running attempt and prints
//! points per second. Used for BENCHMARKS.md:
//!
//! ```sh
//! cargo run --release -p erebor-store --example metrics_throughput -- sqlite:///tmp/bench.db 1000000 10000
//! cargo run --release -p erebor-store --example metrics_throughput -- postgres://postgres@127.0.0.1:5432/test 1000000 10000
//! ```
//!
//! A Postgres URL gets a fresh schema (dropped afterwards); a SQLite file is created fresh.

use erebor_store::{AttemptId, MetricPoint, NewAttempt, NewRun, NewStep, RunId, StepId, Store};
use std::time::Instant;

/// What to measure: the store URL, how many points, and how many per `record_metrics` call.
struct Args {
    url: String,
    points: usize,
    batch: usize,
}

impl Args {
    /// Reads `URL [POINTS [BATCH]]` from the command line.
    fn parse() -> Result<Self, Box<dyn std::error::Error>> {
        let args: Vec<String> = std::env::args().collect();
        let url = args
            .get(1)
            .cloned()
            .unwrap_or_else(|| "sqlite:///tmp/erebor-bench.db".to_owned());
        let points = args
            .get(2)
            .map(|p| p.parse())
            .transpose()?
            .unwrap_or(1_000_000);
        let batch = args
            .get(3)
            .map(|b| b.parse())
            .transpose()?
            .unwrap_or(10_000);
        Ok(Self { url, points, batch })
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args { url, points, batch } = Args::parse()?;
    let schema = format!("erebor_bench_{}", std::process::id());
    let store = if url.starts_with("postgres") {
        Store::open_in_schema(&url, &schema).await?
    } else {
        let path = url.trim_start_matches("sqlite://");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
        Store::open(&url).await?
    };
    start_bench_attempt(&store).await?;
    let all = bench_points(points);
    let started = Instant::now();
    let mut written = 0;
    for chunk in all.chunks(batch) {
        written += store
            .record_metrics(
                &RunId::from("r-bench"),
                &StepId::from("train"),
                &AttemptId::from("a-bench"),
                chunk,
            )
            .await?;
    }
    let elapsed = started.elapsed();
    assert_eq!(
        written,
        u64::try_from(points)?,
        "every point is one new row"
    );
    println!(
        "{}: {points} points in batches of {batch}: {:.2} s, {:.0} points/s",
        store.backend_name(),
        elapsed.as_secs_f64(),
        points as f64 / elapsed.as_secs_f64()
    );
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA \"{schema}\" CASCADE"
        )))
        .execute(&pool)
        .await?;
    }
    store.close().await;
    Ok(())
}

/// Creates the run `r-bench` with one step `train` and starts its attempt `a-bench`.
async fn start_bench_attempt(store: &Store) -> Result<(), Box<dyn std::error::Error>> {
    store
        .create_run(
            &NewRun {
                id: "r-bench".into(),
                workflow_name: "bench".into(),
                workflow_file: "/bench.yaml".into(),
                workflow_text: String::new(),
                workflow_hash: String::new(),
                params: serde_json::json!({}),
                options: serde_json::json!({}),
                host: "bench".into(),
                runner_pid: std::process::id(),
                git_commit: None,
                git_dirty: None,
                erebor_version: env!("CARGO_PKG_VERSION").into(),
                run_dir: "/tmp".into(),
            },
            &[NewStep {
                step_id: "train".into(),
                base_id: "train".into(),
                arm: serde_json::json!({}),
                kind: "sft".into(),
                position: 0,
                needs: vec![],
                config: serde_json::json!({}),
            }],
        )
        .await?;
    store
        .start_attempt(&NewAttempt {
            id: "a-bench".into(),
            run_id: "r-bench".into(),
            step_id: "train".into(),
            number: 1,
            executor: "bench".into(),
            host: "bench".into(),
            dir: "/tmp".into(),
            gpus: vec![],
        })
        .await?;
    Ok(())
}

/// `points` points over five keys, each key's indexes counting up from 0.
fn bench_points(points: usize) -> Vec<MetricPoint> {
    let keys = [
        "train/loss",
        "train/lr",
        "rewards/margins",
        "rewards/accuracies",
        "logps/chosen",
    ];
    (0..points)
        .map(|i| MetricPoint {
            key: keys[i % keys.len()].to_owned(),
            index: (i / keys.len()) as u64,
            value: (i as f64).sin(),
        })
        .collect()
}
