//! The HTTP routes: `/v1/chat/completions`, `/v1/completions`, `/v1/models`, `/health`, all
//! behind the optional API key.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use erebor_model::{BatchEvent, ChatMessage, FinishReason, GenerationConfig};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::engine::ModelHandle;
use crate::error::ApiError;
use crate::protocol::{
    ChatRequest, CompletionRequest, Content, Endpoint, Prompt, ReplyHead, Sampling, Stop, Usage,
};
use crate::stream::sse_reply;

/// What every handler shares.
pub(crate) struct AppState {
    /// The model thread.
    pub model: ModelHandle,
    /// The name clients pass as `model`.
    pub model_name: String,
    /// The API key clients must send as `Authorization: Bearer <key>`, if any.
    pub api_key: Option<String>,
}

/// The server's routes over `state`.
pub(crate) fn router(state: AppState) -> Router {
    let state = Arc::new(state);
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completion))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .layer(middleware::from_fn_with_state(state.clone(), check_key))
        .with_state(state)
}

/// Refuses a request without the right `Authorization: Bearer` key (when one is set).
async fn check_key(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(key) = &state.api_key {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same_secret(given.as_bytes(), key.as_bytes()) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(request).await
}

/// Compares without stopping at the first different byte.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(json!({"status": "ok", "model": state.model_name,
        "running": state.model.running(), "waiting": state.model.waiting(),
        "max_batch": state.model.limits().max_batch, "max_queue": state.model.limits().max_queue}))
    .into_response()
}

async fn models(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(
        json!({"object": "list", "data": [{"id": state.model_name, "object": "model",
        "created": now(), "owned_by": "erebor"}]}),
    )
    .into_response()
}

async fn chat(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let request: ChatRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let prompt = chat_prompt(&state, &request);
    run(state, prompt, request.sampling, Endpoint::Chat).await
}

async fn completion(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let request: CompletionRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let prompt = match request.prompt {
        Prompt::One(p) => Ok(p),
        Prompt::Many(mut ps) if ps.len() == 1 => Ok(ps.remove(0)),
        Prompt::Many(_) => Err(ApiError::invalid(
            "only one prompt per request is supported",
            Some("prompt"),
        )),
    }
    .and_then(|text| encode(&state, &text));
    run(state, prompt, request.sampling, Endpoint::Completion).await
}

/// Parses a JSON body, naming the line and column of a syntax or type error.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("Invalid request body: {e}"), None))
}

/// Renders the conversation with the model's chat template (generation prompt added) and
/// encodes it without special tokens, as erebor's own generation does.
fn chat_prompt(state: &AppState, request: &ChatRequest) -> Result<Vec<u32>, ApiError> {
    let mut messages = Vec::with_capacity(request.messages.len());
    for m in &request.messages {
        let content = match &m.content {
            None => String::new(),
            Some(Content::Text(t)) => t.clone(),
            Some(Content::Parts(parts)) => {
                let mut text = String::new();
                for p in parts {
                    match (p.kind.as_str(), &p.text) {
                        ("text", Some(t)) => text.push_str(t),
                        _ => {
                            return Err(ApiError::invalid(
                                format!("content parts of type `{}` are not supported", p.kind),
                                Some("messages"),
                            ));
                        }
                    }
                }
                text
            }
        };
        messages.push(ChatMessage::new(m.role.clone(), content));
    }
    if messages.is_empty() {
        return Err(ApiError::invalid("`messages` is empty", Some("messages")));
    }
    let text = state
        .model
        .info
        .template
        .render(&messages, true)
        .map_err(|e| ApiError::invalid(format!("chat template: {e}"), Some("messages")))?;
    encode(state, &text)
}

fn encode(state: &AppState, text: &str) -> Result<Vec<u32>, ApiError> {
    let ids = state
        .model
        .info
        .tokenizer
        .encode_ids(text, false)
        .map_err(|e| ApiError::internal(format!("tokenising the prompt: {e}")))?;
    if ids.is_empty() {
        return Err(ApiError::invalid("the prompt is empty", Some("prompt")));
    }
    Ok(ids)
}

