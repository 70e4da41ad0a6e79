//! [`Tokenizer`]: loading tokenizer.json and its companion files, encoding, decoding, and the
//! special tokens and chat template they define.

use std::path::{Path, PathBuf};

use super::config::{CompanionFiles, IdOrIds, SpecialKind, class_honours_add_flags, unknown_token};
use super::post::{AddSpecial, clean_up_tokenization, set_bos_eos_post_processor};
use super::tokens::{Encoding, SpecialToken};
use crate::chat::ChatTemplate;
use crate::error::{Result, TextError};

/// A tokenizer loaded from a checkpoint folder or a tokenizer.json.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    bos: Option<SpecialToken>,
    eos: Option<SpecialToken>,
    pad: Option<SpecialToken>,
    unk: Option<SpecialToken>,
    stop_ids: Vec<u32>,
    chat_template: Option<String>,
    clean_up_spaces: bool,
    model_max_length: Option<usize>,
    companion_files: Vec<PathBuf>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("path", &self.path)
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("pad", &self.pad)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Loads `dir/tokenizer.json` and the companion files in `dir`.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(TextError::MissingFile {
                path,
                what: "the Hugging Face tokenizer".into(),
            });
        }
        Self::from_file(path)
    }

    /// Loads a `tokenizer.json`; `tokenizer_config.json`, `config.json` etc. are read from its folder.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut inner = tokenizers::Tokenizer::from_file(&path).map_err(|e| {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                TextError::io(&path, std::io::Error::new(io.kind(), io.to_string()))
            } else {
                TextError::Tokenizer {
                    path: path.clone(),
                    message: format!("does not parse as a Hugging Face tokenizer.json: {e}"),
                }
            }
        })?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let files = CompanionFiles::read(&dir)?;
        let config_path = dir.join("tokenizer_config.json");

        let resolve = |inner: &tokenizers::Tokenizer, kind: SpecialKind, field: &str| {
            if let Some(text) = files.token_text(kind) {
                let id = inner
                    .token_to_id(&text)
                    .ok_or_else(|| unknown_token(&config_path, field, &text))?;
                return Ok::<_, TextError>(Some(SpecialToken { text, id }));
            }
            Ok(files
                .model_config_id(kind)
                .and_then(|id| inner.id_to_token(id).map(|text| SpecialToken { text, id })))
        };
        let bos = resolve(&inner, SpecialKind::Bos, "bos_token")?;
        let eos = resolve(&inner, SpecialKind::Eos, "eos_token")?;
        let pad = resolve(&inner, SpecialKind::Pad, "pad_token")?;
        let unk = resolve(&inner, SpecialKind::Unk, "unk_token")?;

        let cfg = &files.tokenizer_config;
        if class_honours_add_flags(cfg.tokenizer_class.as_deref())
            && (cfg.add_bos_token.is_some() || cfg.add_eos_token.is_some())
        {
            let add = AddSpecial {
                bos: cfg.add_bos_token.unwrap_or(true),
                eos: cfg.add_eos_token.unwrap_or(false),
            };
            set_bos_eos_post_processor(&mut inner, &path, bos.as_ref(), eos.as_ref(), add)?;
        }

        let stop_ids = files
            .generation_config
            .eos_token_id
            .as_ref()
            .or(files.model_config.eos_token_id.as_ref())
            .map(IdOrIds::to_vec)
            .or_else(|| eos.as_ref().map(|t| vec![t.id]))
            .unwrap_or_default();
        // Kept only when positive and below 1e12: the cast drops only a fraction.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let model_max_length = cfg
            .model_max_length
            .filter(|v| *v > 0.0 && *v < 1e12)
            .map(|v| v as usize);

        Ok(Tokenizer {
            inner,
            path,
            bos,
            eos,
            pad,
            unk,
            stop_ids,
            chat_template: files.chat_template.clone(),
            clean_up_spaces: cfg.clean_up_tokenization_spaces.unwrap_or(false),
            model_max_length,
            companion_files: files.present.clone(),
        })
    }

    /// The tokenizer.json this tokenizer was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Encodes `text`. With `add_special_tokens`, BOS/EOS are added as the post-processor says.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Encoding> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| self.err(format!("encoding failed: {e}")))?;
        let added: Vec<bool> = if add_special_tokens {
            enc.get_special_tokens_mask()
                .iter()
                .zip(enc.get_offsets())
                .map(|(m, o)| *m == 1 && *o == (0, 0))
                .collect()
        } else {
            vec![false; enc.len()]
        };
        Ok(Encoding {
            ids: enc.get_ids().to_vec(),
            offsets: enc.get_offsets().to_vec(),
            added_special: added,
        })
    }

    /// Encodes `text` and returns only the ids.
    pub fn encode_ids(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        Ok(self.encode(text, add_special_tokens)?.ids)
    }

    /// Decodes ids to text; `skip_special_tokens` drops special/added tokens like transformers.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        let text = self
            .inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| self.err(format!("decoding failed: {e}")))?;
        Ok(if self.clean_up_spaces {
            clean_up_tokenization(&text)
        } else {
            text
        })
    }

    /// The id of a token text, if it is in the vocabulary (added tokens included).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The text of a token id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Beginning-of-sequence token.
    pub fn bos(&self) -> Option<&SpecialToken> {
        self.bos.as_ref()
    }

    /// End-of-sequence token (the tokenizer's; see [`Self::stop_token_ids`] for generation).
    pub fn eos(&self) -> Option<&SpecialToken> {
        self.eos.as_ref()
    }

    /// Padding token, if the checkpoint defines one.
    pub fn pad(&self) -> Option<&SpecialToken> {
        self.pad.as_ref()
    }

    /// Unknown token.
    pub fn unk(&self) -> Option<&SpecialToken> {
        self.unk.as_ref()
    }

    /// The id used to fill padded positions: the pad token, else EOS, else 0. Padded positions
    /// are always masked, so the value only has to be a valid id.
    pub fn pad_id_or_fallback(&self) -> u32 {
        self.pad.as_ref().or(self.eos.as_ref()).map_or(0, |t| t.id)
    }

    /// Token ids that end generation (`generation_config.json`, else `config.json`, else EOS).
    pub fn stop_token_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    /// `model_max_length` from `tokenizer_config.json` when it is a real limit.
    pub fn model_max_length(&self) -> Option<usize> {
        self.model_max_length
    }

    /// The raw Jinja source of the checkpoint's default chat template, if any.
    pub fn chat_template_source(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// The checkpoint's default chat template compiled with this tokenizer's BOS/EOS strings.
    /// `Ok(None)` when the checkpoint has none.
    pub fn chat_template(&self) -> Result<Option<ChatTemplate>> {
        self.chat_template
            .as_deref()
            .map(|src| {
                ChatTemplate::from_jinja("checkpoint", src, self.bos_text(), self.eos_text())
            })
            .transpose()
    }

    /// BOS text for templates (empty when the tokenizer has none).
    pub(crate) fn bos_text(&self) -> &str {
        self.bos.as_ref().map_or("", |t| t.text.as_str())
    }

    /// EOS text for templates (empty when the tokenizer has none).
    pub(crate) fn eos_text(&self) -> &str {
        self.eos.as_ref().map_or("", |t| t.text.as_str())
    }

    /// The tokenizer files to copy when saving a checkpoint: tokenizer.json plus the companion
    /// files present (`tokenizer_config.json`, `special_tokens_map.json`, `chat_template.*`).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.path.clone()];
        files.extend(self.companion_files.iter().cloned());
        files
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    fn err(&self, message: String) -> TextError {
        TextError::Tokenizer {
            path: self.path.clone(),
            message,
        }
    }
}
