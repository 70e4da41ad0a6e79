//! Rows of token ids scored in batches: each row's positions predict target tokens of one or
//! more requests.

use std::collections::HashMap;

use burn::tensor::{Int, Tensor, TensorData};

use super::loglikelihood::{LoglikelihoodRequest, LoglikelihoodResult, Scorer};
use super::token_logprobs;
use crate::error::{ModelError, Result};
use crate::model::{KvCache, TokenBatch};

/// A continuation token to score: predicted at `position` of its row.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// Position in the row whose logits predict `token`.
    pub position: usize,
    /// The token scored.
    pub token: u32,
    /// The request it belongs to.
    pub request: usize,
}

/// One input row and the targets its positions predict, in continuation order per request.
#[derive(Debug, Clone)]
pub(super) struct Row {
    /// Input ids (after the cache the row continues, if any).
    pub input: Vec<u32>,
    /// Targets of one or more requests.
    pub targets: Vec<Target>,
}

impl Row {
    /// A row whose last `continuation.len()` positions predict `continuation` for `request`.
    pub(super) fn for_continuation(input: Vec<u32>, request: usize, continuation: &[u32]) -> Self {
        let n = continuation.len();
        let first = input.len() + 1 - n;
        let targets = continuation
            .iter()
            .enumerate()
            .map(|(j, &token)| Target {
                position: first - 1 + j,
                token,
                request,
            })
            .collect();
        Row { input, targets }
    }
}

/// Rows with the same input become one row with all their targets (the input runs once).
pub(super) fn merge_identical(rows: Vec<Row>) -> Vec<Row> {
    let mut index: HashMap<Vec<u32>, usize> = HashMap::new();
    let mut out: Vec<Row> = Vec::new();
    for row in rows {
        match index.get(&row.input) {
            Some(&k) => out[k].targets.extend(row.targets),
            None => {
                index.insert(row.input.clone(), out.len());
                out.push(row);
            }
        }
    }
    out
}

impl Scorer<'_> {
    /// Scores rows sorted by length (longest first), in batches, optionally continuing from a
    /// batch-1 cache at position `cache.len()`.
    pub(super) fn score_rows(
        &self,
        mut rows: Vec<Row>,
        cache: Option<&KvCache>,
        results: &mut [Option<LoglikelihoodResult>],
        requests: &[LoglikelihoodRequest],
    ) -> Result<()> {
        rows.sort_by_key(|r| std::cmp::Reverse(r.input.len()));
        let mut start = 0;
        while start < rows.len() {
            let longest = rows[start].input.len().max(1);
            let by_tokens = (self.options.max_batch_tokens / longest).max(1);
            let end = (start + self.options.batch_size.min(by_tokens).max(1)).min(rows.len());
            self.score_batch(&rows[start..end], cache, results, requests)?;
            start = end;
        }
        Ok(())
    }

    fn score_batch(
        &self,
        rows: &[Row],
        cache: Option<&KvCache>,
        results: &mut [Option<LoglikelihoodResult>],
        requests: &[LoglikelihoodRequest],
    ) -> Result<()> {
        let device = self.model.device();
        let seqs: Vec<Vec<u32>> = rows.iter().map(|r| r.input.clone()).collect();
        self.count(seqs.iter().map(Vec::len).sum());
        let (hidden, width) = match cache {
            Some(cache) => {
                let start = vec![cache.len(); rows.len()];
                let batch = TokenBatch::right_padded_at(&seqs, self.options.pad_id, &start);
                let mut rep = cache.repeat(rows.len());
                (
                    self.model.forward_hidden(&batch, Some(&mut rep)),
                    batch.seq_len(),
                )
            }
            None => {
                let batch = TokenBatch::right_padded(&seqs, self.options.pad_id);
                (self.model.forward_hidden(&batch, None), batch.seq_len())
            }
        };
        let mut flat_index = Vec::new();
        let mut target_ids = Vec::new();
        for (b, row) in rows.iter().enumerate() {
            for t in &row.targets {
                let flat = b * width + t.position;
                flat_index.push(
                    i64::try_from(flat).expect("an index into the hidden states fits in i64"),
                );
                target_ids.push(i64::from(t.token));
            }
        }
        let n = flat_index.len();
        let [batch, seq, h] = hidden.dims();
        let index = Tensor::<1, Int>::from_data(TensorData::new(flat_index, [n]), &device);
        let picked = hidden
            .reshape([batch * seq, h])
            .select(0, index)
            .reshape([1, n, h]);
        let logits = self.model.lm_head_forward(picked);
        let targets = Tensor::<2, Int>::from_data(TensorData::new(target_ids, [1, n]), &device);
        let argmax = logits.clone().argmax(2).reshape([n]);
        let lps = token_logprobs(logits, targets).reshape([n]);
        let lps: Vec<f32> = lps
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| data_err(&e))?;
        let argmax: Vec<i64> = argmax
            .into_data()
            .try_into_vec_as::<i64>()
            .map_err(|e| data_err(&e))?;
        let targets = rows.iter().flat_map(|r| &r.targets);
        for ((t, lp), best) in targets.zip(lps).zip(argmax) {
            let entry = results[t.request].get_or_insert_with(|| LoglikelihoodResult {
                token_logprobs: Vec::new(),
                logprob: 0.0,
                is_greedy: true,
                truncated: false,
            });
            entry.token_logprobs.push(lp);
            entry.logprob += f64::from(lp);
            entry.is_greedy &= best == i64::from(t.token);
            let r = &requests[t.request];
            entry.truncated = r.context.len() + r.continuation.len() > self.options.max_length + 1;
        }
        Ok(())
    }
}

fn data_err(e: &burn::tensor::DataError) -> ModelError {
    ModelError::InvalidRequest(format!("reading scores back from the device failed: {e:?}"))
}
