//! Post-processing rules transformers applies on top of tokenizer.json.

use std::path::Path;

use tokenizers::processors::PostProcessorWrapper;
use tokenizers::processors::template::TemplateProcessing;

use super::SpecialToken;
use crate::error::{Result, TextError};

/// Which of BOS and EOS the post-processor adds (`add_bos_token` / `add_eos_token`).
#[derive(Debug, Clone, Copy)]
pub(super) struct AddSpecial {
    /// Put BOS before each sequence.
    pub(super) bos: bool,
    /// Put EOS after each sequence.
    pub(super) eos: bool,
}

/// Replaces the post-processor with one adding BOS and/or EOS, as `LlamaTokenizerFast`'s
/// `update_post_processor` does.
pub(super) fn set_bos_eos_post_processor(
    inner: &mut tokenizers::Tokenizer,
    path: &Path,
    bos: Option<&SpecialToken>,
    eos: Option<&SpecialToken>,
    add: AddSpecial,
) -> Result<()> {
    let mut single = Vec::new();
    let mut pair = Vec::new();
    let mut specials = Vec::new();
    let need = |tok: Option<&SpecialToken>, what: &str| {
        tok.cloned().ok_or_else(|| {
            TextError::config(
                path.with_file_name("tokenizer_config.json"),
                format!("add_{what}_token"),
                format!("is true but the tokenizer has no {what} token"),
            )
        })
    };
    if add.bos {
        let b = need(bos, "bos")?;
        single.push(format!("{}:0", b.text));
        pair.push(format!("{}:0", b.text));
        specials.push((b.text.clone(), b.id));
    }
    single.push("$A:0".to_string());
    pair.push("$A:0".to_string());
    if add.eos {
        let e = need(eos, "eos")?;
        single.push(format!("{}:0", e.text));
        pair.push(format!("{}:0", e.text));
        specials.push((e.text.clone(), e.id));
    }
    if add.bos {
        let b = need(bos, "bos")?;
        pair.push(format!("{}:1", b.text));
    }
    pair.push("$B:1".to_string());
    if add.eos {
        let e = need(eos, "eos")?;
        pair.push(format!("{}:1", e.text));
    }
    specials.dedup();
    let processor = TemplateProcessing::builder()
        .try_single(single.join(" "))
        .and_then(|b| b.try_pair(pair.join(" ")))
        .map_err(|e| TextError::Tokenizer {
            path: path.to_path_buf(),
            message: format!("cannot build the BOS/EOS template: {e}"),
        })?
        .special_tokens(specials)
        .build()
        .map_err(|e| TextError::Tokenizer {
            path: path.to_path_buf(),
            message: format!("cannot build the BOS/EOS template: {e}"),
        })?;
    inner.with_post_processor(Some(PostProcessorWrapper::Template(processor)));
    Ok(())
}

/// transformers' `clean_up_tokenization`: removes spaces before punctuation and contractions.
pub(super) fn clean_up_tokenization(text: &str) -> String {
    text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}
