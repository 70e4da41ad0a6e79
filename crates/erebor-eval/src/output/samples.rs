//! Samples files as lm-evaluation-harness 0.4 writes them with `--log_samples`:
//! `samples_<task>_<date>.jsonl`, one line per document and filter, keys in lm-eval's order.

use super::pyjson::{PyValue, dumps};
use crate::cache::sha256_hex;
use crate::evaluator::{DocResult, prompt_hash};
use crate::task::{Request, response_json, split_metric_key};

/// lm-eval's `arguments`: `{"gen_args_0": {"arg_0": context, "arg_1": continuation}, …}`;
/// a generation request's `arg_1` is its generation kwargs.
fn arguments(requests: &[Request]) -> PyValue {
    PyValue::dict(requests.iter().enumerate().map(|(i, request)| {
        let args = match request {
            Request::Loglikelihood {
                context,
                continuation,
            } => PyValue::dict([
                ("arg_0", PyValue::str(context.as_str())),
                ("arg_1", PyValue::str(continuation.as_str())),
            ]),
            Request::GenerateUntil {
                context,
                until,
                max_gen_toks,
            } => PyValue::dict([
                ("arg_0", PyValue::str(context.as_str())),
                (
                    "arg_1",
                    PyValue::dict([
                        (
                            "until",
                            PyValue::List(until.iter().map(|u| PyValue::str(u.as_str())).collect()),
                        ),
                        ("do_sample", PyValue::Bool(false)),
                        ("temperature", PyValue::Float(0.0)),
                        ("max_gen_toks", PyValue::Int(*max_gen_toks as i128)),
                    ]),
                ),
            ]),
        };
        (format!("gen_args_{i}"), args)
    }))
}

/// lm-eval's `doc_hash`: sha256 of `json.dumps(doc, indent=2, ensure_ascii=False)`.
pub fn doc_hash(doc: &PyValue) -> String {
    sha256_hex(&dumps(doc, Some(2)))
}

/// The lines of a samples file for one task, as lm-eval 0.4.13 writes them: for each filter
/// of the task in order, one line per document ([`sample_line`]).
pub(crate) fn sample_lines(docs: &[DocResult]) -> Vec<String> {
    let filters: Vec<&str> = docs.first().map_or(Vec::new(), |d| {
        d.filtered.iter().map(|(name, _)| name.as_str()).collect()
    });
    filters
        .iter()
        .flat_map(|filter| docs.iter().map(move |doc| sample_line(doc, filter)))
        .collect()
}

/// One line of a samples file (without its newline) for one filter of the document's task, as
/// lm-eval 0.4 writes it: `doc_id`, `doc`, `target`, `arguments`, `resps`, `filtered_resps`
/// (after that filter), `filter`, `metrics`, the three hashes, then the document's metric values
/// under that filter (named without the filter, as lm-eval names them in samples). erebor adds
/// `warnings` when there are any.
pub fn sample_line(doc: &DocResult, filter: &str) -> String {
    let instance = &doc.instance;
    let resps = PyValue::List(
        doc.responses
            .iter()
            .map(|r| PyValue::List(vec![PyValue::from(&response_json(r))]))
            .collect(),
    );
    let filtered = doc
        .filtered
        .iter()
        .find(|(name, _)| name == filter)
        .map_or(&[][..], |(_, values)| values.as_slice());
    let filtered = PyValue::List(filtered.iter().map(PyValue::from).collect());
    let metrics: Vec<(&str, f64)> = doc
        .metrics
        .iter()
        .filter_map(|(key, value)| {
            let (metric, of) = split_metric_key(key);
            (of == filter).then_some((metric, *value))
        })
        .collect();
    let mut entries: Vec<(String, PyValue)> = vec![
        ("doc_id".into(), PyValue::Int(instance.doc_id as i128)),
        ("doc".into(), instance.doc.clone()),
        ("target".into(), PyValue::str(instance.target.as_str())),
        ("arguments".into(), arguments(&instance.requests)),
        ("resps".into(), resps),
        ("filtered_resps".into(), filtered),
        ("filter".into(), PyValue::str(filter)),
        (
            "metrics".into(),
            PyValue::List(
                metrics
                    .iter()
                    .map(|(name, _)| PyValue::str(*name))
                    .collect(),
            ),
        ),
        ("doc_hash".into(), PyValue::Str(doc_hash(&instance.doc))),
        ("prompt_hash".into(), PyValue::Str(prompt_hash(instance))),
        (
            "target_hash".into(),
            PyValue::Str(sha256_hex(&instance.target)),
        ),
    ];
    for (name, value) in metrics {
        entries.push((name.to_owned(), PyValue::Float(value)));
    }
    if !doc.warnings.is_empty() {
        entries.push((
            "warnings".into(),
            PyValue::List(
                doc.warnings
                    .iter()
                    .map(|w| PyValue::str(w.as_str()))
                    .collect(),
            ),
        ));
    }
    dumps(&PyValue::Dict(entries), None)
}
