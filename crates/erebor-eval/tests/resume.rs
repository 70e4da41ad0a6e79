//! Resume: finished documents are kept as they finish and not scored again; a different model
//! or a changed prompt is scored afresh; a cancelled evaluation continues where it stopped.
//! (`tests/e2e_eval.rs` kills the `erebor eval` binary with SIGKILL and resumes it.)

mod common;

use common::{McTask, arith_docs, tiny_model};
use erebor_core::{CancelToken, NullProgress, ProgressReporter};
use erebor_eval::evaluator::{EvalModel, Hooks};
use erebor_eval::{EvalError, EvalSettings, Evaluator, ResumeCache};

fn settings() -> EvalSettings {
    // Chunks of 32 requests: 11 documents of 3 choices each.
    EvalSettings {
        batch_size: 4,
        ..EvalSettings::default()
    }
}

fn hooks() -> Hooks<'static> {
    Hooks {
        progress: &NullProgress,
        cancel: None,
    }
}

#[test]
fn a_second_run_takes_every_document_from_the_cache() {
    let (model, tok) = tiny_model();
    let m = EvalModel {
        model: &model,
        tokenizer: &tok,
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = ResumeCache::new(dir.path(), &"1".repeat(64), "f32");
    let task = McTask {
        name: "arith".into(),
        docs: arith_docs(20),
    };
    let first = Evaluator::new(m, settings(), hooks())
        .with_cache(&cache)
        .evaluate_task(&task)
        .unwrap();
    assert_eq!((first.scored_docs(), first.cached_docs()), (20, 0));
    let second = Evaluator::new(m, settings(), hooks())
        .with_cache(&cache)
        .evaluate_task(&task)
        .unwrap();
    assert_eq!((second.scored_docs(), second.cached_docs()), (0, 20));
    assert_eq!(second.tokens.forward, 0);
    assert_eq!(first.metrics, second.metrics);
    for (a, b) in first.docs.iter().zip(&second.docs) {
        assert_eq!(a.responses, b.responses);
    }

    // Another model: its own cache, everything scored.
    let other = ResumeCache::new(dir.path(), &"2".repeat(64), "f32");
    let third = Evaluator::new(m, settings(), hooks())
        .with_cache(&other)
        .evaluate_task(&task)
        .unwrap();
    assert_eq!(third.scored_docs(), 20);

    // A changed prompt (same doc_id, same task config) is scored again, the rest is not.
    let mut docs = arith_docs(20);
    docs[5].0 = "Bob has 9 coins.\nAnswer:".into();
    let changed = McTask {
        name: "arith".into(),
        docs,
    };
    let fourth = Evaluator::new(m, settings(), hooks())
        .with_cache(&cache)
        .evaluate_task(&changed)
        .unwrap();
    assert_eq!((fourth.scored_docs(), fourth.cached_docs()), (1, 19));
    assert!(!fourth.docs[5].from_cache);
}

/// Cancels the evaluation once the first chunk of documents is done.
struct CancelAfterFirstChunk(CancelToken);

impl ProgressReporter for CancelAfterFirstChunk {
    fn start_phase(&self, _phase: &str, _total: Option<u64>) {}
    fn set_position(&self, position: u64) {
        if position > 0 {
            self.0.cancel();
        }
    }
}

#[test]
fn a_cancelled_evaluation_continues_where_it_stopped() {
    let (model, tok) = tiny_model();
    let m = EvalModel {
        model: &model,
        tokenizer: &tok,
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = ResumeCache::new(dir.path(), &"3".repeat(64), "f32");
    let task = McTask {
        name: "arith".into(),
        docs: arith_docs(30),
    };
    let token = CancelToken::new();
    let stopper = CancelAfterFirstChunk(token.clone());
    let hooks = Hooks {
        progress: &stopper,
        cancel: Some(&token),
    };
    let error = Evaluator::new(m, settings(), hooks)
        .with_cache(&cache)
        .evaluate_task(&task)
        .unwrap_err();
    assert!(matches!(error, EvalError::Cancelled { .. }), "{error}");
    let resumed = Evaluator::new(m, settings(), self::hooks())
        .with_cache(&cache)
        .evaluate_task(&task)
        .unwrap();
    // The first chunk: 11 documents (33 requests >= 32).
    assert_eq!((resumed.cached_docs(), resumed.scored_docs()), (11, 19));
    let fresh = Evaluator::new(m, settings(), self::hooks())
        .evaluate_task(&task)
        .unwrap();
    assert_eq!(fresh.metrics, resumed.metrics);
}
