//! `erebor kinds`: the step kinds this binary knows, with their outputs.

use crate::globals::Globals;
use crate::outcome::Outcome;
use std::fmt::Write;

/// Arguments of `erebor kinds`.
#[derive(Debug, clap::Args)]
pub(crate) struct KindsArgs {}

impl KindsArgs {
    /// Prints every kind with its code version, summary and outputs.
    // Every command's arguments run through `execute(self, globals)`; these have no fields.
    #[allow(clippy::unused_self)]
    pub(crate) fn execute(self, globals: &Globals) -> anyhow::Result<Outcome> {
        let mut out = String::new();
        for kind in globals.registry.iter() {
            let info = kind.info();
            writeln!(
                out,
                "{} (code version {}): {}",
                info.name, info.code_version, info.summary
            )?;
            for output in info.outputs {
                writeln!(
                    out,
                    "    outputs.{:<14} {:?}: {}",
                    output.name, output.ty, output.doc
                )?;
            }
        }
        print!("{out}");
        Ok(Outcome::Success)
    }
}
