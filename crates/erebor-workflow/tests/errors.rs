//! Every kind of workflow error, snapshotted: each names `file:line:col`, shows the line, and
//! says what to do.

mod kinds;

use erebor_workflow::{ErrorKind, LoadOptions, MissingParams, load_str};
use std::path::Path;

fn errors_of(text: &str) -> erebor_workflow::WorkflowErrors {
    errors_with(text, &[])
}

fn errors_with(text: &str, overrides: &[(&str, &str)]) -> erebor_workflow::WorkflowErrors {
    let options = LoadOptions {
        overrides: overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        env: &|_| None,
        missing: MissingParams::Error,
    };
    load_str(
        Path::new("workflows/broken.yaml"),
        text,
        Path::new("/nonexistent"),
        &kinds::registry(),
        &options,
    )
    .expect_err("the workflow should be rejected")
}

fn check(name: &str, kind: ErrorKind, text: &str) {
    let errors = errors_of(text);
    assert!(
        errors.has(kind),
        "{name}: expected {kind:?}, got:\n{errors}"
    );
    insta::assert_snapshot!(name, errors.to_string());
}

const GOOD_HEAD: &str = "name: demo\nparams:\n  beta: 0.3\nsteps:\n";

#[test]
fn syntax_error() {
    check(
        "syntax",
        ErrorKind::Syntax,
        "name: demo\nsteps:\n  - id: a\n    uses: convert\n    with: {source: [x.jsonl}\n",
    );
}

#[test]
fn unknown_top_level_key() {
    check(
        "unknown_top_key",
        ErrorKind::UnknownKey,
        "name: demo\nstpes:\n  - id: a\n    uses: convert\n",
    );
}

#[test]
fn unknown_step_key() {
    check(
        "unknown_step_key",
        ErrorKind::UnknownKey,
        &format!(
            "{GOOD_HEAD}  - id: data\n    uses: convert\n    with: {{source: x.jsonl}}\n  - id: train\n    uses: sft\n    neds: [data]\n    with: {{model: m, data: d}}\n"
        ),
    );
}

#[test]
fn unknown_key_in_with_is_checked_by_the_kind() {
    check(
        "unknown_with_key",
        ErrorKind::UnknownKey,
        &format!(
            "{GOOD_HEAD}  - id: train\n    uses: sft\n    with:\n      model: m\n      data: d\n      lamda: 50\n"
        ),
    );
}

#[test]
fn missing_key() {
    check(
        "missing_key",
        ErrorKind::MissingKey,
        &format!("{GOOD_HEAD}  - id: train\n    with: {{model: m, data: d}}\n"),
    );
}

#[test]
fn unknown_step_kind() {
    check(
        "unknown_kind",
        ErrorKind::UnknownStepKind,
        &format!("{GOOD_HEAD}  - id: train\n    uses: sfft\n"),
    );
}

#[test]
fn missing_dependency() {
    check(
        "missing_dependency",
        ErrorKind::MissingDependency,
        &format!(
            "{GOOD_HEAD}  - id: convert\n    uses: convert\n    with: {{source: x}}\n  - id: train\n    uses: sft\n    needs: [convrt]\n    with: {{model: m, data: d}}\n"
        ),
    );
}

#[test]
fn duplicate_step() {
    check(
        "duplicate_step",
        ErrorKind::DuplicateStep,
        &format!(
            "{GOOD_HEAD}  - id: data\n    uses: convert\n    with: {{source: a}}\n  - id: data\n    uses: convert\n    with: {{source: b}}\n"
        ),
    );
}

#[test]
fn cycle_is_printed() {
    check(
        "cycle",
        ErrorKind::Cycle,
        &format!(
            "{GOOD_HEAD}  - id: a\n    uses: eval\n    needs: [c]\n  - id: b\n    uses: eval\n    needs: [a]\n  - id: c\n    uses: eval\n    needs: [b]\n  - id: d\n    uses: eval\n"
        ),
    );
}

#[test]
fn unclosed_template() {
    check(
        "bad_template_unclosed",
        ErrorKind::BadTemplate,
        &format!(
            "{GOOD_HEAD}  - id: train\n    uses: sft\n    with: {{model: m, data: d, beta: \"${{{{ params.beta\"}}\n"
        ),
    );
}

#[test]
fn unknown_template_root() {
    check(
        "bad_template_root",
        ErrorKind::BadTemplate,
        &format!(
            "{GOOD_HEAD}  - id: train\n    uses: sft\n    with:\n      model: ${{{{ env.HOME }}}}/m\n      data: d\n"
        ),
    );
}

