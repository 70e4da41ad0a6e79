//! The files around `tokenizer.json` that transformers reads to decide special tokens, BOS/EOS
//! insertion and the chat template: `tokenizer_config.json`, `special_tokens_map.json`,
//! `chat_template.jinja` / `chat_template.json`, `config.json` and `generation_config.json`.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Result, TextError, read_json, read_to_string};

/// A special token as written in `tokenizer_config.json`: a plain string or an `AddedToken` object.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum TokenSpec {
    /// `"eos_token": "</s>"`
    Text(String),
    /// `"eos_token": {"content": "</s>", ...}`
    Object {
        /// The token text.
        content: String,
    },
}

impl TokenSpec {
    pub(crate) fn text(&self) -> &str {
        match self {
            TokenSpec::Text(s) => s,
            TokenSpec::Object { content } => content,
        }
    }
}

/// `chat_template` in `tokenizer_config.json`: one template, or a list of named ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum TemplateSpec {
    /// A single template.
    One(String),
    /// Named templates (`default`, `tool_use`, `rag`...).
    Named(Vec<NamedTemplate>),
}

/// One entry of a list-valued `chat_template`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct NamedTemplate {
    pub(crate) name: String,
    pub(crate) template: String,
}

/// The fields of `tokenizer_config.json` that change encoding, decoding or templating.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct TokenizerConfigFile {
    #[serde(default)]
    pub(crate) bos_token: Option<TokenSpec>,
    #[serde(default)]
    pub(crate) eos_token: Option<TokenSpec>,
    #[serde(default)]
    pub(crate) pad_token: Option<TokenSpec>,
    #[serde(default)]
    pub(crate) unk_token: Option<TokenSpec>,
    #[serde(default)]
    pub(crate) add_bos_token: Option<bool>,
    #[serde(default)]
    pub(crate) add_eos_token: Option<bool>,
    #[serde(default)]
    pub(crate) chat_template: Option<TemplateSpec>,
    #[serde(default)]
    pub(crate) clean_up_tokenization_spaces: Option<bool>,
    #[serde(default)]
    pub(crate) tokenizer_class: Option<String>,
    #[serde(default)]
    pub(crate) model_max_length: Option<f64>,
}

/// `special_tokens_map.json` (older checkpoints keep special tokens there).
// The fields are named as the file's keys, which serde reads them by.
#[allow(clippy::struct_field_names)]
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct SpecialTokensMapFile {
    #[serde(default)]
    pub(crate) bos_token: Option<TokenSpec>,
    #[serde(default)]
    pub(crate) eos_token: Option<TokenSpec>,
    #[serde(default)]
    pub(crate) pad_token: Option<TokenSpec>,
    #[serde(default)]
    pub(crate) unk_token: Option<TokenSpec>,
}

/// A token id, or a list of them (`eos_token_id` in `config.json` / `generation_config.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum IdOrIds {
    One(u32),
    Many(Vec<u32>),
}

impl IdOrIds {
    pub(crate) fn to_vec(&self) -> Vec<u32> {
        match self {
            IdOrIds::One(id) => vec![*id],
            IdOrIds::Many(ids) => ids.clone(),
        }
    }
}

/// The token-id fields of `config.json` and `generation_config.json`.
// The fields are named as the files' keys, which serde reads them by.
#[allow(clippy::struct_field_names)]
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct TokenIdsFile {
    #[serde(default)]
    pub(crate) bos_token_id: Option<IdOrIds>,
    #[serde(default)]
    pub(crate) eos_token_id: Option<IdOrIds>,
    #[serde(default)]
    pub(crate) pad_token_id: Option<IdOrIds>,
}

/// Everything read from the folder of a tokenizer.json.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompanionFiles {
    pub(crate) tokenizer_config: TokenizerConfigFile,
    pub(crate) special_tokens_map: SpecialTokensMapFile,
    pub(crate) model_config: TokenIdsFile,
    pub(crate) generation_config: TokenIdsFile,
    /// The default chat template, if any.
    pub(crate) chat_template: Option<String>,
    /// Files found, to copy when the checkpoint is saved.
    pub(crate) present: Vec<std::path::PathBuf>,
}

