//! Template resolution inside a step's `with:` block at load time: params and matrix values
//! are substituted, output references are checked and rewritten to name one arm exactly, and
//! secret params stay as templates so their values never reach a stored config.

use crate::error::{ErrorKind, WorkflowError, suggestion};
use crate::matrix::{self, Arm};
use crate::node::{Node, Pos, Value};
use crate::param_values::ParamValues;
use crate::template::{self, Expr, Substitution};
use erebor_core::OutputType;
use std::collections::BTreeSet;

/// The expanded steps, as far as templates need to know them.
pub struct StepIndex {
    /// Per expanded step: (expanded id, base id, arm, declared outputs).
    pub steps: Vec<IndexedStep>,
}

/// One expanded step in the index.
pub struct IndexedStep {
    /// `train[dpop]`.
    pub id: String,
    /// `train`.
    pub base: String,
    /// The arm's axis values.
    pub arm: Arm,
    /// The outputs its kind declares for its config (empty when the kind is unknown).
    pub outputs: Vec<(String, OutputType)>,
}

impl StepIndex {
    /// Expanded steps whose base id is `base`.
    pub fn arms_of(&self, base: &str) -> Vec<usize> {
        (0..self.steps.len())
            .filter(|&i| self.steps[i].base == base)
            .collect()
    }

    /// The expanded step with this exact id.
    pub fn by_id(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// Distinct base ids, in file order.
    pub fn bases(&self) -> Vec<&str> {
        let mut seen = Vec::new();
        for step in &self.steps {
            if !seen.contains(&step.base.as_str()) {
                seen.push(step.base.as_str());
            }
        }
        seen
    }

    /// Resolves a `needs:` entry or a template's step part for the step at `from`: an exact arm,
    /// a plain step, or the arms of a matrix base that pair with `from`'s arm.
    pub fn targets(&self, reference: &str, from_arm: &Arm) -> Result<Vec<usize>, UnknownStep> {
        let reference = matrix::normalise_id(reference);
        if reference.contains('[') {
            return self.by_id(&reference).map(|i| vec![i]).ok_or_else(|| {
                let base = reference.split('[').next().unwrap_or_default().to_owned();
                let arms: Vec<String> = self
                    .arms_of(&base)
                    .iter()
                    .map(|&i| self.steps[i].id.clone())
                    .collect();
                if arms.is_empty() {
                    UnknownStep::NoStep { base }
                } else {
                    UnknownStep::NoArm {
                        base,
                        reference,
                        arms,
                    }
                }
            });
        }
        let arms = self.arms_of(&reference);
        if arms.is_empty() {
            return Err(UnknownStep::NoStep { base: reference });
        }
        Ok(arms
            .into_iter()
            .filter(|&i| matrix::pairs_with(&self.steps[i].arm, from_arm))
            .collect())
    }
}

/// Why a step reference (a `needs:` entry, a template's step part) names no expanded step.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnknownStep {
    /// No step has this base id.
    #[error("there is no step `{base}`")]
    NoStep {
        /// The base id referred to.
        base: String,
    },
    /// The base id is a matrix step, but none of its arms has this id.
    #[error(
        "`{base}` has no arm `{reference}`; its arms are {}",
        quoted_list(arms)
    )]
    NoArm {
        /// The base id referred to.
        base: String,
        /// The arm id as written (normalised).
        reference: String,
        /// The ids of the step's arms.
        arms: Vec<String>,
    },
}

/// `` `a`, `b` ``.
fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Finds where `needle` appears on `pos`'s line at or after its column.
pub struct SourceText<'a>(pub &'a str);

impl SourceText<'_> {
    /// The position of `needle` on the line of `pos`, at or after `pos`; `pos` if not found.
    pub fn find(&self, pos: Pos, needle: &str) -> Pos {
        let Some(line) = self.0.lines().nth(pos.line.saturating_sub(1) as usize) else {
            return pos;
        };
        let start_char = pos.col.saturating_sub(1) as usize;
        let start_byte = line
            .char_indices()
            .nth(start_char)
            .map_or(line.len(), |(b, _)| b);
        match line[start_byte..].find(needle) {
            Some(found) => {
                let col = line[..start_byte + found].chars().count() + 1;
                Pos::new(pos.line, u32::try_from(col).unwrap_or(u32::MAX))
            }
            None => pos,
        }
    }
}

/// Resolves templates in one expanded step's `with:`.
pub struct Resolver<'a> {
    /// Param values (secrets stay templates).
    pub params: &'a ParamValues,
    /// The expanded steps.
    pub index: &'a StepIndex,
    /// The source, for positions inside strings.
    pub source: SourceText<'a>,
    /// Index of the step being resolved.
    pub current: usize,
    /// Errors found.
    pub errors: Vec<WorkflowError>,
    /// Steps whose outputs are referenced.
    pub deps: BTreeSet<usize>,
}

