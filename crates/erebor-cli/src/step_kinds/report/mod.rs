//! The runner side of the `report` kind, whose step-process side is [`erebor_steps::report`]:
//! [`gather`] reads a run's report data from the store (`erebor report RUN` uses it too) and
//! [`ReportRunData`] hands it to a report step through the step protocol, so the step's process
//! never opens the store.

pub(crate) mod gather;
mod run_data;

pub(crate) use run_data::ReportRunData;
