//! Training checkpoints: written atomically, found again by a resumed attempt.
//!
//! ```text
//! <work_dir>/checkpoints/
//!   step-00000040/
//!     params.safetensors      every trainable float parameter (all of them, or the LoRA
//!                             adapters), f32, by module path
//!     optimizer.safetensors   AdamW moments `<path>.exp_avg` / `<path>.exp_avg_sq`; per-parameter
//!                             step counts in the metadata
//!     state.json              TrainerState: step, epoch, data position, RNG, schedule, config hash
//!   step-00000080/ ...
//! ```
//!
//! A checkpoint is built in a hidden `.tmp-…` folder, every file synced, then renamed into place,
//! so a folder named `step-…` is always complete: a kill at any moment leaves either the previous
//! checkpoint or the new one. Older checkpoints beyond `keep` are removed after the rename.

use crate::TrainError;
use crate::optim::{HostMomentState, MomentState};
use crate::schedule::LrSchedule;
use crate::tensor_io::{NamedTensor, read_safetensors, write_safetensors};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{DType, Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Version of the checkpoint layout; readers refuse newer ones.
pub(crate) const CHECKPOINT_FORMAT_VERSION: u32 = 1;

const PARAMS_FILE: &str = "params.safetensors";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
const STATE_FILE: &str = "state.json";

/// Where training stands, saved with every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct TrainerState {
    /// [`CHECKPOINT_FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Optimizer steps completed.
    pub step: u64,
    /// Total optimizer steps of the run.
    pub total_steps: u64,
    /// The epoch the next step belongs to (0-based).
    pub epoch: u64,
    /// Optimizer steps already taken within that epoch.
    pub step_in_epoch: u64,
    /// The data-order RNG at the start of `epoch`: the epoch's order is re-drawn from it.
    pub rng: RngState,
    /// The learning-rate schedule (the next step's rate is `schedule.lr_for_step(step + 1)`).
    pub schedule: LrSchedule,
    /// Hash of the training configuration and inputs; a resume with another one is refused.
    pub fingerprint: String,
    /// The precision policy in force.
    pub precision: String,
    /// Training loss of the last step.
    pub last_loss: f64,
}

/// The random state of training. The data order of an epoch is a `ChaCha8` shuffle seeded with
/// `seed` on stream `stream` (the epoch), and the device RNG (LoRA dropout) is re-seeded from
/// (`seed`, step) before every step, so these two numbers and the step restore all randomness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RngState {
    /// The run's seed.
    pub seed: u64,
    /// The `ChaCha8` stream of the current epoch's data order.
    pub stream: u64,
}

/// The name of the folder of the checkpoint after `step` optimizer steps.
pub(crate) fn checkpoint_name(step: u64) -> String {
    format!("step-{step:08}")
}

/// The newest complete checkpoint under `root`, if any.
pub(crate) fn latest_checkpoint(root: &Path) -> Result<Option<PathBuf>, TrainError> {
    Ok(list_checkpoints(root)?.pop().map(|(_, path)| path))
}

