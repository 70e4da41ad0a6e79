//! Errors: [`ServeError`] for starting the server, `ApiError` for the OpenAI-shaped error
//! replies (`{"error": {"message", "type", "param", "code"}}`) with their HTTP status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Loading the checkpoint failed.
    #[error("loading {path}: {source}")]
    Load {
        /// The checkpoint folder or GGUF file.
        path: String,
        /// The model error.
        #[source]
        source: erebor_model::ModelError,
    },
    /// The checkpoint has no tokenizer or chat template.
    #[error("{path}: {what}")]
    Checkpoint {
        /// The checkpoint folder or GGUF file.
        path: String,
        /// What is missing.
        what: String,
    },
    /// The model thread ended before it was ready.
    #[error("the model thread ended while loading {path}")]
    ThreadGone {
        /// The checkpoint folder or GGUF file.
        path: String,
    },
    /// Binding or serving failed.
    #[error("serving on {addr}: {source}")]
    Io {
        /// The address.
        addr: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// An error reply in OpenAI's shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message.
    pub message: String,
    /// OpenAI's `type` (`invalid_request_error`, `authentication_error`, ...).
    pub kind: &'static str,
    /// The request field at fault.
    pub param: Option<&'static str>,
    /// A machine-readable code (`model_not_found`, `context_length_exceeded`, ...).
    pub code: Option<&'static str>,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// 400 `invalid_request_error`.
    pub(crate) fn invalid(message: impl Into<String>, param: Option<&'static str>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param,
            code: None,
            retry_after: None,
        }
    }

    /// Sets the code.
    #[must_use]
    pub(crate) fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// 404 for a `model` the server does not serve.
    pub(crate) fn unknown_model(asked: &str, served: &str) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            ..Self::invalid(
                format!("The model `{asked}` does not exist; this server serves `{served}`"),
                Some("model"),
            )
            .with_code("model_not_found")
        }
    }

    /// 401 for a missing or wrong API key.
    pub(crate) fn unauthorized() -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            kind: "authentication_error",
            ..Self::invalid(
                "Incorrect or missing API key (Authorization: Bearer <key>)",
                None,
            )
            .with_code("invalid_api_key")
        }
    }

    /// 429 when the queue is full, with `Retry-After`.
    pub(crate) fn queue_full(bound: usize) -> Self {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: "rate_limit_error",
            retry_after: Some(1),
            ..Self::invalid(
                format!("The server's queue is full ({bound} waiting requests); retry later"),
                None,
            )
            .with_code("rate_limit_exceeded")
        }
    }

    /// 500 for a model failure.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "server_error",
            ..Self::invalid(message, None)
        }
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> serde_json::Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
