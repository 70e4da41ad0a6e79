//! [`CustomTask`]: a task file's config with its data read, prompts compiled and scoring set up,
//! as a [`Task`] the evaluator runs.

use std::path::Path;

use serde_json::{Value, json};

use super::config::CustomTaskConfig;
use super::data::{SplitSource, config_error};
use super::docs::Prompts;
use super::scoring::Scoring;
use crate::data::JsonlFile;
use crate::error::{EvalError, Result};
use crate::fewshot::{self, PlanSpec, ShotSource};
use crate::task::{DataFile, DocInstance, Harness, MetricInfo, Response, Task, TaskOptions};

/// A task defined by a YAML file.
pub struct CustomTask {
    config: CustomTaskConfig,
    origin: String,
    harness: Harness,
    seed: Option<u64>,
    num_fewshot: usize,
    eval: JsonlFile,
    eval_split: String,
    pool: Option<(JsonlFile, String)>,
    exclude_doc: bool,
    first_n: bool,
    prompts: Prompts,
    scoring: Scoring,
}

impl CustomTask {
    /// Reads a task file; relative data paths are relative to its folder.
    pub fn from_file(path: &Path, options: &TaskOptions) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_yaml_str(&text, &path.display().to_string(), base, options)
    }

    /// Parses task YAML; `origin` names it in errors, `base_dir` anchors relative paths.
    pub(crate) fn from_yaml_str(
        text: &str,
        origin: &str,
        base_dir: &Path,
        options: &TaskOptions,
    ) -> Result<Self> {
        let config: CustomTaskConfig = serde_saphyr::from_str(text)
            .map_err(|error| config_error(origin, error.to_string()))?;
        Self::from_config(config, origin, base_dir, options)
    }

    /// Builds the task from a parsed config (a workflow step may embed one).
    pub(crate) fn from_config(
        config: CustomTaskConfig,
        origin: &str,
        base_dir: &Path,
        options: &TaskOptions,
    ) -> Result<Self> {
        let origin = format!("{origin} (task {})", config.task);
        if config.repeats.is_some_and(|r| r != 1) {
            return Err(config_error(
                &origin,
                "`repeats` must be 1: decoding is greedy",
            ));
        }
        let prompts = Prompts::new(&config, &origin)?;
        let scoring = Scoring::new(&config, &origin)?;
        let data_dir = Some(options.data_dir.as_path()).filter(|d| !d.as_os_str().is_empty());
        let source =
            SplitSource::from_config(&config, base_dir, data_dir, &options.hub_cache, &origin)?;
        let eval_split = config
            .test_split
            .clone()
            .or_else(|| config.validation_split.clone())
            .ok_or_else(|| {
                config_error(
                    &origin,
                    "set `test_split` (or `validation_split`): the split to score",
                )
            })?;
        let eval = source.read(&config.task, &eval_split)?;
        let num_fewshot = options.num_fewshot.or(config.num_fewshot).unwrap_or(0);
        let pool_split = [
            &config.fewshot_split,
            &config.training_split,
            &config.validation_split,
            &config.test_split,
        ]
        .into_iter()
        .find_map(Clone::clone)
        .unwrap_or_else(|| eval_split.clone());
        let pool = if num_fewshot == 0 {
            None
        } else if pool_split == eval_split {
            Some((eval.clone(), pool_split.clone()))
        } else {
            Some((source.read(&config.task, &pool_split)?, pool_split.clone()))
        };
        let first_n = match config
            .fewshot_config
            .as_ref()
            .and_then(|f| f.sampler.as_deref())
        {
            None | Some("default") => false,
            Some("first_n") => true,
            Some(other) => {
                return Err(config_error(
                    &origin,
                    format!(
                        "unknown fewshot_config.sampler `{other}`: expected default or first_n"
                    ),
                ));
            }
        };
        let untrained = config.training_split.is_none() && config.fewshot_split.is_none();
        let exclude_doc =
            pool_split == eval_split || (options.harness == Harness::B281b09 && untrained);
        Ok(Self {
            origin,
            harness: options.harness,
            seed: options.fewshot_seed,
            num_fewshot,
            eval,
            eval_split,
            pool,
            exclude_doc,
            first_n,
            prompts,
            scoring,
            config,
        })
    }

    fn source(&self) -> ShotSource {
        let len = self.pool.as_ref().map_or(0, |(file, _)| file.rows.len());
        if self.first_n {
            ShotSource::FirstN { len }
        } else {
            ShotSource::Sample {
                len,
                exclude_doc: self.exclude_doc,
            }
        }
    }

    fn same_doc(&self, doc: usize, shot: usize) -> bool {
        self.pool
            .as_ref()
            .is_some_and(|(file, _)| file.rows[shot].value == self.eval.rows[doc].value)
    }
}

impl Task for CustomTask {
    fn name(&self) -> &str {
        &self.config.task
    }

    fn num_fewshot(&self) -> usize {
        self.num_fewshot
    }

    fn metrics(&self) -> &[MetricInfo] {
        self.scoring.metrics()
    }

    fn version(&self) -> Value {
        self.config
            .metadata
            .as_ref()
            .and_then(|m| m.get("version").cloned())
            .unwrap_or(json!(0))
    }

    fn config(&self) -> Value {
        let mut config = serde_json::to_value(&self.config).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut config {
            map.insert("num_fewshot".into(), json!(self.num_fewshot));
            map.insert(
                "erebor".into(),
                json!({
                    "task_file": self.origin,
                    "harness": self.harness.as_str(),
                    "fewshot_seed": self.seed.unwrap_or(fewshot::default_seed(self.harness)),
                    "shuffled": self.harness == Harness::B281b09,
                    "eval_split": self.eval_split,
                    "fewshot_split": self.pool.as_ref().map(|(_, split)| split.clone()),
                }),
            );
        }
        config
    }

    fn data_files(&self) -> Vec<DataFile> {
        let mut files = vec![self.eval.data_file(&self.eval_split)];
        if let Some((file, split)) = &self.pool
            && (file.path != self.eval.path || split != &self.eval_split)
        {
            files.push(file.data_file(split));
        }
        files
    }

    fn instances(&self, limit: Option<usize>) -> Result<Vec<DocInstance>> {
        let spec = PlanSpec {
            harness: self.harness,
            seed: self.seed,
            num_docs: self.eval.rows.len(),
            limit,
            num_fewshot: self.num_fewshot,
            source: self.source(),
        };
        let plan = fewshot::plan(&self.config.task, &spec, &|doc, shot| {
            self.same_doc(doc, shot)
        })?;
        plan.iter()
            .map(|planned| {
                let pool = self.pool.as_ref().map(|(file, _)| file);
                self.prompts
                    .instance(&self.eval, planned.doc, pool, &planned.shots)
            })
            .collect()
    }

    fn process_results(
        &self,
        instance: &DocInstance,
        responses: &[Response],
    ) -> Result<Vec<(String, f64)>> {
        let row = self
            .eval
            .rows
            .get(instance.doc_id)
            .ok_or_else(|| EvalError::Document {
                task: self.config.task.clone(),
                doc_id: instance.doc_id,
                message: "not a document of this task".into(),
            })?;
        let doc = self.prompts.process(&self.eval, row)?;
        self.scoring
            .score(&self.config.task, instance, &doc, responses)
    }

    fn filtered_responses(
        &self,
        _filter: &str,
        _instance: &DocInstance,
        responses: &[Response],
    ) -> Vec<Value> {
        self.scoring.filtered(responses)
    }
}
