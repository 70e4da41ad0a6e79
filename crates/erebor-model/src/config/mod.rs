//! Model configuration: [`ModelConfig`] (what the Burn model is built from), read from a Hugging
//! Face `config.json` ([`HfConfig`]) in either `RoPE` spelling, and written back in HF form;
//! [`ModelConfig::synthetic`] for models built without a checkpoint.

mod architecture;
mod from_hf;
mod hf;
mod model_config;
mod synthetic;
mod write;

pub use architecture::Architecture;
pub use hf::{HfConfig, RopeParameters};
pub use model_config::{ModelConfig, RopeScaling};
pub use synthetic::DecoderDims;
