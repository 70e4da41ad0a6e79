//! Weight files: Hugging Face safetensors (single or sharded, f32/f16/bf16) in and out, GGUF in,
//! and seeded random initialisation. Each source implements [`crate::model::WeightSource`], so
//! the model is built by one strict code path: a missing or unexpected tensor, or a shape that
//! differs from the config, is an error naming the tensor.

mod gguf;
mod random;
mod safetensors_load;
mod safetensors_save;

pub(crate) use gguf::GgufSource;
pub use gguf::{GgufFile, GgufTensorType, MetaValue};
pub(crate) use random::RandomSource;
pub use safetensors_load::SafetensorsSource;
pub(crate) use safetensors_save::SafetensorsWriter;
pub use safetensors_save::SaveDType;