fn read_optional<T: serde::de::DeserializeOwned + Default>(
    path: &Path,
    present: &mut Vec<std::path::PathBuf>,
    keep: bool,
) -> Result<T> {
    if path.is_file() {
        if keep {
            present.push(path.to_path_buf());
        }
        read_json(path)
    } else {
        Ok(T::default())
    }
}

impl CompanionFiles {
    /// Reads the companion files in `dir`; each one is optional, a malformed one is an error.
    pub(crate) fn read(dir: &Path) -> Result<Self> {
        let mut present = Vec::new();
        let tokenizer_config: TokenizerConfigFile =
            read_optional(&dir.join("tokenizer_config.json"), &mut present, true)?;
        let special_tokens_map: SpecialTokensMapFile =
            read_optional(&dir.join("special_tokens_map.json"), &mut present, true)?;
        let model_config: TokenIdsFile =
            read_optional(&dir.join("config.json"), &mut present, false)?;
        let generation_config: TokenIdsFile =
            read_optional(&dir.join("generation_config.json"), &mut present, false)?;

        let mut chat_template = None;
        match &tokenizer_config.chat_template {
            Some(TemplateSpec::One(t)) => chat_template = Some(t.clone()),
            // Of a list of named templates only `default` is used (`tool_use` and others are not).
            Some(TemplateSpec::Named(list)) => {
                if let Some(entry) = list.iter().find(|entry| entry.name == "default") {
                    chat_template = Some(entry.template.clone());
                }
            }
            None => {}
        }
        // transformers >= 4.43 saves the template beside the config; that file wins.
        let jinja = dir.join("chat_template.jinja");
        let json = dir.join("chat_template.json");
        if jinja.is_file() {
            chat_template = Some(read_to_string(&jinja)?);
            present.push(jinja);
        } else if json.is_file() {
            #[derive(Deserialize)]
            struct ChatTemplateJson {
                chat_template: String,
            }
            let parsed: ChatTemplateJson = read_json(&json)?;
            chat_template = Some(parsed.chat_template);
            present.push(json);
        }
        Ok(CompanionFiles {
            tokenizer_config,
            special_tokens_map,
            model_config,
            generation_config,
            chat_template,
            present,
        })
    }

    /// The text of a special token: `tokenizer_config.json` first, then `special_tokens_map.json`.
    pub(crate) fn token_text(&self, which: SpecialKind) -> Option<String> {
        let (a, b) = match which {
            SpecialKind::Bos => (
                &self.tokenizer_config.bos_token,
                &self.special_tokens_map.bos_token,
            ),
            SpecialKind::Eos => (
                &self.tokenizer_config.eos_token,
                &self.special_tokens_map.eos_token,
            ),
            SpecialKind::Pad => (
                &self.tokenizer_config.pad_token,
                &self.special_tokens_map.pad_token,
            ),
            SpecialKind::Unk => (
                &self.tokenizer_config.unk_token,
                &self.special_tokens_map.unk_token,
            ),
        };
        a.as_ref().or(b.as_ref()).map(|t| t.text().to_string())
    }

    /// The id given for a special token in config.json (the fallback when the tokenizer config
    /// names none).
    pub(crate) fn model_config_id(&self, which: SpecialKind) -> Option<u32> {
        let field = match which {
            SpecialKind::Bos => &self.model_config.bos_token_id,
            SpecialKind::Eos => &self.model_config.eos_token_id,
            SpecialKind::Pad => &self.model_config.pad_token_id,
            SpecialKind::Unk => &None,
        };
        field.as_ref().and_then(|v| v.to_vec().first().copied())
    }
}

/// Which special token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpecialKind {
    Bos,
    Eos,
    Pad,
    Unk,
}

/// A tokenizer class whose transformers implementation rebuilds the post-processor from the
/// `add_bos_token` / `add_eos_token` flags (`LlamaTokenizerFast` and its relatives).
pub(crate) fn class_honours_add_flags(class: Option<&str>) -> bool {
    let Some(class) = class else { return false };
    let class = class.trim_end_matches("Fast");
    matches!(
        class,
        "LlamaTokenizer" | "CodeLlamaTokenizer" | "GemmaTokenizer" | "CohereTokenizer"
    )
}

/// Error for a token named in a config file but absent from the vocabulary.
pub(crate) fn unknown_token(path: &Path, field: &str, token: &str) -> TextError {
    TextError::config(
        path,
        field,
        format!("token {token:?} is not in the tokenizer's vocabulary"),
    )
}
