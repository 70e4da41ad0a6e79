//! The runner side of the `report` kind ([`erebor_steps::ReportKind`]): before a report step
//! starts, the runner (which has the store open) gathers the step's [`erebor_report::Report`]
//! with the same [`gather`] as `erebor report RUN` and hands it to the step as JSON through the
//! step protocol ([`erebor_engine::run_data`]).

use super::gather::{self, Selection};
use erebor_core::{StepFailure, parse_with};
use erebor_engine::run_data::{Gathering, RunDataRequest, RunDataSource};
use erebor_steps::ReportConfig;
use erebor_store::Store;

/// What a `report` step draws: its `with:` as a [`Selection`] (title: the step id by default).
fn selection(config: ReportConfig, step_id: &str) -> Selection {
    Selection {
        steps: config.steps,
        keys: config.keys,
        title: Some(config.title.unwrap_or_else(|| step_id.to_owned())),
        compare: Vec::new(),
        schedule: None,
    }
}

/// Gathers a `report` step's data in the runner (which has the store open): the
/// [`erebor_report::Report`] that `erebor report RUN` would gather for its selection, as JSON.
pub(crate) struct ReportRunData;

impl RunDataSource for ReportRunData {
    fn gather<'a>(&'a self, store: &'a Store, request: RunDataRequest<'a>) -> Gathering<'a> {
        Box::pin(async move {
            if request.kind != erebor_steps::report::KIND {
                return Err(StepFailure::bad_input(format!(
                    "no run data is gathered for kind `{}`",
                    request.kind
                )));
            }
            let config: ReportConfig = parse_with(request.with)?;
            let selection = selection(config, request.step_id.as_str());
            let report = gathered(store, request.run_id.as_str(), &selection).await?;
            serde_json::to_value(&report)
                .map_err(|e| StepFailure::unknown(format!("serialising the report data: {e}")))
        })
    }
}

/// The run's report; a selector that names no step is bad input, a store error transient.
async fn gathered(
    store: &Store,
    run_id: &str,
    selection: &Selection,
) -> Result<erebor_report::Report, StepFailure> {
    let run = store
        .find_run(run_id)
        .await
        .map_err(|e| StepFailure::transient(format!("reading run {run_id}: {e}")))?;
    gather::gather(store, &run, selection).await.map_err(|e| {
        if e.downcast_ref::<crate::outcome::BadInput>().is_some() {
            StepFailure::bad_input(format!("with.steps: {e}"))
        } else {
            StepFailure::transient(format!("reading the run's metrics: {e:#}"))
        }
    })
}
