//! Workflow errors: each names the file, line and column, says what is wrong and what to do.

use crate::node::Pos;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What kind of problem an error is; shown as `error[kind]` and stable for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// The text is not valid YAML.
    Syntax,
    /// A mapping has a key the schema does not know.
    UnknownKey,
    /// A required key is absent.
    MissingKey,
    /// A value has the wrong type or an invalid value.
    TypeMismatch,
    /// `uses:` names a step kind this binary does not know.
    UnknownStepKind,
    /// Two steps share an id.
    DuplicateStep,
    /// `needs:` names a step that does not exist.
    MissingDependency,
    /// The `needs:` graph has a cycle.
    Cycle,
    /// A `${{ ... }}` expression cannot be parsed.
    BadTemplate,
    /// A template names a param, step, matrix axis or output that does not exist.
    UnknownReference,
    /// A `--set` override or a param value is wrong.
    BadParam,
    /// A step kind rejected its `with:` block.
    StepConfig,
}

impl ErrorKind {
    /// The kebab-case name shown in `error[...]`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::Syntax => "syntax",
            ErrorKind::UnknownKey => "unknown-key",
            ErrorKind::MissingKey => "missing-key",
            ErrorKind::TypeMismatch => "type-mismatch",
            ErrorKind::UnknownStepKind => "unknown-step-kind",
            ErrorKind::DuplicateStep => "duplicate-step",
            ErrorKind::MissingDependency => "missing-dependency",
            ErrorKind::Cycle => "cycle",
            ErrorKind::BadTemplate => "bad-template",
            ErrorKind::UnknownReference => "unknown-reference",
            ErrorKind::BadParam => "bad-param",
            ErrorKind::StepConfig => "step-config",
        }
    }
}

/// One problem in a workflow file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowError {
    /// What kind of problem.
    pub kind: ErrorKind,
    /// Where; `0:0` when the problem has no place in the file (e.g. a `--set` flag).
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
    /// Extra lines (e.g. the steps of a cycle).
    pub notes: Vec<String>,
}

impl WorkflowError {
    /// An error at `pos`.
    pub fn new(kind: ErrorKind, pos: Pos, message: impl Into<String>) -> Self {
        Self {
            kind,
            pos,
            message: message.into(),
            help: None,
            notes: Vec::new(),
        }
    }

    /// Adds advice.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a note line.
    #[must_use]
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

/// Every problem found in one workflow file, with the text to show them in context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowErrors {
    /// The file as given by the user.
    pub file: PathBuf,
    /// Its text, for the source excerpt under each error.
    source: Arc<str>,
    /// The problems, in file order.
    pub errors: Vec<WorkflowError>,
}

impl WorkflowErrors {
    /// Errors in `file`, whose text is `source`.
    pub fn new(file: &Path, source: Arc<str>, mut errors: Vec<WorkflowError>) -> Self {
        errors.sort_by_key(|error| error.pos);
        errors.dedup();
        Self {
            file: file.to_owned(),
            source,
            errors,
        }
    }

    /// Whether `kind` is among the errors.
    pub fn has(&self, kind: ErrorKind) -> bool {
        self.errors.iter().any(|error| error.kind == kind)
    }

    fn source_line(&self, line: u32) -> Option<&str> {
        let index = usize::try_from(line).ok()?.checked_sub(1)?;
        self.source.lines().nth(index)
    }
}

impl std::error::Error for WorkflowErrors {}

impl fmt::Display for WorkflowErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        for (number, error) in self.errors.iter().enumerate() {
            if number > 0 {
                writeln!(f)?;
            }
            writeln!(f, "error[{}]: {}", error.kind.as_str(), error.message)?;
            let gutter = if error.pos.line == 0 {
                1
            } else {
                error.pos.line.to_string().len()
            };
            let pad = " ".repeat(gutter);
            if error.pos.line == 0 {
                writeln!(f, "{pad}--> {file}")?;
            } else {
                writeln!(f, "{pad}--> {file}:{}:{}", error.pos.line, error.pos.col)?;
                if let Some(line) = self.source_line(error.pos.line) {
                    let caret_at = line
                        .chars()
                        .take(error.pos.col.saturating_sub(1) as usize)
                        .map(|c| if c == '\t' { '\t' } else { ' ' })
                        .collect::<String>();
                    writeln!(f, "{pad} |")?;
                    writeln!(f, "{} | {line}", error.pos.line)?;
                    writeln!(f, "{pad} | {caret_at}^")?;
                }
            }
            for note in &error.notes {
                writeln!(f, "{pad} = note: {note}")?;
            }
            if let Some(help) = &error.help {
                writeln!(f, "{pad} = help: {help}")?;
            }
        }
        let count = self.errors.len();
        write!(
            f,
            "{file}: {count} error{}",
            if count == 1 { "" } else { "s" }
        )
    }
}

/// The candidate closest to `word` by edit distance, if any is close enough to be a typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(word, candidate), candidate))
        .filter(|(distance, candidate)| {
            *distance <= 2.max(candidate.len() / 3)
                || candidate.starts_with(word)
                || word.starts_with(candidate)
                || common_prefix(word, candidate) >= 4
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

/// `did you mean `x`?` when a close candidate exists, else the list of valid ones.
pub fn suggestion<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
    what: &str,
) -> String {
    match closest(word, candidates.clone()) {
        Some(best) => format!("did you mean `{best}`?"),
        None => {
            let all: Vec<String> = candidates
                .into_iter()
                .map(|candidate| format!("`{candidate}`"))
                .collect();
            if all.is_empty() {
                format!("there are no {what}")
            } else {
                format!("valid {what}: {}", all.join(", "))
            }
        }
    }
}

/// The error for text serde-saphyr cannot parse as YAML, at its line and column.
pub(crate) fn syntax_error(error: &serde_saphyr::Error) -> WorkflowError {
    let pos = error
        .location()
        .map(|l| {
            Pos::new(
                u32::try_from(l.line()).unwrap_or(0),
                u32::try_from(l.column()).unwrap_or(0),
            )
        })
        .unwrap_or_default();
    let message = strip_location(&first_line(&error.to_string()));
    WorkflowError::new(ErrorKind::Syntax, pos, format!("invalid YAML: {message}"))
        .help("fix the YAML syntax at this place (indentation, brackets, quotes)")
}

/// Drops the `error: line 5 column 20: ` prefix serde-saphyr puts before the message.
fn strip_location(text: &str) -> String {
    let text = text.strip_prefix("error: ").unwrap_or(text);
    match text
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((position, message)) if position.contains("column") => message.to_owned(),
        _ => text.to_owned(),
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or(text).trim();
    // serde-saphyr appends " at line X column Y"; the position is shown separately.
    match line.find(" at line ") {
        Some(cut) => line[..cut].to_owned(),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_but_not_unrelated_words() {
        let keys = ["needs", "uses", "with", "retries"];
        assert_eq!(closest("neds", keys), Some("needs"));
        assert_eq!(closest("retry", keys), Some("retries"));
        assert_eq!(closest("banana", keys), None);
    }
}
