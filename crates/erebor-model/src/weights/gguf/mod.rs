//! GGUF files (llama.cpp): header, metadata, tensor directory; Llama/Mistral/Qwen2 weights mapped
//! to Hugging Face names with llama.cpp's q/k row permutation undone, dequantised to f32.

mod file;
mod meta;
mod model_config;
mod quant;
mod source;

pub use file::GgufFile;
pub use meta::MetaValue;
pub(crate) use model_config::ROPE_FREQS;
pub use quant::GgufTensorType;
pub(crate) use source::GgufSource;
