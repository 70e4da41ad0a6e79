//! A client for OpenAI-compatible chat-completions endpoints (the judge, or a server that
//! answers the questions): a concurrency limit, a timeout per request, and retries with
//! exponential backoff and jitter on 429 (honouring `Retry-After`), 5xx, 408, timeouts, refused
//! connections and replies that are not the JSON of a completion.
//!
//! The API key goes in the `Authorization` header only; no error message, log line or stored
//! row contains it.

use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use super::error::MtBenchError;

/// Where to send requests.
#[derive(Clone, Serialize, Deserialize)]
pub struct Endpoint {
    /// The chat-completions URL (`…/v1/chat/completions`; a base URL ending in `/v1` is completed).
    pub url: String,
    /// The `model` of every request.
    pub model: String,
    /// The bearer token, from the environment variable the step names.
    #[serde(skip)]
    pub api_key: Option<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The full chat-completions URL for a URL as a user writes it.
pub(crate) fn completions_url(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with("/chat/completions") {
        url.to_owned()
    } else {
        format!("{url}/chat/completions")
    }
}

/// How hard to try.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff; it doubles with each retry (up to `max_delay`), and a random half of
    /// it is jitter.
    pub base_delay: Duration,
    /// The longest wait between attempts (a longer `Retry-After` is honoured up to 10 minutes).
    pub max_delay: Duration,
    /// Time allowed for one request, reply included.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 6,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_mins(1),
            timeout: Duration::from_mins(3),
        }
    }
}

/// A completion: the reply's `model` and the first choice's message content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The model the server says answered (the reply's `model` field).
    pub model: Option<String>,
    /// `choices[0].message.content`.
    pub content: String,
}

/// A request that failed for good: the last failure and how many attempts were made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({})", if *.retried_out {
    format!("gave up after {attempts} attempts")
} else {
    format!("attempt {attempts}")
})]
pub struct CompletionError {
    /// The last failure (HTTP status and body excerpt, a timeout, a body that is not JSON).
    pub message: String,
    /// Attempts made.
    pub attempts: u32,
    /// Whether it failed because the retries ran out (else: a failure not worth retrying).
    pub retried_out: bool,
}

/// Why one attempt failed, and whether another may succeed.
#[derive(Clone, Debug, PartialEq)]
enum Attempt {
    /// Worth retrying, after at least this long (from `Retry-After`) if given.
    Retry(String, Option<Duration>),
    /// Not worth retrying (401, 400, …).
    Fatal(String),
}

/// The chat-completions client.
#[derive(Clone)]
pub struct ChatClient {
    http: reqwest::Client,
    endpoint: Endpoint,
    url: String,
    policy: RetryPolicy,
    limit: Arc<Semaphore>,
}

impl ChatClient {
    /// A client with at most `concurrency` requests in flight.
    pub fn new(
        endpoint: Endpoint,
        policy: RetryPolicy,
        concurrency: usize,
    ) -> Result<Self, MtBenchError> {
        let http = reqwest::Client::builder()
            .timeout(policy.timeout)
            .build()
            .map_err(MtBenchError::HttpClient)?;
        Ok(ChatClient {
            http,
            url: completions_url(&endpoint.url),
            endpoint,
            policy,
            limit: Arc::new(Semaphore::new(concurrency.max(1))),
        })
    }

    /// The full URL requests go to (the cache's `endpoint`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends `body` (a chat-completions request) until it succeeds or the retries run out;
    /// the error is the last failure, with the number of attempts.
    pub async fn complete(&self, body: &str) -> Result<Reply, CompletionError> {
        let _permit = self.limit.acquire().await.map_err(|e| CompletionError {
            message: e.to_string(),
            attempts: 0,
            retried_out: false,
        })?;
        let mut attempt = 0u32;
        loop {
            let failure = match self.attempt(body).await {
                Ok(reply) => return Ok(reply),
                Err(Attempt::Fatal(message)) => {
                    return Err(CompletionError {
                        message,
                        attempts: attempt + 1,
                        retried_out: false,
                    });
                }
                Err(Attempt::Retry(message, after)) => (message, after),
            };
            if attempt >= self.policy.max_retries {
                return Err(CompletionError {
                    message: failure.0,
                    attempts: attempt + 1,
                    retried_out: true,
                });
            }
            let wait = self.backoff(attempt, failure.1);
            tracing::warn!(url = %self.url, attempt = attempt + 1, wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "{}; retrying", failure.0);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Exponential backoff with jitter: a random point in the upper half of
    /// `base · 2^attempt` (capped), or `Retry-After` when the server gave a longer one.
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .policy
            .base_delay
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.policy.max_delay);
        let half = exp / 2;
        let jitter = half.mul_f64(rand::rng().random::<f64>());
        let wait = half + jitter;
        match retry_after {
            Some(after) => after.min(Duration::from_mins(10)),
            None => wait,
        }
    }