#[test]
fn unknown_param_reference() {
    check(
        "unknown_param",
        ErrorKind::UnknownReference,
        &format!(
            "{GOOD_HEAD}  - id: train\n    uses: sft\n    with:\n      model: m\n      data: d\n      beta: ${{{{ params.betta }}}}\n"
        ),
    );
}

#[test]
fn unknown_output_reference() {
    check(
        "unknown_output",
        ErrorKind::UnknownReference,
        &format!(
            "{GOOD_HEAD}  - id: train\n    uses: sft\n    with: {{model: m, data: d}}\n  - id: eval\n    uses: eval\n    with:\n      model: ${{{{ steps.train.outputs.modle }}}}\n"
        ),
    );
}

#[test]
fn unknown_step_in_reference() {
    check(
        "unknown_step_reference",
        ErrorKind::UnknownReference,
        &format!(
            "{GOOD_HEAD}  - id: train\n    uses: sft\n    with: {{model: m, data: d}}\n  - id: eval\n    uses: eval\n    with:\n      model: ${{{{ steps.trian.outputs.model }}}}\n"
        ),
    );
}

#[test]
fn ambiguous_matrix_reference() {
    check(
        "ambiguous_arm",
        ErrorKind::UnknownReference,
        &format!(
            "{GOOD_HEAD}  - id: train\n    uses: sft\n    matrix: {{loss: [dpo, dpop]}}\n    with: {{model: m, data: d, loss: \"${{{{ matrix.loss }}}}\"}}\n  - id: report\n    uses: eval\n    with:\n      model: ${{{{ steps.train.outputs.model }}}}\n"
        ),
    );
}

#[test]
fn unknown_matrix_axis() {
    check(
        "unknown_axis",
        ErrorKind::UnknownReference,
        &format!(
            "{GOOD_HEAD}  - id: train\n    uses: sft\n    matrix: {{loss: [dpo, dpop]}}\n    with: {{model: m, data: d, loss: \"${{{{ matrix.los }}}}\"}}\n"
        ),
    );
}

#[test]
fn type_mismatch_in_step_fields() {
    check(
        "type_retries",
        ErrorKind::TypeMismatch,
        &format!(
            "{GOOD_HEAD}  - id: convert\n    uses: convert\n    retries: many\n    with: {{source: x}}\n"
        ),
    );
}

#[test]
fn type_mismatch_in_with() {
    check(
        "type_with",
        ErrorKind::TypeMismatch,
        &format!(
            "{GOOD_HEAD}  - id: train\n    uses: sft\n    with:\n      model: m\n      data: d\n      beta: high\n"
        ),
    );
}

#[test]
fn type_mismatch_through_a_param() {
    // The param is a string; the kind wants a number where it is used.
    check(
        "type_param_use",
        ErrorKind::TypeMismatch,
        "name: demo\nparams:\n  beta: strong\nsteps:\n  - id: train\n    uses: sft\n    with:\n      model: m\n      data: d\n      beta: ${{ params.beta }}\n",
    );
}

#[test]
fn param_default_of_the_wrong_type() {
    check(
        "type_param_default",
        ErrorKind::TypeMismatch,
        "name: demo\nparams:\n  lr: {type: float, default: fast}\nsteps:\n  - id: a\n    uses: eval\n",
    );
}

#[test]
fn bad_set_flags() {
    let errors = errors_with(
        "name: demo\nparams:\n  beta: 0.3\nsteps:\n  - id: a\n    uses: eval\n",
        &[("beta", "abc"), ("betta", "1")],
    );
    assert!(errors.has(ErrorKind::BadParam));
    insta::assert_snapshot!("bad_set", errors.to_string());
}

#[test]
fn secret_default_is_refused() {
    check(
        "secret_default",
        ErrorKind::BadParam,
        "name: demo\nparams:\n  key: {type: string, secret: true, default: sk-123}\nsteps:\n  - id: a\n    uses: eval\n",
    );
}

#[test]
fn several_errors_are_reported_together() {
    let errors = errors_of(&format!(
        "{GOOD_HEAD}  - id: a\n    uses: convrt\n  - id: b\n    uses: sft\n    retries: -1\n    cache: yes please\n"
    ));
    assert_eq!(errors.errors.len(), 3, "{errors}");
}
