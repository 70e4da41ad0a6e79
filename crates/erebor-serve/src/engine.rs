//! The model thread and the handle the HTTP side holds. The model, its KV cache and every Burn
//! tensor live on one OS thread running erebor-model's [`Batcher`]; handlers send it
//! [`BatchRequest`]s through a bounded channel (the queue: full = 429) and read the request's
//! [`BatchEvent`]s from a tokio channel. Dropping that receiver (a client that went away)
//! takes the sequence out of the batch at the next step.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use erebor_model::{
    BatchEvent, BatchRequest, Batcher, CausalLm, ChatTemplate, EventSink, GenerationConfig,
    ModelError, Tokenizer,
};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::error::{ApiError, ServeError};

/// Limits of the batch and the queue.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Sequences decoding together.
    pub max_batch: usize,
    /// Requests waiting for a slot (>= 1); one more gets 429.
    pub max_queue: usize,
}

/// What the HTTP side knows of the loaded model.
#[derive(Clone)]
pub(crate) struct ModelInfo {
    /// Context window (prompt + new tokens).
    pub window: usize,
    /// The tokenizer (prompts are encoded on the HTTP side).
    pub tokenizer: Tokenizer,
    /// The checkpoint's chat template.
    pub template: ChatTemplate,
}

/// The sending side of the model thread, shared by all handlers.
#[derive(Clone)]
pub(crate) struct ModelHandle {
    queue: SyncSender<BatchRequest>,
    limits: Limits,
    /// Requests sent and not yet finished (waiting + running).
    in_flight: Arc<AtomicUsize>,
    /// Sequences in the running batch (the batcher's gauge).
    running: Arc<AtomicUsize>,
    /// The loaded model's window, tokenizer and template.
    pub info: Arc<ModelInfo>,
}

/// Loads a model on the model thread: weights, tokenizer.
pub(crate) type Loader = Box<dyn FnOnce() -> Result<(CausalLm, Tokenizer), ServeError> + Send>;

/// Starts the model thread: runs `load` there, then serves requests until every handle is
/// dropped. Returns once the model is loaded (or failed to load).
pub(crate) fn spawn_model(
    load: Loader,
    limits: Limits,
    path: &str,
) -> Result<ModelHandle, ServeError> {
    let (queue, requests) = sync_channel::<BatchRequest>(limits.max_queue.max(1));
    let (ready_tx, ready_rx) = sync_channel(1);
    let running = Arc::new(AtomicUsize::new(0));
    let gauge = running.clone();
    let checkpoint = path.to_owned();
    std::thread::Builder::new()
        .name("erebor-model".into())
        .spawn(move || {
            let loaded = load().and_then(|(model, tokenizer)| {
                let template = tokenizer
                    .chat_template()
                    .map_err(|e| ServeError::Checkpoint {
                        path: checkpoint.clone(),
                        what: e.to_string(),
                    })?
                    .ok_or_else(|| ServeError::Checkpoint {
                        path: checkpoint.clone(),
                        what: "the tokenizer has no chat template".into(),
                    })?;
                Ok((model, tokenizer, template))
            });
            match loaded {
                Ok((model, tokenizer, template)) => {
                    let info = ModelInfo {
                        window: model.config().max_position_embeddings,
                        tokenizer: tokenizer.clone(),
                        template,
                    };
                    let _ = ready_tx.send(Ok(info));
                    Batcher::new(model, Some(tokenizer), limits.max_batch)
                        .with_running_gauge(gauge)
                        .run(requests);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })
        .map_err(|source| ServeError::Io {
            addr: "model thread".into(),
            source,
        })?;
    let info = ready_rx
        .recv()
        .map_err(|_| ServeError::ThreadGone { path: path.into() })??;
    Ok(ModelHandle {
        queue,
        limits,
        in_flight: Arc::new(AtomicUsize::new(0)),
        running,
        info: Arc::new(info),
    })
}

/// A request's event channel; counts the request as in flight until the batcher drops it.
struct ChannelSink {
    events: UnboundedSender<BatchEvent>,
    in_flight: Arc<AtomicUsize>,
}

impl EventSink for ChannelSink {
    fn send(&mut self, event: BatchEvent) -> bool {
        self.events.send(event).is_ok()
    }
    fn is_closed(&self) -> bool {
        self.events.is_closed()
    }
}

impl Drop for ChannelSink {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ModelHandle {
    /// Queues a generation; its events arrive on the returned receiver. A full queue is a
    /// 429 with `Retry-After`; a stopped model thread a 500.
    pub(crate) fn submit(
        &self,
        prompt: Vec<u32>,
        config: GenerationConfig,
    ) -> Result<UnboundedReceiver<BatchEvent>, ApiError> {
        let (events, receiver) = unbounded_channel();
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let sink = ChannelSink {
            events,
            in_flight: self.in_flight.clone(),
        };
        let request = BatchRequest {
            prompt,
            config,
            sink: Box::new(sink),
        };
        match self.queue.try_send(request) {
            Ok(()) => Ok(receiver),
            Err(TrySendError::Full(_)) => Err(ApiError::queue_full(self.limits.max_queue)),
            Err(TrySendError::Disconnected(_)) => {
                Err(ApiError::internal("the model thread has stopped"))
            }
        }
    }

    /// Sequences decoding now.
    pub(crate) fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Requests waiting for a slot.
    pub(crate) fn waiting(&self) -> usize {
        self.in_flight
            .load(Ordering::SeqCst)
            .saturating_sub(self.running())
    }

    /// The limits the server was started with.
    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }
}

/// Maps a model error from the loader.
pub(crate) fn load_error(path: &str, source: ModelError) -> ServeError {
    ServeError::Load {
        path: path.into(),
        source,
    }
}
