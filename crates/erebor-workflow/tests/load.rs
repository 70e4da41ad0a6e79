//! Loading valid workflows: matrix expansion and arm pairing, dependencies from templates,
//! typed substitution, secrets, and fingerprints that follow inputs and upstream steps.

mod kinds;

use erebor_workflow::fingerprint::compute;
use erebor_workflow::{HashCache, LoadOptions, MissingParams, Workflow, load_str};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

const DPO_VS_DPOP: &str = r#"
name: dpo-vs-dpop
params:
  beta: 0.3
  api_key: {type: string, secret: true, env: JUDGE_KEY}
steps:
  - id: report
    uses: eval
    needs: [eval]
    with:
      dpo: ${{ steps.eval[dpo].outputs.accuracy }}
      dpop: ${{ steps.eval[dpop].outputs.accuracy }}
  - id: convert
    uses: convert
    with: {source: data/pairs.jsonl}
  - id: train
    uses: sft
    matrix: {loss: [dpo, dpop]}
    with:
      model: base
      data: ${{ steps.convert.outputs.dataset }}
      loss: ${{ matrix.loss }}
      beta: ${{ params.beta }}
  - id: eval
    uses: eval
    matrix: {loss: [dpo, dpop]}
    with:
      model: ${{ steps.train.outputs.model }}
      key: "Bearer ${{ params.api_key }}"
      note: "literal $${{ not.a.template }}"
"#;

fn load(text: &str, overrides: &[(&str, &str)], base: &Path) -> Workflow {
    let options = LoadOptions {
        overrides: overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        env: &|name| (name == "JUDGE_KEY").then(|| "sk-from-env".to_owned()),
        missing: MissingParams::Error,
    };
    load_str(
        Path::new("wf.yaml"),
        text,
        base,
        &kinds::registry(),
        &options,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn matrix_arms_pair_up_and_order_follows_dependencies() {
    let workflow = load(DPO_VS_DPOP, &[("beta", "0.1")], Path::new("/tmp"));
    let ids: Vec<&str> = workflow.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "convert",
            "train[dpo]",
            "train[dpop]",
            "eval[dpo]",
            "eval[dpop]",
            "report"
        ]
    );
    let eval_dpop = workflow.step("eval[dpop]").unwrap();
    assert_eq!(
        eval_dpop.needs,
        vec!["train[dpop]".into()],
        "arms pair by their shared axis"
    );
    assert_eq!(
        eval_dpop.with["model"],
        json!("${{ steps.train[dpop].outputs.model }}")
    );
    let report = workflow.step("report").unwrap();
    assert_eq!(
        report.needs,
        vec!["eval[dpo]".into(), "eval[dpop]".into()],
        "a base in needs means every arm"
    );
    let train = workflow.step("train[dpo]").unwrap();
    assert_eq!(
        train.with["beta"],
        json!(0.1),
        "a whole-string template keeps the number type"
    );
    assert_eq!(train.with["loss"], json!("dpo"));
    assert_eq!(train.arm, vec![("loss".to_owned(), json!("dpo"))]);
    assert_eq!(workflow.select("train").len(), 2);
    assert_eq!(
        workflow.descendants(&"train[dpo]".into()),
        vec!["eval[dpo]".into(), "report".into()]
    );
}

#[test]
fn secrets_stay_templates_until_the_step_process_and_are_masked() {
    let workflow = load(DPO_VS_DPOP, &[], Path::new("/tmp"));
    let eval = workflow.step("eval[dpo]").unwrap();
    assert_eq!(eval.with["key"], json!("Bearer ${{ params.api_key }}"));
    assert_eq!(eval.with["note"], json!("literal $${{ not.a.template }}"));
    assert_eq!(workflow.params.redacted()["api_key"], json!("***"));
    assert_eq!(
        workflow.params.secret_values(),
        vec!["sk-from-env".to_owned()]
    );
    let outputs =
        |_: &erebor_core::StepId, _: &str| Some(erebor_core::OutputValue::Path("/m".into()));
    let with = erebor_workflow::runtime::substitute_outputs(&eval.with, &outputs).unwrap();
    assert_eq!(
        with["key"],
        json!("Bearer ${{ params.api_key }}"),
        "outputs first, secrets later"
    );
    let final_with = erebor_workflow::runtime::finalize(&with, &workflow.params.secrets()).unwrap();
    assert_eq!(final_with["model"], json!("/m"));
    assert_eq!(final_with["key"], json!("Bearer sk-from-env"));
    assert_eq!(final_with["note"], json!("literal ${{ not.a.template }}"));
}

