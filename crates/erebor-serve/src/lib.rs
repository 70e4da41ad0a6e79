//! erebor-serve: `erebor model serve`, an OpenAI-compatible HTTP server over erebor-model's
//! continuous batcher (issue 12).
