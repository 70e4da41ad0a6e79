//! Evaluation order and few-shot draws, as each harness makes them.
//!
//! **b281b09** (`evaluator.py`, `base.py`): one `random.Random()` per task, seeded 42, shuffles
//! the evaluation documents; `--limit` keeps the first `limit` of the shuffled list; then, for
//! each kept document in that order, `fewshot_context` draws its examples from the same
//! generator: `rnd.sample(training_docs, k)` when the task has training docs, else
//! `rnd.sample(validation-or-test docs, k + 1)` with the document itself dropped. MMLU overrides
//! `fewshot_examples` with the first `k` dev items (no draw).
//!
//! **lm-eval 0.4** (`api/task.py`, `api/samplers.py`): documents are not shuffled; the
//! `ContextSampler` has its own `Random(seed)` (1234 by default) and draws
//! `rnd.sample(fewshot_docs, k)` per document in order, or `k + 1` with the document removed
//! when the few-shot split is the test split; `first_n` takes the first `k`.
//!
//! Both join examples the same way: `description + Σ (text + target_delimiter + target +
//! fewshot_delimiter) + text`.

use crate::error::{EvalError, Result};
use crate::pyrandom::PyRandom;
use crate::task::Harness;

/// The seed of the harness's generator when the user sets none.
pub(crate) fn default_seed(harness: Harness) -> u64 {
    match harness {
        Harness::B281b09 => 42,
        Harness::V04 => 1234,
    }
}

/// Where a task's few-shot examples come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShotSource {
    /// `rnd.sample(pool, k)` from a pool of `len` examples; with `exclude_doc`, `k + 1` are drawn
    /// and those equal to the document are dropped (the pool is the evaluated split).
    Sample {
        /// Size of the pool.
        len: usize,
        /// Draw one more and drop the evaluated document.
        exclude_doc: bool,
    },
    /// The first `k` examples of a pool of `len`, in order (MMLU's dev split).
    FirstN {
        /// Size of the pool.
        len: usize,
    },
}

/// One document to evaluate and the pool indices of its few-shot examples, in prompt order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedDoc {
    /// Index of the document among the evaluation documents (file order).
    pub doc: usize,
    /// Indices into the few-shot pool.
    pub shots: Vec<usize>,
}

/// What [`plan`] needs to know about a task.
#[derive(Clone, Copy, Debug)]
pub struct PlanSpec {
    /// Whose semantics.
    pub harness: Harness,
    /// Overrides `default_seed`.
    pub seed: Option<u64>,
    /// Number of evaluation documents.
    pub num_docs: usize,
    /// Keep at most this many documents (after the shuffle, for b281b09).
    pub limit: Option<usize>,
    /// Examples per document.
    pub num_fewshot: usize,
    /// Where they come from.
    pub source: ShotSource,
}

/// The evaluation order and every document's few-shot draw. `same_doc(doc, shot)` tells
/// whether pool item `shot` equals evaluation document `doc` (Python's `x != doc` on the
/// processed documents), used only with `exclude_doc`.
pub fn plan(
    task: &str,
    spec: &PlanSpec,
    same_doc: &dyn Fn(usize, usize) -> bool,
) -> Result<Vec<PlannedDoc>> {
    check_pool(task, spec)?;
    let mut rnd = PyRandom::new(spec.seed.unwrap_or(default_seed(spec.harness)));
    let mut order: Vec<usize> = (0..spec.num_docs).collect();
    if spec.harness == Harness::B281b09 {
        rnd.shuffle(&mut order);
    }
    order.truncate(spec.limit.unwrap_or(usize::MAX));
    let k = spec.num_fewshot;
    Ok(order
        .into_iter()
        .map(|doc| {
            let shots = match spec.source {
                _ if k == 0 => Vec::new(),
                ShotSource::FirstN { .. } => (0..k).collect(),
                ShotSource::Sample {
                    len,
                    exclude_doc: false,
                } => rnd.sample_indices(len, k),
                ShotSource::Sample {
                    len,
                    exclude_doc: true,
                } => rnd
                    .sample_indices(len, k + 1)
                    .into_iter()
                    .filter(|&shot| !same_doc(doc, shot))
                    .take(k)
                    .collect(),
            };
            PlannedDoc { doc, shots }
        })
        .collect())
}

fn check_pool(task: &str, spec: &PlanSpec) -> Result<()> {
    let k = spec.num_fewshot;
    if k == 0 {
        return Ok(());
    }
    let (len, needed) = match spec.source {
        ShotSource::FirstN { len } => (len, k),
        ShotSource::Sample { len, exclude_doc } => (len, k + usize::from(exclude_doc)),
    };
    if needed > len {
        return Err(EvalError::Task {
            task: task.to_string(),
            message: format!(
                "{k}-shot needs {needed} few-shot examples but the few-shot pool has {len}"
            ),
        });
    }
    Ok(())
}

/// A few-shot example: the text of its prompt and its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// `doc_to_text`.
    pub text: String,
    /// `doc_to_target` (for the b281b09 tasks it carries its own leading space).
    pub target: String,
}

/// How examples are joined.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Delimiters<'a> {
    /// Between an example's text and its target (lm-eval 0.4's `target_delimiter`).
    pub target: &'a str,
    /// After each example (`fewshot_delimiter`, "\n\n").
    pub fewshot: &'a str,
}

/// The b281b09 tasks' delimiters: targets carry their leading space, examples end in "\n\n".
pub(crate) const B281B09_DELIMITERS: Delimiters<'static> = Delimiters {
    target: "",
    fewshot: "\n\n",
};

/// `description + examples + query`, each example `text + target delimiter + target + fewshot
/// delimiter` (an empty target adds neither delimiter, as lm-eval 0.4's `build_qa_turn`).
pub(crate) fn build_context(
    description: &str,
    examples: &[Example],
    delimiters: Delimiters<'_>,
    query: &str,
) -> String {
    let mut context = String::from(description);
    for example in examples {
        context.push_str(&example.text);
        if !example.target.is_empty() {
            context.push_str(delimiters.target);
            context.push_str(&example.target);
            context.push_str(delimiters.fewshot);
        }
    }
    context.push_str(query);
    context
}