#[test]
fn a_list_param_can_drive_the_matrix() {
    let text = "name: m\nparams:\n  losses: [dpo, ipo, slic]\nsteps:\n  - id: t\n    uses: eval\n    matrix: {loss: \"${{ params.losses }}\", seed: [1, 2]}\n";
    let workflow = load(text, &[("losses", "[dpo, dpop]")], Path::new("/tmp"));
    let ids: Vec<&str> = workflow.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["t[dpo,1]", "t[dpo,2]", "t[dpop,1]", "t[dpop,2]"]);
}

#[test]
fn one_changed_byte_of_an_input_changes_that_step_and_every_descendant() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let data = dir.path().join("data/pairs.jsonl");
    std::fs::write(&data, b"{\"prompt\": \"a\"}\n").unwrap();
    let workflow = load(DPO_VS_DPOP, &[], dir.path());
    let cache = HashCache::in_memory();
    let registry = kinds::registry();
    let fingerprints = |workflow: &Workflow| {
        let mut done: BTreeMap<String, String> = BTreeMap::new();
        let mut all = Vec::new();
        for step in &workflow.steps {
            let kind = registry.get(&step.kind).unwrap();
            let fp = compute(step, kind.as_ref(), &workflow.base_dir, &done, &cache).unwrap();
            done.insert(step.id.to_string(), fp.hash.clone());
            all.push(fp);
        }
        all
    };
    let before = fingerprints(&workflow);
    assert_eq!(
        before[0].inputs.inputs.keys().collect::<Vec<_>>(),
        ["data/pairs.jsonl"]
    );
    // Different content, same length, and a later mtime.
    std::thread::sleep(std::time::Duration::from_millis(10));
    std::fs::write(&data, b"{\"prompt\": \"b\"}\n").unwrap();
    let after = fingerprints(&workflow);
    for (old, new) in before.iter().zip(&after) {
        assert_ne!(old.hash, new.hash, "every step descends from convert");
    }
    assert_eq!(after[0].inputs.differences(&before[0].inputs).len(), 1);
    assert!(
        after[0].inputs.differences(&before[0].inputs)[0]
            .starts_with("input data/pairs.jsonl changed")
    );
    assert_eq!(
        after[1].inputs.differences(&before[1].inputs),
        vec!["upstream step `convert` changed".to_owned()]
    );

    // A param change touches only the steps that use it (and their descendants).
    let changed = load(DPO_VS_DPOP, &[("beta", "0.5")], dir.path());
    let third = fingerprints(&changed);
    assert_eq!(third[0].hash, after[0].hash, "convert does not use beta");
    assert_ne!(third[1].hash, after[1].hash);
    assert_eq!(
        third[1].inputs.differences(&after[1].inputs),
        vec!["config changed: with.beta".to_owned()]
    );
}

#[test]
fn the_secret_value_does_not_enter_the_fingerprint() {
    let text = "name: s\nparams:\n  key: {type: string, secret: true}\nsteps:\n  - id: a\n    uses: eval\n    with: {key: \"${{ params.key }}\"}\n";
    let cache = HashCache::in_memory();
    let registry = kinds::registry();
    let hash = |value: &str| {
        let workflow = load(text, &[("key", value)], Path::new("/tmp"));
        let step = &workflow.steps[0];
        compute(
            step,
            registry.get("eval").unwrap().as_ref(),
            Path::new("/tmp"),
            &BTreeMap::new(),
            &cache,
        )
        .unwrap()
        .hash
    };
    assert_eq!(hash("one"), hash("two"));
}
