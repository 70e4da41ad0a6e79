//! Server-sent events for `"stream": true`: a role chunk, one chunk per piece of final text,
//! a chunk with the finish reason, optionally one with usage, then `data: [DONE]`. When the
//! client goes away hyper drops this stream and with it the event receiver, which takes the
//! sequence out of the batch at the next step.

use std::convert::Infallible;

use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use erebor_model::BatchEvent;
use futures_util::stream::{self, Stream};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::error::ApiError;
use crate::protocol::{ReplyHead, Usage};
use crate::routes::finish_reason;

/// Where the stream is.
enum Phase {
    /// Nothing sent yet: the role chunk comes first.
    Start,
    /// Forwarding the batcher's events.
    Body,
    /// Finished: the queued chunks, then `[DONE]`.
    Tail(Vec<Event>),
    /// `[DONE]` sent.
    Done,
}

struct StreamState {
    head: ReplyHead,
    events: UnboundedReceiver<BatchEvent>,
    prompt_tokens: usize,
    include_usage: bool,
    phase: Phase,
}

fn data(value: &serde_json::Value) -> Event {
    Event::default().data(value.to_string())
}

/// The SSE response for one request's events.
pub(crate) fn sse_reply(
    head: ReplyHead,
    events: UnboundedReceiver<BatchEvent>,
    prompt_tokens: usize,
    include_usage: bool,
) -> Response {
    let state = StreamState {
        head,
        events,
        prompt_tokens,
        include_usage,
        phase: Phase::Start,
    };
    Sse::new(chunks(state)).into_response()
}

fn chunks(state: StreamState) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(state, |mut s| async move {
        loop {
            match &mut s.phase {
                Phase::Start => {
                    s.phase = Phase::Body;
                    let first = s.head.chunk(true, Some(""), None);
                    return Some((Ok(data(&first)), s));
                }
                Phase::Body => match s.events.recv().await {
                    Some(BatchEvent::Delta { text, .. }) => {
                        let chunk = s.head.chunk(false, Some(&text), None);
                        return Some((Ok(data(&chunk)), s));
                    }
                    Some(BatchEvent::Finished(g)) => {
                        let mut tail = vec![data(&s.head.chunk(
                            false,
                            None,
                            Some(finish_reason(g.finish_reason)),
                        ))];
                        if s.include_usage {
                            let usage = Usage::new(s.prompt_tokens, g.token_ids.len());
                            tail.push(data(&s.head.usage_chunk(usage)));
                        }
                        tail.reverse();
                        s.phase = Phase::Tail(tail);
                    }
                    Some(BatchEvent::Failed(message)) => {
                        s.phase = Phase::Tail(vec![data(&ApiError::internal(message).body())]);
                    }
                    None => {
                        let lost = ApiError::internal("the model thread dropped the request");
                        s.phase = Phase::Tail(vec![data(&lost.body())]);
                    }
                },
                Phase::Tail(rest) => {
                    if let Some(event) = rest.pop() {
                        return Some((Ok(event), s));
                    }
                    s.phase = Phase::Done;
                    return Some((Ok(Event::default().data("[DONE]")), s));
                }
                Phase::Done => return None,
            }
        }
    })
}
