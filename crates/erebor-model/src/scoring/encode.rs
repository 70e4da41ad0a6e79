//! lm-evaluation-harness's encoding of a (context, continuation) pair.

use crate::error::{ModelError, Result};
use crate::tokenizer::Tokenizer;

/// lm-evaluation-harness `_encode_pair`: trailing whitespace of the context moves to the
/// continuation, `context + continuation` is encoded once, and the continuation is what follows
/// the context's tokens. An empty context becomes the prefix token (BOS, else EOS), as lm-eval's
/// `loglikelihood` does. `add_special_tokens` is lm-eval's `add_bos_token` (off by default).
pub fn encode_pair(
    tokenizer: &Tokenizer,
    context: &str,
    continuation: &str,
    add_special_tokens: bool,
) -> Result<(Vec<u32>, Vec<u32>)> {
    if context.is_empty() {
        let prefix = tokenizer.bos().or(tokenizer.eos()).ok_or_else(|| {
            ModelError::InvalidRequest(
                "empty context and the tokenizer has neither BOS nor EOS".into(),
            )
        })?;
        return Ok((
            vec![prefix.id],
            tokenizer.encode_ids(continuation, add_special_tokens)?,
        ));
    }
    let trimmed = context.trim_end();
    let (context, continuation) = if trimmed.len() < context.len() {
        (
            trimmed.to_string(),
            format!("{}{continuation}", &context[trimmed.len()..]),
        )
    } else {
        (context.to_string(), continuation.to_string())
    };
    let whole = tokenizer.encode_ids(&format!("{context}{continuation}"), add_special_tokens)?;
    let context_ids = tokenizer.encode_ids(&context, add_special_tokens)?;
    let split = context_ids.len().min(whole.len());
    Ok((context_ids, whole[split..].to_vec()))
}
