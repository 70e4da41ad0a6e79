//! A secret planted with `--set` (and, on resume, through its environment variable) reaches
//! the step's program but appears nowhere in the database, the logs, the run folder (requests,
//! results, events, step logs, reports) or the runner's output.

mod common;

use common::Sandbox;
use sha2::{Digest, Sha256};

const SECRET: &str = "sk-planted-7f3a9c1e5b";

const WORKFLOW: &str = r#"
name: secretive
params:
  judge_key: {type: string, secret: true, env: TEST_JUDGE_KEY}
steps:
  - id: call
    uses: command
    with:
      argv: [./call.sh, "--key=${{ params.judge_key }}"]
      env: {API_KEY: "${{ params.judge_key }}"}
      outputs: {digest: digest.txt}
  - id: fail
    uses: command
    with:
      argv: [./fail.sh, "${{ params.judge_key }}"]
  - id: report
    uses: report
    needs: [call]
    with: {steps: [call]}
"#;

/// Proves it got the key (writes its SHA-256), and tries to leak it through stdout and stderr.
const CALL: &str = "#!/bin/sh\nset -eu\n[ \"$1\" = \"--key=$API_KEY\" ]\nprintf %s \"$API_KEY\" | sha256sum | cut -d' ' -f1 > digest.txt\necho \"using key $API_KEY\"\necho \"debug: $1\" >&2\necho \"erebor:metric calls 0 1\"\n";
/// Fails the first time (marker in its work folder), printing the key.
const FAIL: &str = "#!/bin/sh\nif [ -f done ]; then exit 0; fi\ntouch done\necho \"auth failed for $1\" >&2\nexit 3\n";

fn planted_secrets_never_reach_storage_or_logs(sandbox: &Sandbox) {
    sandbox.script("call.sh", CALL);
    sandbox.script("fail.sh", FAIL);
    let workflow = sandbox.write("secretive.yaml", WORKFLOW);
    let set = format!("judge_key={SECRET}");
    let first = sandbox
        .erebor()
        .args(["run", workflow.to_str().unwrap(), "--set", &set, "-vv"])
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(1), "the fail step fails once");
    let run = sandbox.latest_run().unwrap();
    // Resume without --set: the secret comes from its `env:` variable; without either it is refused.
    let refused = sandbox.run(&["resume", &run]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("param `judge_key` has no value"));
    let second = sandbox
        .erebor()
        .args(["resume", &run, "-vv"])
        .env("TEST_JUDGE_KEY", SECRET)
        .output()
        .unwrap();
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );

    // The program received the real value.
    let digest_path = sandbox
        .home()
        .join("runs")
        .join(&run)
        .join("steps/call/digest.txt");
    let digest = std::fs::read_to_string(digest_path).unwrap();
    assert_eq!(
        digest.trim(),
        hex::encode(Sha256::digest(SECRET.as_bytes()))
    );

    // ... and it is nowhere else.
    for output in [&first, &second] {
        for stream in [&output.stdout, &output.stderr] {
            assert!(
                !String::from_utf8_lossy(stream).contains(SECRET),
                "runner output leaks the secret"
            );
        }
    }
    assert_no_file_holds_the_secret(sandbox);

    let rows = sandbox.with_store(async |store| database_text(&store, sandbox).await);
    assert!(
        rows.iter().any(|row| row.contains("***")),
        "params are stored masked"
    );
    for row in rows {
        assert!(
            !row.contains(SECRET),
            "database row leaks the secret: {row}"
        );
    }
}

/// Every row of every table as text (Postgres), or the raw database files (SQLite).
async fn database_text(store: &erebor_store::Store, sandbox: &Sandbox) -> Vec<String> {
    if store.backend_name() == "sqlite" {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(sandbox.home()).unwrap().flatten() {
            if entry.file_name().to_string_lossy().starts_with("erebor.db") {
                out.push(
                    String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()).into_owned(),
                );
            }
        }
        return out;
    }
    let pool = sqlx::PgPool::connect(&sandbox.db_url()).await.unwrap();
    let mut out = Vec::new();
    for table in [
        "runs",
        "steps",
        "attempts",
        "artifacts",
        "artifact_inputs",
        "metrics",
        "schedules",
        "_sqlx_migrations",
    ] {
        let sql = format!("SELECT row_to_json(t)::text FROM {table} t");
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap();
        out.extend(rows);
    }
    pool.close().await;
    out
}

fn collect(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

on_both_backends!(planted_secrets_never_reach_storage_or_logs);

/// No file under the sandbox but the two scripts holds the secret (and there are files to
/// check), and a step log shows the line that printed it masked.
fn assert_no_file_holds_the_secret(sandbox: &Sandbox) {
    let mut files = Vec::new();
    collect(sandbox.path(), &mut files);
    let mut checked = 0;
    for file in &files {
        if file.ends_with("call.sh") || file.ends_with("fail.sh") {
            continue;
        }
        let bytes = std::fs::read(file).unwrap();
        assert!(
            !contains(&bytes, SECRET.as_bytes()),
            "{} contains the secret",
            file.display()
        );
        checked += 1;
    }
    assert!(
        checked >= 15,
        "the run folder has requests, results, events, logs and reports ({checked} files)"
    );
    let logs: Vec<_> = files.iter().filter(|f| f.ends_with("step.log")).collect();
    let masked = logs.iter().any(|log| {
        std::fs::read_to_string(log)
            .unwrap()
            .contains("using key ***")
    });
    assert!(masked, "the step log shows the masked line");
}