fn list_checkpoints(root: &Path) -> Result<Vec<(u64, PathBuf)>, TrainError> {
    if !root.exists() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root).map_err(|e| TrainError::io(root, e))? {
        let entry = entry.map_err(|e| TrainError::io(root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(step) = name
            .strip_prefix("step-")
            .and_then(|s| s.parse::<u64>().ok())
        {
            found.push((step, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Writes a checkpoint of `module`, the optimizer moments and `state` under `root`, then keeps
/// only the newest `keep` checkpoints. Returns the new checkpoint's folder.
pub(crate) fn save_checkpoint<M: Module>(
    root: &Path,
    module: &M,
    moments: &BTreeMap<String, MomentState>,
    state: &TrainerState,
    keep: usize,
) -> Result<PathBuf, TrainError> {
    std::fs::create_dir_all(root).map_err(|e| TrainError::io(root, e))?;
    remove_stale_temporaries(root)?;
    let name = checkpoint_name(state.step);
    let final_dir = root.join(&name);
    let tmp = root.join(format!(".tmp-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;

    write_safetensors(&tmp.join(PARAMS_FILE), &module_tensors(module)?, None)?;
    let mut optimizer = Vec::with_capacity(moments.len() * 2);
    let mut steps = HashMap::new();
    for (key, moment) in moments {
        let host = moment.to_host(key)?;
        let len = host.exp_avg.len();
        steps.insert(format!("{key}.step"), host.step.to_string());
        optimizer.push(NamedTensor::new(
            format!("{key}.exp_avg"),
            vec![len],
            host.exp_avg,
        ));
        optimizer.push(NamedTensor::new(
            format!("{key}.exp_avg_sq"),
            vec![len],
            host.exp_avg_sq,
        ));
    }
    write_safetensors(&tmp.join(OPTIMIZER_FILE), &optimizer, Some(steps))?;
    let state_json = serde_json::to_vec_pretty(state).map_err(|e| TrainError::Checkpoint {
        path: tmp.join(STATE_FILE),
        message: e.to_string(),
    })?;
    write_synced(&tmp.join(STATE_FILE), &state_json)?;
    sync_dir(&tmp)?;

    if final_dir.exists() {
        // A checkpoint of this step from an earlier attempt: same step, same content.
        std::fs::remove_dir_all(&final_dir).map_err(|e| TrainError::io(&final_dir, e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| TrainError::io(&final_dir, e))?;
    sync_dir(root)?;

    let all = list_checkpoints(root)?;
    for (_, old) in all.iter().take(all.len().saturating_sub(keep.max(1))) {
        std::fs::remove_dir_all(old).map_err(|e| TrainError::io(old, e))?;
    }
    Ok(final_dir)
}

/// A checkpoint read back: the module with its saved weights, the optimizer moments on `device`,
/// and the trainer state.
pub(crate) struct LoadedCheckpoint<M> {
    /// The module with the checkpoint's weights.
    pub module: M,
    /// `AdamW` moments by parameter path.
    pub moments: BTreeMap<String, MomentState>,
    /// Where training stood.
    pub state: TrainerState,
}

/// Reads the checkpoint in `dir` into `module` (which must have the same structure).
pub(crate) fn load_checkpoint<M: Module>(
    dir: &Path,
    module: M,
    device: &Device,
) -> Result<LoadedCheckpoint<M>, TrainError> {
    let bad = |path: PathBuf, message: String| TrainError::Checkpoint { path, message };
    let state_path = dir.join(STATE_FILE);
    let text = std::fs::read(&state_path).map_err(|e| TrainError::io(&state_path, e))?;
    let state: TrainerState =
        serde_json::from_slice(&text).map_err(|e| bad(state_path.clone(), e.to_string()))?;
    if state.format_version > CHECKPOINT_FORMAT_VERSION {
        return Err(bad(
            state_path,
            format!(
                "format version {} is newer than this erebor understands ({CHECKPOINT_FORMAT_VERSION})",
                state.format_version
            ),
        ));
    }

    let (params, _) = read_safetensors(&dir.join(PARAMS_FILE))?;
    let mut loader = ParamLoader {
        file: dir.join(PARAMS_FILE),
        tensors: params.into_iter().map(|t| (t.name.clone(), t)).collect(),
        path: Vec::new(),
        error: None,
        dtypes: HashMap::new(),
    };
    let module = module.map(&mut loader);
    if let Some(error) = loader.error {
        return Err(error);
    }
    if let Some(extra) = loader.tensors.keys().next() {
        return Err(bad(
            dir.join(PARAMS_FILE),
            format!("tensor `{extra}` matches no parameter of the model being trained"),
        ));
    }

    let optimizer_path = dir.join(OPTIMIZER_FILE);
    let (tensors, metadata) = read_safetensors(&optimizer_path)?;
    let mut by_name: HashMap<String, Vec<f32>> =
        tensors.into_iter().map(|t| (t.name, t.values)).collect();
    let metadata = metadata.unwrap_or_default();
    let mut moments = BTreeMap::new();
    for (key, step) in &metadata {
        let Some(param) = key.strip_suffix(".step") else {
            continue;
        };
        let step: u64 = step.parse().map_err(|_| {
            bad(
                optimizer_path.clone(),
                format!("`{key}` is not a step count"),
            )
        })?;
        let mut take = |suffix: &str| {
            by_name.remove(&format!("{param}.{suffix}")).ok_or_else(|| {
                bad(
                    optimizer_path.clone(),
                    format!("missing tensor `{param}.{suffix}`"),
                )
            })
        };
        let host = HostMomentState {
            step,
            exp_avg: take("exp_avg")?,
            exp_avg_sq: take("exp_avg_sq")?,
        };
        // The moments take their parameter's dtype (saved as f32 whatever it is).
        let dtype = loader.dtypes.get(param).copied().unwrap_or(DType::F32);
        moments.insert(
            param.to_owned(),
            MomentState::from_host(host, device, dtype),
        );
    }
    Ok(LoadedCheckpoint {
        module,
        moments,
        state,
    })
}

/// Every trainable float parameter of `module` as f32 host tensors named by module path (frozen
/// parameters, such as a LoRA base, are left out).
pub(crate) fn module_tensors<M: Module>(module: &M) -> Result<Vec<NamedTensor>, TrainError> {
    let mut collector = ParamCollector {
        path: Vec::new(),
        tensors: Vec::new(),
        error: None,
    };
    module.visit(&mut collector);
    match collector.error {
        Some(error) => Err(error),
        None => Ok(collector.tensors),
    }
}

struct ParamCollector {
    path: Vec<String>,
    tensors: Vec<NamedTensor>,
    error: Option<TrainError>,
}

impl ModuleVisitor for ParamCollector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let name = self.path.join(".");
        let tensor = param.val();
        if !tensor.is_require_grad() {
            // Frozen (a LoRA base): it comes back from the base model, not from checkpoints.
            return;
        }
        let shape = tensor.shape().to_vec();
        match tensor.into_data().try_into_vec_as::<f32>() {
            Ok(values) => self.tensors.push(NamedTensor::new(name, shape, values)),
            Err(error) => {
                self.error.get_or_insert(TrainError::TensorRead {
                    what: format!("parameter {name}"),
                    message: format!("{error:?}"),
                });
            }
        }
    }
}

struct ParamLoader {
    file: PathBuf,
    tensors: HashMap<String, NamedTensor>,
    path: Vec<String>,
    error: Option<TrainError>,
    /// The dtype of each parameter loaded, by path.
    dtypes: HashMap<String, DType>,
}

impl ModuleMapper for ParamLoader {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.join(".");
        let Some(saved) = self.tensors.remove(&name) else {
            if !param.val().is_require_grad() {
                return param;
            }
            self.error.get_or_insert(TrainError::Checkpoint {
                path: self.file.clone(),
                message: format!("no tensor for parameter `{name}`"),
            });
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        let dims = tensor.shape().to_vec();
        if dims != saved.shape {
            self.error.get_or_insert(TrainError::Checkpoint {
                path: self.file.clone(),
                message: format!(
                    "`{name}` has shape {:?} in the checkpoint, {dims:?} in the model",
                    saved.shape
                ),
            });
            return Param::from_mapped_value(id, tensor, mapper);
        }
        let require_grad = tensor.is_require_grad();
        let device = tensor.device();
        let dtype = tensor.dtype();
        self.dtypes.insert(name, dtype);
        let data = TensorData::new(saved.values, saved.shape);
        let mut loaded = Tensor::<D>::from_data(data, &device);
        if loaded.dtype() != dtype {
            loaded = loaded.cast(dtype);
        }
        if require_grad {
            loaded = loaded.require_grad();
        }
        Param::from_mapped_value(id, loaded, mapper)
    }
}

fn remove_stale_temporaries(root: &Path) -> Result<(), TrainError> {
    for entry in std::fs::read_dir(root).map_err(|e| TrainError::io(root, e))? {
        let entry = entry.map_err(|e| TrainError::io(root, e))?;
        if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            let path = entry.path();
            std::fs::remove_dir_all(&path).map_err(|e| TrainError::io(&path, e))?;
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` and syncs it to disk.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(|e| TrainError::io(path, e))?;
    file.write_all(bytes).map_err(|e| TrainError::io(path, e))?;
    file.sync_all().map_err(|e| TrainError::io(path, e))
}

fn sync_dir(dir: &Path) -> Result<(), TrainError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| TrainError::io(dir, e))
}

#[cfg(test)]
#[path = "checkpoint_tests.rs"]
mod tests;
