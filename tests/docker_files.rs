//! docker/ checked by reading it (the images cannot be built here: no registry for base images
//! is reachable). The compose file is parsed with serde-saphyr and its services checked against
//! what erebor reads (`EREBOR_DB`, `OTEL_EXPORTER_OTLP_ENDPOINT`, the `scheduler` subcommand); the
//! Dockerfiles are split into instructions (line continuations joined) and checked for the
//! stages and instructions the images rely on, and for agreement with the workspace (the Rust
//! version, the tch feature, the Python version of the CUDA base image).

mod common;

use common::repo_root;
use serde_json::Value;

/// One Dockerfile instruction: keyword (upper case) and the rest, continuations joined.
fn instructions(file: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_root().join("docker").join(file)).unwrap();
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (keyword, rest) = current.split_once(' ').unwrap_or((&current, ""));
        out.push((keyword.to_uppercase(), rest.trim().to_owned()));
        current.clear();
    }
    assert!(current.is_empty(), "{file}: ends inside a continued line");
    out
}

/// The stage names of `FROM ... AS name`, in order.
fn stages(instructions: &[(String, String)]) -> Vec<String> {
    instructions
        .iter()
        .filter(|(k, _)| k == "FROM")
        .map(|(_, rest)| {
            let words: Vec<&str> = rest.split_whitespace().collect();
            assert!(
                words.len() == 3 && words[1].eq_ignore_ascii_case("AS"),
                "every stage is named: FROM {rest}"
            );
            words[2].to_owned()
        })
        .collect()
}

/// The instructions of stage `name`.
fn stage<'a>(all: &'a [(String, String)], name: &str) -> &'a [(String, String)] {
    let start = all
        .iter()
        .position(|(k, rest)| k == "FROM" && rest.ends_with(&format!(" {name}")))
        .unwrap_or_else(|| panic!("no stage {name}"));
    let end = all[start + 1..]
        .iter()
        .position(|(k, _)| k == "FROM")
        .map_or(all.len(), |i| start + 1 + i);
    &all[start..end]
}

fn has(stage: &[(String, String)], keyword: &str, needle: &str) -> bool {
    stage
        .iter()
        .any(|(k, rest)| k == keyword && rest.contains(needle))
}

fn workspace_rust_version() -> String {
    let cargo = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let line = cargo
        .lines()
        .find(|l| l.starts_with("rust-version"))
        .unwrap();
    line.split('"').nth(1).unwrap().to_owned()
}

#[test]
fn the_cpu_image_builds_in_one_stage_and_runs_erebor_in_a_slim_one() {
    let all = instructions("Dockerfile.cpu");
    assert_eq!(stages(&all), ["build", "runtime"]);
    let rust = workspace_rust_version();
    assert!(
        has(&all, "ARG", &format!("RUST_IMAGE=rust:{rust}-")),
        "the builder's Rust is the workspace's rust-version {rust}"
    );
    let build = stage(&all, "build");
    assert!(has(
        build,
        "RUN",
        "cargo build --release --locked -p erebor-cli"
    ));
    assert!(!has(build, "RUN", "--features tch"));
    let runtime = stage(&all, "runtime");
    assert!(has(
        runtime,
        "COPY",
        "--from=build /out/erebor /usr/local/bin/erebor"
    ));
    assert!(
        has(runtime, "RUN", "ca-certificates"),
        "HTTPS needs CA roots"
    );
    assert!(has(runtime, "USER", "erebor"));
    assert!(has(runtime, "ENTRYPOINT", "\"erebor\""));
    assert!(
        !has(runtime, "RUN", "cargo"),
        "no toolchain in the runtime image"
    );
}