/// Checks the sampling fields against the model and builds the generation settings.
fn generation_config(
    state: &AppState,
    sampling: &Sampling,
    prompt_len: usize,
) -> Result<GenerationConfig, ApiError> {
    if sampling.model != state.model_name {
        return Err(ApiError::unknown_model(&sampling.model, &state.model_name));
    }
    if sampling.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid("only n = 1 is supported", Some("n")));
    }
    let window = state.model.info.window;
    let room = window.saturating_sub(prompt_len);
    let max_new_tokens = sampling
        .max_completion_tokens
        .or(sampling.max_tokens)
        .unwrap_or(room);
    if max_new_tokens == 0 || prompt_len + max_new_tokens > window {
        return Err(ApiError::invalid(
            format!(
                "This model's maximum context length is {window} tokens; the prompt has \
                 {prompt_len} and max_tokens asks for {max_new_tokens} (at least 1 and at most \
                 {room} here)"
            ),
            Some("max_tokens"),
        )
        .with_code("context_length_exceeded"));
    }
    let temperature = sampling.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::invalid(
            "temperature must be in [0, 2]",
            Some("temperature"),
        ));
    }
    let top_p = sampling.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::invalid("top_p must be in (0, 1]", Some("top_p")));
    }
    let stop_strings = match &sampling.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s.clone()],
        Some(Stop::Many(v)) => v.clone(),
    };
    if stop_strings.len() > 4 || stop_strings.iter().any(String::is_empty) {
        return Err(ApiError::invalid(
            "`stop` takes up to 4 non-empty strings",
            Some("stop"),
        ));
    }
    Ok(GenerationConfig {
        max_new_tokens,
        temperature,
        top_p,
        top_k: 0,
        stop_token_ids: state.model.info.tokenizer.stop_token_ids().to_vec(),
        stop_strings,
        seed: sampling.seed.unwrap_or_else(fresh_seed),
    })
}

/// Validates, queues and answers one request, streamed or whole.
async fn run(
    state: Arc<AppState>,
    prompt: Result<Vec<u32>, ApiError>,
    sampling: Sampling,
    endpoint: Endpoint,
) -> Response {
    let prepared = prompt.and_then(|p| {
        let config = generation_config(&state, &sampling, p.len())?;
        Ok((p, config))
    });
    let (prompt, config) = match prepared {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let prompt_tokens = prompt.len();
    let events = match state.model.submit(prompt, config) {
        Ok(rx) => rx,
        Err(e) => return e.into_response(),
    };
    let prefix = if endpoint == Endpoint::Chat {
        "chatcmpl"
    } else {
        "cmpl"
    };
    let head = ReplyHead {
        id: format!("{prefix}-{}", uuid::Uuid::new_v4().simple()),
        created: now(),
        model: state.model_name.clone(),
        endpoint,
    };
    if sampling.stream {
        let usage = sampling.stream_options.is_some_and(|o| o.include_usage);
        return sse_reply(head, events, prompt_tokens, usage);
    }
    whole_reply(head, events, prompt_tokens).await
}

/// Waits for the finished generation and answers it in one body.
async fn whole_reply(
    head: ReplyHead,
    mut events: tokio::sync::mpsc::UnboundedReceiver<BatchEvent>,
    prompt_tokens: usize,
) -> Response {
    while let Some(event) = events.recv().await {
        match event {
            BatchEvent::Delta { .. } => {}
            BatchEvent::Finished(g) => {
                let usage = Usage::new(prompt_tokens, g.token_ids.len());
                let body = head.full(&g.text, finish_reason(g.finish_reason), usage);
                return axum::Json(body).into_response();
            }
            BatchEvent::Failed(message) => return ApiError::internal(message).into_response(),
        }
    }
    ApiError::internal("the model thread dropped the request").into_response()
}

/// OpenAI's finish reason.
pub fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::StopToken | FinishReason::StopString => "stop",
        FinishReason::Length => "length",
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A seed for a request that did not give one.
fn fresh_seed() -> u64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
}
