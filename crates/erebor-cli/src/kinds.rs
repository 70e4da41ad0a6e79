//! The step kinds this binary knows: one line each. Add a kind by adding its line here.

use erebor_workflow::KindRegistry;

/// Every step kind `uses:` may name.
pub(crate) fn registry() -> KindRegistry {
    KindRegistry::new()
        .with(erebor_steps::CommandKind)
        .with(erebor_steps::NoopKind)
        .with(erebor_steps::ReportKind)
        .with(erebor_data::ConvertKind)
        .with(erebor_train::TrainStepKind::SFT)
        .with(erebor_train::TrainStepKind::PREFERENCE)
        .with(erebor_eval::EvalKind)
        .with(crate::step_kinds::mt_bench::kind())
}