#[test]
fn the_cuda_image_builds_with_tch_against_the_wheels_libtorch() {
    let all = instructions("Dockerfile.cuda");
    assert_eq!(stages(&all), ["torch", "build", "runtime"]);
    let rust = workspace_rust_version();
    let build = stage(&all, "build");
    assert!(has(build, "RUN", &format!("--default-toolchain {rust}")));
    assert!(has(build, "ENV", "LIBTORCH_USE_PYTORCH=1"));
    assert!(has(
        build,
        "RUN",
        "cargo build --release --locked -p erebor-cli --features tch"
    ));
    let torch = stage(&all, "torch");
    assert!(has(
        torch,
        "RUN",
        "pip install --no-cache-dir \"torch==${TORCH_VERSION}\""
    ));
    assert!(
        has(&all, "ARG", "TORCH_VERSION=2.9.0"),
        "DEVELOPERS.md: tch built against 2.9.0"
    );
    // The runtime finds libtorch in the venv of the base image's Python: Ubuntu 24.04 has 3.12.
    assert!(has(&all, "ARG", "ubuntu24.04"));
    let runtime = stage(&all, "runtime");
    assert!(has(
        runtime,
        "ENV",
        "LD_LIBRARY_PATH=/opt/torch/lib/python3.12/site-packages/torch/lib"
    ));
    assert!(has(
        runtime,
        "COPY",
        "--from=build /out/erebor /usr/local/bin/erebor"
    ));
    assert!(
        !has(runtime, "RUN", "rustup"),
        "no toolchain in the runtime image"
    );
}

#[test]
fn the_build_context_leaves_out_build_folders_but_keeps_the_lockfile() {
    let ignore = std::fs::read_to_string(repo_root().join(".dockerignore")).unwrap();
    let lines: Vec<&str> = ignore.lines().map(str::trim).collect();
    for excluded in ["/target", "/.erebor", "/.git"] {
        assert!(lines.contains(&excluded), "{excluded} not ignored");
    }
    assert!(
        !lines.iter().any(|l| l.contains("Cargo.lock")),
        "--locked needs Cargo.lock"
    );
}

#[test]
fn compose_runs_the_scheduler_on_postgres_with_traces_to_jaeger() {
    let path = repo_root().join("docker/compose.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let compose: Value = serde_saphyr::from_str(&text).unwrap();
    let services = &compose["services"];
    for name in ["postgres", "jaeger", "scheduler", "erebor"] {
        assert!(services[name].is_object(), "service {name} missing");
    }
    let scheduler = &services["scheduler"];
    assert_eq!(scheduler["command"][0], "scheduler");
    assert_eq!(scheduler["restart"], "unless-stopped");
    // The build is the CPU image, from the repository root.
    assert_eq!(scheduler["build"]["context"], "..");
    let dockerfile = scheduler["build"]["dockerfile"].as_str().unwrap();
    assert!(repo_root().join(dockerfile).is_file(), "{dockerfile}");
    // The store: the Postgres service, started and healthy first.
    let env = &scheduler["environment"];
    let db = env["EREBOR_DB"].as_str().unwrap();
    let postgres = &services["postgres"];
    let (user, database) = (
        postgres["environment"]["POSTGRES_USER"].as_str().unwrap(),
        postgres["environment"]["POSTGRES_DB"].as_str().unwrap(),
    );
    assert!(
        db.starts_with(&format!("postgres://{user}:"))
            && db.ends_with(&format!("@postgres:5432/{database}")),
        "{db}"
    );
    assert_eq!(
        scheduler["depends_on"]["postgres"]["condition"],
        "service_healthy"
    );
    assert!(
        postgres["healthcheck"]["test"]
            .to_string()
            .contains("pg_isready")
    );
    // Traces: OTLP over HTTP to the Jaeger service's 4318, which it publishes with its UI.
    assert_eq!(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://jaeger:4318");
    let ports = services["jaeger"]["ports"].to_string();
    assert!(
        ports.contains("4318:4318") && ports.contains("16686:16686"),
        "{ports}"
    );
    // No secret is written in the file: the judge key comes from the host's environment.
    assert_eq!(env["OPENAI_API_KEY"], "${OPENAI_API_KEY:-}");
    // The one-off CLI service shares the scheduler's settings (the YAML merge key).
    assert_eq!(services["erebor"]["environment"]["EREBOR_DB"], db);
}
