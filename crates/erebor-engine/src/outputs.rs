//! What happens to a finished step's outputs: path outputs are hashed and recorded as
//! artifacts with their lineage, metric outputs become metrics, `expect:` checks are evaluated.

use erebor_core::{OutputType, OutputValue, StepFailure, StepOutputs};
use erebor_store::{MetricRow, NewArtifact, merge_attempts};
use erebor_workflow::HashCache;
use erebor_workflow::schema::Expectation;
use std::path::Path;

/// Hashes every path output (and the log) into artifact records. `lineage` lists the inputs
/// the step consumed: (path, sha256, producing artifact id).
pub(crate) fn artifacts_for(
    outputs: &StepOutputs,
    declared: &[(String, OutputType)],
    lineage: &[(String, String, Option<String>)],
    cache: &HashCache,
) -> Result<Vec<NewArtifact>, StepFailure> {
    let mut artifacts = Vec::new();
    for (name, value) in &outputs.values {
        let OutputValue::Path(path) = value else {
            continue;
        };
        let hash = cache.hash(path).map_err(|error| {
            StepFailure::fatal(format!(
                "output `{name}` names {} but it cannot be read: {error}",
                path.display()
            ))
        })?;
        let ty = declared
            .iter()
            .find(|(n, _)| n == name)
            .map_or("file", |(_, ty)| output_type_name(*ty));
        artifacts.push(NewArtifact {
            name: name.clone(),
            output_type: ty.to_owned(),
            path: path.display().to_string(),
            sha256: hash.sha256,
            bytes: hash.bytes,
            inputs: lineage.to_vec(),
        });
    }
    Ok(artifacts)
}

/// The log of an attempt as an artifact (no lineage).
pub(crate) fn log_artifact(log: &Path) -> Option<NewArtifact> {
    let hash = erebor_core::content::hash_file(log).ok()?;
    Some(NewArtifact {
        name: "log".to_owned(),
        output_type: "file".to_owned(),
        path: log.display().to_string(),
        sha256: hash.sha256,
        bytes: hash.bytes,
        inputs: Vec::new(),
    })
}

/// The stored name of an output type.
pub(crate) fn output_type_name(ty: OutputType) -> &'static str {
    match ty {
        OutputType::Model => "model",
        OutputType::Adapter => "adapter",
        OutputType::Dataset => "dataset",
        OutputType::RefLogps => "ref_logps",
        OutputType::Report => "report",
        OutputType::File => "file",
        OutputType::Metric => "metric",
        OutputType::Text => "text",
    }
}

/// Checks that every output the kind declared as a path exists and every value has the
/// declared type; outputs the kind did not declare are an error too.
pub(crate) fn check_outputs(
    outputs: &StepOutputs,
    declared: &[(String, OutputType)],
) -> Result<(), StepFailure> {
    for (name, value) in &outputs.values {
        let Some((_, ty)) = declared.iter().find(|(n, _)| n == name) else {
            let names: Vec<&str> = declared.iter().map(|(n, _)| n.as_str()).collect();
            return Err(StepFailure::fatal(format!(
                "the step returned output `{name}`, which its kind does not declare (declared: {})",
                names.join(", ")
            )));
        };
        let ok = match value {
            OutputValue::Path(path) => {
                if !path.exists() {
                    return Err(StepFailure::fatal(format!(
                        "output `{name}` names {}, which does not exist",
                        path.display()
                    )));
                }
                ty.is_path()
            }
            OutputValue::Metric(_) => *ty == OutputType::Metric,
            OutputValue::Text(_) => *ty == OutputType::Text,
        };
        if !ok {
            return Err(StepFailure::fatal(format!(
                "output `{name}` has the wrong type: declared {}",
                output_type_name(*ty)
            )));
        }
    }
    Ok(())
}

/// Evaluates `expect:` checks against the step's metric outputs and the last value of each
/// metric key (latest attempt wins). Returns the failed checks as messages.
pub(crate) fn evaluate_expectations(
    expect: &[Expectation],
    outputs: &StepOutputs,
    metrics: &[MetricRow],
) -> Vec<String> {
    let merged = merge_attempts(metrics);
    expect
        .iter()
        .filter_map(|check| {
            let value = match outputs.get(&check.key) {
                Some(OutputValue::Metric(value)) => Some(*value),
                _ => merged
                    .get(&check.key)
                    .and_then(|series| series.last())
                    .map(|(_, v)| *v),
            };
            match value {
                Some(value) if check.comparison.holds(value, check.threshold) => None,
                Some(value) => Some(format!("{check} (got {value})")),
                None => Some(format!(
                    "{check} (no metric or output `{}` was recorded)",
                    check.key
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use erebor_workflow::schema::Comparison;

    fn row(key: &str, index: i64, value: f64, attempt: &str) -> MetricRow {
        MetricRow {
            run_id: "r".into(),
            step_id: "s".into(),
            attempt_id: attempt.into(),
            key: key.into(),
            index,
            value,
            recorded_at: 0,
        }
    }

    #[test]
    fn expectations_use_outputs_then_the_last_metric_value() {
        let expect = vec![
            Expectation {
                key: "accuracy".into(),
                comparison: Comparison::AtLeast,
                threshold: 0.5,
            },
            Expectation {
                key: "train/loss".into(),
                comparison: Comparison::Below,
                threshold: 1.0,
            },
            Expectation {
                key: "missing".into(),
                comparison: Comparison::Equal,
                threshold: 1.0,
            },
        ];
        let outputs = StepOutputs::new().with_metric("accuracy", 0.4);
        let metrics = vec![
            row("train/loss", 0, 2.0, "a1"),
            row("train/loss", 1, 0.5, "a1"),
        ];
        let failures = evaluate_expectations(&expect, &outputs, &metrics);
        assert_eq!(
            failures,
            vec![
                "accuracy >= 0.5 (got 0.4)".to_owned(),
                "missing == 1 (no metric or output `missing` was recorded)".to_owned()
            ]
        );
    }

    #[test]
    fn undeclared_or_missing_outputs_are_errors() {
        let declared = vec![("model".to_owned(), OutputType::Model)];
        let missing = StepOutputs::new().with_path("model", "/no/such/dir");
        assert!(
            check_outputs(&missing, &declared)
                .unwrap_err()
                .message
                .contains("does not exist")
        );
        let extra = StepOutputs::new().with_metric("loss", 1.0);
        assert!(
            check_outputs(&extra, &declared)
                .unwrap_err()
                .message
                .contains("does not declare")
        );
    }
}