impl Resolver<'_> {
    /// Resolves a node tree into JSON.
    pub fn resolve(&mut self, node: &Node) -> serde_json::Value {
        match &node.value {
            Value::Str(text) if template::has_template(text) => self.resolve_string(node, text),
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(|item| self.resolve(item)).collect())
            }
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| (key.name.clone(), self.resolve(value)))
                    .collect(),
            ),
            _ => node.to_json(),
        }
    }

    fn resolve_string(&mut self, node: &Node, text: &str) -> serde_json::Value {
        let segments = match template::parse(text) {
            Ok(segments) => segments,
            Err(error) => {
                let pos = self.source.find(node.pos, &error.source_text);
                self.errors.push(
                    WorkflowError::new(ErrorKind::BadTemplate, pos, error.message).help(error.help),
                );
                return serde_json::Value::String(text.to_owned());
            }
        };
        let sources: Vec<(Expr, String)> = segments
            .iter()
            .filter_map(|segment| match segment {
                template::Segment::Expr { expr, source, .. } => {
                    Some((expr.clone(), source.clone()))
                }
                template::Segment::Text(_) => None,
            })
            .collect();
        let result = template::render(&segments, |expr| {
            let source = sources
                .iter()
                .find(|(e, _)| e == expr)
                .map(|(_, s)| s.as_str())
                .unwrap_or_default();
            let pos = self.source.find(node.pos, source);
            Ok::<_, ()>(self.lookup(expr, pos))
        });
        result.unwrap_or_else(|()| serde_json::Value::String(text.to_owned()))
    }

    fn lookup(&mut self, expr: &Expr, pos: Pos) -> Substitution {
        let step = &self.index.steps[self.current];
        match expr {
            Expr::Param(name) => {
                if self.params.secret_names.contains(name) {
                    return Substitution::Keep(expr.clone());
                }
                match self.params.values.get(name) {
                    Some(value) => Substitution::Value(value.clone()),
                    None => {
                        self.errors.push(
                            WorkflowError::new(
                                ErrorKind::UnknownReference,
                                pos,
                                format!("`{expr}` names a param that is not declared"),
                            )
                            .help(format!(
                                "{} (declare params under `params:`)",
                                suggestion(
                                    name,
                                    self.params.values.keys().map(String::as_str),
                                    "params"
                                )
                            )),
                        );
                        Substitution::Keep(expr.clone())
                    }
                }
            }
            Expr::Matrix(axis) => match step.arm.iter().find(|(name, _)| name == axis) {
                Some((_, value)) => Substitution::Value(value.clone()),
                None => {
                    let help = if step.arm.is_empty() {
                        format!(
                            "step `{}` has no `matrix:`; add `matrix: {{{axis}: [...]}}`",
                            step.base
                        )
                    } else {
                        suggestion(axis, step.arm.iter().map(|(n, _)| n.as_str()), "axes")
                    };
                    self.errors.push(
                        WorkflowError::new(
                            ErrorKind::UnknownReference,
                            pos,
                            format!(
                                "`{expr}` names a matrix axis step `{}` does not have",
                                step.base
                            ),
                        )
                        .help(help),
                    );
                    Substitution::Keep(expr.clone())
                }
            },
            Expr::Output {
                step: target,
                output,
            } => self.lookup_output(expr, target, output, pos),
        }
    }

    fn lookup_output(&mut self, expr: &Expr, target: &str, output: &str, pos: Pos) -> Substitution {
        let step = &self.index.steps[self.current];
        let targets = match self.index.targets(target, &step.arm) {
            Ok(targets) => targets,
            Err(reason) => {
                let base = target.split('[').next().unwrap_or_default();
                self.errors.push(
                    WorkflowError::new(
                        ErrorKind::UnknownReference,
                        pos,
                        format!("`{expr}`: {reason}"),
                    )
                    .help(suggestion(base, self.index.bases(), "steps")),
                );
                return Substitution::Keep(expr.clone());
            }
        };
        let [target_index] = targets.as_slice() else {
            let arms: Vec<String> = targets
                .iter()
                .map(|&i| format!("`{}`", self.index.steps[i].id))
                .collect();
            let example = targets
                .first()
                .map(|&i| {
                    format!(
                        "`${{{{ steps.{}.outputs.{output} }}}}`",
                        self.index.steps[i].id
                    )
                })
                .unwrap_or_default();
            self.errors.push(
                WorkflowError::new(
                    ErrorKind::UnknownReference,
                    pos,
                    format!(
                        "`{expr}` is ambiguous in step `{}`: `{target}` has arms {}",
                        step.id,
                        arms.join(", ")
                    ),
                )
                .help(format!(
                    "name one arm, e.g. {example}, or give this step the same matrix axis"
                )),
            );
            return Substitution::Keep(expr.clone());
        };
        let target_step = &self.index.steps[*target_index];
        if *target_index == self.current {
            self.errors.push(WorkflowError::new(
                ErrorKind::UnknownReference,
                pos,
                format!("step `{}` cannot use its own output in `{expr}`", step.id),
            ));
            return Substitution::Keep(expr.clone());
        }
        if !target_step.outputs.iter().any(|(name, _)| name == output) {
            self.errors.push(
                WorkflowError::new(
                    ErrorKind::UnknownReference,
                    pos,
                    format!("step `{}` has no output `{output}`", target_step.id),
                )
                .help(suggestion(
                    output,
                    target_step.outputs.iter().map(|(n, _)| n.as_str()),
                    "outputs",
                )),
            );
            return Substitution::Keep(expr.clone());
        }
        self.deps.insert(*target_index);
        Substitution::Keep(Expr::Output {
            step: target_step.id.clone(),
            output: output.to_owned(),
        })
    }
}
