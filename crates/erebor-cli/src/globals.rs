//! What every command shares: the global flags, the kind registry, the tokio runtime and the
//! run store.

use crate::cli::GlobalArgs;
use anyhow::Context;
use erebor_workflow::KindRegistry;
use std::path::PathBuf;

/// Shared state for one invocation.
pub(crate) struct Globals {
    /// The global flags.
    pub(crate) args: GlobalArgs,
    /// The step kinds.
    pub(crate) registry: KindRegistry,
}

impl Globals {
    /// Builds the shared state from the flags.
    pub(crate) fn new(args: GlobalArgs) -> Self {
        Self {
            args,
            registry: crate::kinds::registry(),
        }
    }

    /// The state folder (`.erebor` by default), absolute.
    pub(crate) fn home(&self) -> PathBuf {
        std::path::absolute(&self.args.home).unwrap_or_else(|_| self.args.home.clone())
    }

    /// The database URL: `--db`, `EREBOR_DB`, or SQLite in the state folder.
    pub(crate) fn db_url(&self) -> String {
        match &self.args.db {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.home().join("erebor.db").display()),
        }
    }

    /// Opens (and migrates) the run store.
    pub(crate) async fn store(&self) -> anyhow::Result<erebor_store::Store> {
        let url = self.db_url();
        erebor_store::Store::open(&url)
            .await
            .with_context(|| format!("opening the run store {}", erebor_store::redact_url(&url)))
    }

    /// Whether progress bars may be drawn.
    pub(crate) fn progress_bars(&self) -> bool {
        !self.args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())
    }
}

/// A multi-threaded tokio runtime.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
