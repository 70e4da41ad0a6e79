//! The OpenAI request and reply bodies the server reads and writes (the fields it honours;
//! others are ignored as OpenAI-compatible servers do).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A message's content: a string or OpenAI's list of parts (`{"type": "text", "text"}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Parts; the text parts are joined.
    Parts(Vec<Part>),
}

/// One content part.
#[derive(Debug, Clone, Deserialize)]
pub struct Part {
    /// `text` (others are refused).
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    #[serde(default)]
    pub text: Option<String>,
}

/// One chat message of a request.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant`.
    pub role: String,
    /// Its content (`null` for an assistant message with tool calls is read as empty).
    #[serde(default)]
    pub content: Option<Content>,
}

/// `stop`: one string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with the usage counts.
    #[serde(default)]
    pub include_usage: bool,
}

/// The sampling fields shared by both endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Sampling {
    /// Served model name.
    pub model: String,
    /// Default 1 (OpenAI's); 0 = greedy.
    pub temperature: Option<f32>,
    /// Default 1.
    pub top_p: Option<f32>,
    /// Most new tokens (default: the rest of the context window).
    pub max_tokens: Option<usize>,
    /// The newer spelling of `max_tokens` for chat.
    pub max_completion_tokens: Option<usize>,
    /// Stop strings (at most 4, as OpenAI).
    pub stop: Option<Stop>,
    /// Seed of this request's sampling stream (default: a fresh one).
    pub seed: Option<u64>,
    /// Server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Number of choices (only 1).
    pub n: Option<usize>,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ChatRequest {
    /// The conversation.
    pub messages: Vec<Message>,
    /// Model, sampling and streaming fields.
    #[serde(flatten)]
    pub sampling: Sampling,
}

/// `prompt` of a completion: a string or a list holding one string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// One prompt.
    One(String),
    /// A list (only one prompt per request).
    Many(Vec<String>),
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CompletionRequest {
    /// The raw prompt (no chat template).
    pub prompt: Prompt,
    /// Model, sampling and streaming fields.
    #[serde(flatten)]
    pub sampling: Sampling,
}

/// Token counts of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
// The field names are OpenAI's wire format (`usage.prompt_tokens`, ...).
#[allow(clippy::struct_field_names)]
pub(crate) struct Usage {
    /// Prompt tokens (after the chat template).
    pub prompt_tokens: usize,
    /// Generated tokens (a final stop token included).
    pub completion_tokens: usize,
    /// Their sum.
    pub total_tokens: usize,
}

impl Usage {
    /// Counts for a prompt and a completion.
    pub(crate) fn new(prompt_tokens: usize, completion_tokens: usize) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// Which endpoint a reply belongs to: it decides the object names and the choice shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Completion,
}

/// Identity of one reply: id, creation time and model, repeated in every chunk.
#[derive(Debug, Clone)]
pub(crate) struct ReplyHead {
    /// `chatcmpl-...` / `cmpl-...`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// Served model name.
    pub model: String,
    /// Which endpoint.
    pub endpoint: Endpoint,
}

impl ReplyHead {
    /// A whole (non-streaming) reply.
    pub(crate) fn full(&self, text: &str, finish_reason: &str, usage: Usage) -> Value {
        let choice = match self.endpoint {
            Endpoint::Chat => json!({"index": 0, "message": {"role": "assistant", "content": text},
                                     "logprobs": null, "finish_reason": finish_reason}),
            Endpoint::Completion => json!({"index": 0, "text": text, "logprobs": null,
                                           "finish_reason": finish_reason}),
        };
        json!({"id": self.id, "object": self.object(false), "created": self.created,
               "model": self.model, "choices": [choice], "usage": usage})
    }

    /// One streamed chunk: a role announcement, a text piece, or the finish reason.
    pub(crate) fn chunk(
        &self,
        role: bool,
        text: Option<&str>,
        finish_reason: Option<&str>,
    ) -> Value {
        let choice = match self.endpoint {
            Endpoint::Chat => {
                let mut delta = serde_json::Map::new();
                if role {
                    delta.insert("role".into(), json!("assistant"));
                }
                if let Some(t) = text {
                    delta.insert("content".into(), json!(t));
                }
                json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason})
            }
            Endpoint::Completion => {
                json!({"index": 0, "text": text.unwrap_or(""), "logprobs": null,
                                           "finish_reason": finish_reason})
            }
        };
        json!({"id": self.id, "object": self.object(true), "created": self.created,
               "model": self.model, "choices": [choice]})
    }

    /// The last chunk with usage counts (`stream_options.include_usage`).
    pub(crate) fn usage_chunk(&self, usage: Usage) -> Value {
        json!({"id": self.id, "object": self.object(true), "created": self.created,
               "model": self.model, "choices": [], "usage": usage})
    }

    fn object(&self, chunk: bool) -> &'static str {
        match (self.endpoint, chunk) {
            (Endpoint::Chat, false) => "chat.completion",
            (Endpoint::Chat, true) => "chat.completion.chunk",
            (Endpoint::Completion, _) => "text_completion",
        }
    }
}