    async fn attempt(&self, body: &str) -> Result<Reply, Attempt> {
        let mut request = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        if let Some(key) = &self.endpoint.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| classify_send(&e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = response
            .text()
            .await
            .map_err(|e| Attempt::Retry(format!("reading the reply: {}", plain(&e)), None))?;
        if status.as_u16() == 429 {
            return Err(Attempt::Retry(
                format!("HTTP 429 (rate limited): {}", excerpt(&text)),
                retry_after,
            ));
        }
        if status.is_server_error() || status.as_u16() == 408 {
            return Err(Attempt::Retry(
                format!("HTTP {}: {}", status.as_u16(), excerpt(&text)),
                retry_after,
            ));
        }
        if !status.is_success() {
            return Err(Attempt::Fatal(format!(
                "HTTP {}: {}",
                status.as_u16(),
                excerpt(&text)
            )));
        }
        parse_reply(&text).map_err(|m| Attempt::Retry(m, None))
    }
}

/// A send error without the URL's query or any header (reqwest's text holds neither).
fn plain(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn classify_send(error: &reqwest::Error) -> Attempt {
    if error.is_timeout() {
        Attempt::Retry("no reply within the timeout".into(), None)
    } else if error.is_connect() {
        Attempt::Retry(format!("cannot connect: {}", plain(error)), None)
    } else if error.is_builder() {
        Attempt::Fatal(format!("bad request: {}", plain(error)))
    } else {
        Attempt::Retry(plain(error), None)
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<f64>() {
        return (seconds >= 0.0 && seconds.is_finite()).then(|| Duration::from_secs_f64(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    let ms = when.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// The start of a reply body for an error message.
fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None if text.is_empty() => "(empty body)".into(),
        None => text.to_owned(),
    }
}

/// `model` and `choices[0].message.content` of a completion.
fn parse_reply(text: &str) -> Result<Reply, String> {
    #[derive(Deserialize)]
    struct Message {
        content: Option<String>,
    }
    #[derive(Deserialize)]
    struct Choice {
        message: Message,
    }
    #[derive(Deserialize)]
    struct Completion {
        model: Option<String>,
        choices: Vec<Choice>,
    }
    let completion: Completion = serde_json::from_str(text).map_err(|e| {
        format!(
            "the reply is not a chat completion ({e}): {}",
            excerpt(text)
        )
    })?;
    let content = completion
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message.content)
        .ok_or_else(|| {
            format!(
                "the reply has no choices[0].message.content: {}",
                excerpt(text)
            )
        })?;
    Ok(Reply {
        model: completion.model,
        content,
    })
}

/// The exact request body FastChat's judge sends through the OpenAI client: the model, the
/// system and user messages, `n = 1`, the temperature and `max_tokens`.
///
/// # Panics
/// Never in practice: the body holds only strings and numbers, which always serialise.
pub fn request_body(
    model: &str,
    messages: &[(&str, &str)],
    temperature: f32,
    max_tokens: usize,
) -> String {
    #[derive(Serialize)]
    struct Message<'a> {
        role: &'a str,
        content: &'a str,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        model: &'a str,
        messages: Vec<Message<'a>>,
        n: u32,
        temperature: f32,
        max_tokens: usize,
    }
    serde_json::to_string(&Body {
        model,
        messages: messages
            .iter()
            .map(|(role, content)| Message { role, content })
            .collect(),
        n: 1,
        temperature,
        max_tokens,
    })
    .expect("a request body serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_replies_and_retry_after() {
        assert_eq!(
            completions_url("http://h:1/v1/"),
            "http://h:1/v1/chat/completions"
        );
        assert_eq!(
            completions_url("http://h:1/v1/chat/completions"),
            "http://h:1/v1/chat/completions"
        );
        let reply = parse_reply(
            r#"{"model":"gpt-4-0613","choices":[{"index":0,"message":{"role":"assistant","content":"[[7]]"}}]}"#,
        )
        .unwrap();
        assert_eq!(reply.model.as_deref(), Some("gpt-4-0613"));
        assert_eq!(reply.content, "[[7]]");
        assert!(parse_reply("<html>bad gateway</html>").is_err());
        assert!(parse_reply(r#"{"choices":[]}"#).is_err());
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        let endpoint = Endpoint {
            url: "http://127.0.0.1:9/v1".into(),
            model: "gpt-4".into(),
            api_key: Some("sk-secret".into()),
        };
        assert!(!format!("{endpoint:?}").contains("sk-secret"));
        let client = ChatClient::new(endpoint, policy, 1).unwrap();
        for attempt in 0..6 {
            let cap = Duration::from_millis((100u64 << attempt).min(1000));
            let wait = client.backoff(attempt, None);
            assert!(wait >= cap / 2 && wait <= cap, "{attempt}: {wait:?}");
        }
        assert_eq!(
            client.backoff(0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
    }
}
