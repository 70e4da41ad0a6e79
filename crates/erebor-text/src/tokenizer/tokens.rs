//! What encoding gives back: [`Encoding`] (ids, offsets, added-token flags) and the
//! [`SpecialToken`]s a tokenizer names.

/// A special token: its text and its id in the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialToken {
    /// The token's text, e.g. `</s>` or `<|im_end|>`.
    pub text: String,
    /// Its id.
    pub id: u32,
}

/// The result of encoding one text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoding {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Byte range of each token in the input text (`(0, 0)` for added special tokens).
    pub offsets: Vec<(usize, usize)>,
    /// Whether each token was added by the post-processor (BOS/EOS), not read from the text.
    pub added_special: Vec<bool>,
}
