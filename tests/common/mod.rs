//! Helpers for end-to-end tests of the `erebor` binary: a sandbox folder with its own state
//! folder and database (a SQLite file, or a fresh Postgres database that is dropped afterwards).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Which store a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    /// A SQLite file in the sandbox.
    Sqlite,
    /// A fresh database on the Postgres server of `EREBOR_TEST_POSTGRES`.
    Postgres,
}

/// The Postgres server URL for tests (its database is only used to create and drop others).
pub(crate) fn postgres_url() -> String {
    std::env::var("EREBOR_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A folder with workflow files, a state folder and a database.
pub(crate) struct Sandbox {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) backend: Backend,
    pg_database: Option<String>,
}

impl Sandbox {
    /// A sandbox, or None (with a message) for Postgres when `EREBOR_TEST_SKIP_POSTGRES=1`.
    pub(crate) fn new(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let pg_database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                if std::env::var("EREBOR_TEST_SKIP_POSTGRES").as_deref() == Ok("1") {
                    eprintln!("skipping the Postgres half: EREBOR_TEST_SKIP_POSTGRES=1");
                    return None;
                }
                let name = format!("erebor_e2e_{}", uuid::Uuid::new_v4().simple());
                admin(&format!("CREATE DATABASE {name}"));
                Some(name)
            }
        };
        Some(Self {
            dir,
            backend,
            pg_database,
        })
    }

    /// The sandbox folder.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The state folder (`--home`).
    pub(crate) fn home(&self) -> PathBuf {
        self.path().join(".erebor")
    }

    /// The store URL.
    pub(crate) fn db_url(&self) -> String {
        match &self.pg_database {
            Some(name) => {
                let server = postgres_url();
                let base = server
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_owned())
                    .unwrap_or(server);
                format!("{base}/{name}")
            }
            None => format!("sqlite://{}", self.home().join("erebor.db").display()),
        }
    }

    /// Writes a file (creating folders).
    pub(crate) fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes an executable script.
    pub(crate) fn script(&self, relative: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.write(relative, text);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Copies the `command` step example (workflows/examples/command-pipeline.yaml and its
    /// scripts) into the sandbox: a pipeline of shell scripts that runs in about a second.
    pub(crate) fn copy_command_pipeline(&self) -> PathBuf {
        let examples = repo_root().join("workflows/examples");
        let target = self.path().join("workflows/examples");
        copy_dir(
            &examples.join("command-pipeline"),
            &target.join("command-pipeline"),
        );
        std::fs::copy(
            examples.join("command-pipeline.yaml"),
            target.join("command-pipeline.yaml"),
        )
        .unwrap();
        target.join("command-pipeline.yaml")
    }

    /// Copies the repository's ML workflows (quickstart.yaml, dpo-vs-dpop.yaml) and the model
    /// folders and task files they use into `workflows/` of the sandbox, as they sit in the
    /// repository.
    pub(crate) fn copy_ml_workflows(&self) {
        let repo = repo_root();
        let target = self.path().join("workflows");
        copy_dir(&repo.join("workflows/models"), &target.join("models"));
        copy_dir(&repo.join("workflows/tasks"), &target.join("tasks"));
        for file in ["quickstart.yaml", "dpo-vs-dpop.yaml"] {
            std::fs::copy(repo.join("workflows").join(file), target.join(file)).unwrap();
        }
    }

    /// `erebor` with this sandbox's state folder and database, run in the sandbox.
    pub(crate) fn erebor(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_erebor"));
        command
            .current_dir(self.path())
            .env("EREBOR_HOME", self.home())
            .env("EREBOR_DB", self.db_url())
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("CUDA_VISIBLE_DEVICES")
            .env_remove("RUST_LOG");
        command
    }

    /// Runs `erebor ARGS` to completion.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.erebor().args(args).output().unwrap()
    }

    /// `erebor` as a user runs it in the sandbox: no `EREBOR_HOME` or `EREBOR_DB`, so the
    /// defaults apply (`.erebor/`, SQLite in it), which are this sandbox's folder and store.
    pub(crate) fn erebor_as_user(&self) -> Command {
        let mut command = self.erebor();
        command.env_remove("EREBOR_HOME").env_remove("EREBOR_DB");
        command
    }

    /// Runs `erebor ARGS` and expects exit code `code`; returns stdout.
    pub(crate) fn expect(&self, args: &[&str], code: i32) -> String {
        expect_exit(self.erebor(), args, code)
    }

    /// The id of the newest run.
    pub(crate) fn latest_run(&self) -> Option<String> {
        let out = self.expect(&["runs", "list", "--limit", "1"], 0);
        out.lines()
            .nth(1)
            .and_then(|line| line.split_whitespace().next())
            .map(str::to_owned)
    }

    /// Runs async assertions against the store.
    pub(crate) fn with_store<T>(&self, f: impl AsyncFnOnce(erebor_store::Store) -> T) -> T {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = erebor_store::Store::open(&self.db_url()).await.unwrap();
            let result = f(store.clone()).await;
            store.close().await;
            result
        })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_database {
            admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

fn admin(sql: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&postgres_url())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "Postgres at {} is needed ({e}); EREBOR_TEST_SKIP_POSTGRES=1 skips it",
                    postgres_url()
                )
            });
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
}

/// `rel` inside ../shared (or `$EREBOR_SHARED`), or None with a message when it is absent; under
/// `CI=true` a missing fixture fails the test instead of skipping it.
pub(crate) fn shared_path(rel: &str) -> Option<PathBuf> {
    let path = std::env::var_os("EREBOR_SHARED")
        .map_or_else(|| repo_root().join("../shared"), PathBuf::from)
        .join(rel);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} is missing and CI=true",
        path.display()
    );
    eprintln!("skipping: {} not found (set EREBOR_SHARED)", path.display());
    None
}

/// The repository root.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Pids of live processes whose command line mentions `needle` (to find leftover steps).
pub(crate) fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmdline).contains(needle) {
            found.push(pid);
        }
    }
    found
}

/// Defines `mod NAME { sqlite(); postgres() }` tests that call `NAME(&Sandbox)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use super::common::{Backend, Sandbox};

                #[test]
                fn sqlite() {
                    let sandbox = Sandbox::new(Backend::Sqlite).unwrap();
                    super::$scenario(&sandbox);
                }

                #[test]
                fn postgres() {
                    let Some(sandbox) = Sandbox::new(Backend::Postgres) else { return };
                    super::$scenario(&sandbox);
                }
            }
        )*
    };
}

/// Runs `command ARGS` to completion and expects exit code `code`; returns stdout. A wrong code
/// fails with both output streams.
pub(crate) fn expect_exit(mut command: Command, args: &[&str], code: i32) -> String {
    let output = command.args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(code),
        "erebor {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}
