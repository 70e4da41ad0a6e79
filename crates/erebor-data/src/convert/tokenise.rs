//! Tokenising a split on every core, with the length filter and invalid-row handling.

use super::config::ConvertConfig;
use super::output::{SplitRows, SplitTokens};
use super::run::{ConvertEnv, note_invalid};
use super::sources::InvalidRows;
use crate::error::DataError;
use crate::mappers::Record;
use crate::tokenise::{BoundaryRetokenised, ChatTokenizer};
use erebor_core::dataset::{DatasetKind, TokenisedPreference, TokenisedSft};
use std::sync::atomic::{AtomicU64, Ordering};

/// What tokenising a split removed or noted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TokeniseOutcome {
    /// Rows over `max_length` / `max_prompt_length`.
    pub too_long: u64,
    /// Preference rows whose completions were tokenised apart from the prompt.
    pub boundary_retokenised: u64,
}

enum Tokenised {
    Sft(TokenisedSft),
    Preference(TokenisedPreference, BoundaryRetokenised),
}

/// Maps `items` with `f` on every available core, keeping the order. `f` returns an outer
/// error to stop everything and an inner one for a failure of that item alone.
fn parallel_map<T: Sync, U: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<Result<U, DataError>, DataError> + Sync,
) -> Result<Vec<Result<U, DataError>>, DataError> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Result<Vec<_>, _>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for handle in handles {
            let part = handle
                .join()
                .map_err(|_| DataError::Invalid("a tokeniser thread panicked".into()))??;
            out.extend(part);
        }
        Ok(out)
    })
}

/// Tokenises `split` in place: rows that cannot be tokenised are skipped (with
/// `skip_invalid`) or fail the step; rows over the length limits are dropped.
pub(super) fn tokenise_split(
    chat: &ChatTokenizer,
    config: &ConvertConfig,
    split: &mut SplitRows,
    env: &ConvertEnv<'_>,
    invalid: &mut InvalidRows,
) -> Result<TokeniseOutcome, DataError> {
    let done = AtomicU64::new(0);
    let results = parallel_map(&split.records, |record| {
        if env.cancel.is_cancelled() {
            return Err(DataError::Cancelled);
        }
        let position = done.fetch_add(1, Ordering::Relaxed) + 1;
        if position.is_multiple_of(1024) {
            env.progress.set_position(position);
        }
        Ok(match record {
            Record::Sft(sft) => chat.sft(sft).map(Tokenised::Sft),
            Record::Preference(pair) => chat
                .preference(pair)
                .map(|(tokens, boundary)| Tokenised::Preference(tokens, boundary)),
        })
    })?;
    let mut outcome = TokeniseOutcome::default();
    let mut kept_records = Vec::with_capacity(split.records.len());
    let mut sft_rows = Vec::new();
    let mut preference_rows = Vec::new();
    for (record, result) in std::mem::take(&mut split.records).into_iter().zip(results) {
        let tokenised = match result {
            Ok(tokenised) => tokenised,
            Err(error) if config.skip_invalid => {
                note_invalid(invalid, &error);
                continue;
            }
            Err(error) => return Err(error),
        };
        let (total, prompt) = match &tokenised {
            Tokenised::Sft(row) => (row.input_ids.len(), 0),
            Tokenised::Preference(row, _) => (
                row.prompt_ids.len() + row.chosen_ids.len().max(row.rejected_ids.len()),
                row.prompt_ids.len(),
            ),
        };
        let too_long = config.max_length.is_some_and(|max| total > max)
            || config.max_prompt_length.is_some_and(|max| prompt > max);
        if too_long {
            outcome.too_long += 1;
            continue;
        }
        match tokenised {
            Tokenised::Sft(row) => sft_rows.push(row),
            Tokenised::Preference(row, BoundaryRetokenised(retokenised)) => {
                outcome.boundary_retokenised += u64::from(retokenised);
                preference_rows.push(row);
            }
        }
        kept_records.push(record);
    }
    split.records = kept_records;
    split.tokens = Some(match config.kind() {
        DatasetKind::Sft => SplitTokens::Sft(sft_rows),
        DatasetKind::Preference => SplitTokens::Preference(preference_rows),
    });
    Ok(outcome)
}
