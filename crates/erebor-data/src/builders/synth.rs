//! A seeded generator of multi-step arithmetic word problems with worked answers in GSM8K
//! format: a tiny model trained from scratch learns it in minutes on a CPU, and the low-edit
//! builder turns its answers into DPOP-style pairs.
//!
//! ```text
//! question: Mia has 12 coins. She gets 5 more. She gives away 3. How many coins does Mia have now?
//! answer:   12 + 5 = 17
//!           17 - 3 = 14
//!           #### 14
//! ```
//!
//! The vocabulary is fixed and small (`VOCABULARY` plus digits and `+ - * / = # . ?`); each
//! step is one sentence in the question and one `a op b = c` line in the answer.

use crate::stable::row_rng;
use erebor_core::ConfigError;
use rand::RngExt;
use serde::{Deserialize, Serialize};

/// Every word the generator writes besides numbers (the tests check every question against it).
#[cfg(test)]
const VOCABULARY: &[&str] = &[
    "Ann", "Bob", "Mia", "Sam", "She", "He", "has", "gets", "more", "gives", "away", "makes", "it",
    "times", "as", "many", "splits", "them", "into", "equal", "groups", "and", "keeps", "one",
    "group", "How", "does", "have", "now", "apples", "books", "coins", "cards",
];

const PEOPLE: [(&str, &str); 4] = [("Ann", "She"), ("Bob", "He"), ("Mia", "She"), ("Sam", "He")];
const ITEMS: [&str; 4] = ["apples", "books", "coins", "cards"];

/// An arithmetic operation a step may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `x + b`: "She gets b more."
    Add,
    /// `x - b` (b < x): "She gives away b."
    Sub,
    /// `x * b`: "She makes it b times as many."
    Mul,
    /// `x / b` (b divides x): "She splits them into b equal groups and keeps one group."
    Div,
}

/// Settings of the generator (the `synthetic:` block of a convert source).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthConfig {
    /// Number of problems.
    pub count: usize,
    /// Seed; problem `i` depends only on the seed and `i`.
    #[serde(default)]
    pub seed: u64,
    /// Inclusive range of the number of steps (answer lines before `#### N`).
    #[serde(default = "default_steps")]
    pub steps: [usize; 2],
    /// Inclusive range of the starting amount.
    #[serde(default = "default_start")]
    pub start: [u64; 2],
    /// Inclusive range of each step's operand.
    #[serde(default = "default_operand")]
    pub operand: [u64; 2],
    /// No intermediate result exceeds this.
    #[serde(default = "default_max_value")]
    pub max_value: u64,
    /// Operations to draw from.
    #[serde(default = "default_operations")]
    pub operations: Vec<Operation>,
}

fn default_steps() -> [usize; 2] {
    [2, 4]
}
fn default_start() -> [u64; 2] {
    [2, 20]
}
fn default_operand() -> [u64; 2] {
    [2, 9]
}
fn default_max_value() -> u64 {
    200
}
fn default_operations() -> Vec<Operation> {
    vec![
        Operation::Add,
        Operation::Sub,
        Operation::Mul,
        Operation::Div,
    ]
}

impl SynthConfig {
    /// Checks the ranges; the error names the field within the `synthetic` block.
    pub fn check(&self) -> Result<(), ConfigError> {
        let [min_steps, max_steps] = self.steps;
        if min_steps == 0 || min_steps > max_steps {
            return Err(ConfigError::field(
                "steps",
                format!("[{min_steps}, {max_steps}] must be 1 <= min <= max"),
            ));
        }
        for (name, [low, high]) in [("start", self.start), ("operand", self.operand)] {
            if low == 0 || low > high {
                return Err(ConfigError::field(
                    name,
                    format!("[{low}, {high}] must be 1 <= min <= max"),
                ));
            }
        }
        if self.start[1] > self.max_value {
            return Err(ConfigError::field(
                "max_value",
                format!(
                    "{} is below the largest start {}",
                    self.max_value, self.start[1]
                ),
            ));
        }
        if !self.operations.contains(&Operation::Add) || !self.operations.contains(&Operation::Sub)
        {
            return Err(ConfigError::field(
                "operations",
                "include add and sub, so every amount has a next step",
            ));
        }
        if self.max_value < 2 * self.operand[0] {
            return Err(ConfigError::field(
                "max_value",
                format!(
                    "{} must be at least twice the smallest operand {}, so every amount can \
                     grow or shrink",
                    self.max_value, self.operand[0]
                ),
            ));
        }
        Ok(())
    }
}

/// One generated problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SynthProblem {
    /// `synth-SEED-INDEX`.
    pub id: String,
    /// The word problem.
    pub question: String,
    /// One `a op b = c` line per step, then `#### N`.
    pub answer: String,
}

/// Generates problem `index` of the series `config` describes.
pub fn generate(config: &SynthConfig, index: u64) -> SynthProblem {
    let id = format!("synth-{}-{index}", config.seed);
    let mut rng = row_rng(config.seed, &id);
    let (name, pronoun) = PEOPLE[rng.random_range(0..PEOPLE.len())];
    let item = ITEMS[rng.random_range(0..ITEMS.len())];
    let steps = rng.random_range(config.steps[0]..=config.steps[1]);
    let mut value = rng.random_range(config.start[0]..=config.start[1]);
    let mut question = format!("{name} has {value} {item}.");
    let mut answer = String::new();
    for _ in 0..steps {
        let Some((operation, operand)) = next_step(config, value, &mut rng) else {
            break;
        };
        let (sentence, symbol, result) = match operation {
            Operation::Add => (
                format!("{pronoun} gets {operand} more."),
                '+',
                value + operand,
            ),
            Operation::Sub => (
                format!("{pronoun} gives away {operand}."),
                '-',
                value - operand,
            ),
            Operation::Mul => (
                format!("{pronoun} makes it {operand} times as many."),
                '*',
                value * operand,
            ),
            Operation::Div => (
                format!("{pronoun} splits them into {operand} equal groups and keeps one group."),
                '/',
                value / operand,
            ),
        };
        question.push(' ');
        question.push_str(&sentence);
        answer.push_str(&format!("{value} {symbol} {operand} = {result}\n"));
        value = result;
    }
    question.push_str(&format!(" How many {item} does {name} have now?"));
    answer.push_str(&format!("#### {value}"));
    SynthProblem {
        id,
        question,
        answer,
    }
}

/// Draws an operation and operand that keep the value in `1..=max_value`; `None` when no
/// enabled operation can (only possible when add or sub is disabled).
fn next_step(
    config: &SynthConfig,
    value: u64,
    rng: &mut impl rand::Rng,
) -> Option<(Operation, u64)> {
    let [low, high] = config.operand;
    let mut options: Vec<(Operation, Vec<u64>)> = Vec::new();
    for &operation in &config.operations {
        let operands: Vec<u64> = (low..=high)
            .filter(|&b| match operation {
                Operation::Add => value + b <= config.max_value,
                Operation::Sub => b < value,
                Operation::Mul => value * b <= config.max_value,
                Operation::Div => value.is_multiple_of(b) && value / b >= 1,
            })
            .collect();
        if !operands.is_empty() {
            options.push((operation, operands));
        }
    }
    if options.is_empty() {
        return None;
    }
    let (operation, operands) = &options[rng.random_range(0..options.len())];
    Some((*operation, operands[rng.random_range(0..operands.len())]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::low_edit::final_answer;

    fn config() -> SynthConfig {
        serde_json::from_value(serde_json::json!({"count": 200, "seed": 7})).unwrap()
    }

    /// Recomputes every answer line with plain integer arithmetic.
    #[test]
    fn answers_are_correct_and_chain_from_the_question() {
        let config = config();
        for index in 0..config.count as u64 {
            let problem = generate(&config, index);
            let lines: Vec<&str> = problem.answer.lines().collect();
            let steps = lines.len() - 1;
            assert!((2..=4).contains(&steps), "{}", problem.answer);
            let start: u64 = problem.question.split(' ').nth(2).unwrap().parse().unwrap();
            let mut value = start;
            for line in &lines[..steps] {
                let parts: Vec<&str> = line.split(' ').collect();
                let (a, op, b, c): (u64, &str, u64, u64) = (
                    parts[0].parse().unwrap(),
                    parts[1],
                    parts[2].parse().unwrap(),
                    parts[4].parse().unwrap(),
                );
                assert_eq!(a, value, "{}", problem.answer);
                let expected = match op {
                    "+" => a + b,
                    "-" => a - b,
                    "*" => a * b,
                    "/" => {
                        assert_eq!(a % b, 0);
                        a / b
                    }
                    other => panic!("operator {other}"),
                };
                assert_eq!(c, expected);
                assert!((1..=200).contains(&c));
                value = c;
            }
            assert_eq!(
                final_answer(&problem.answer),
                Some(value.to_string().as_str())
            );
            for word in problem
                .question
                .split([' ', '.', '?'])
                .filter(|w| !w.is_empty())
            {
                assert!(
                    VOCABULARY.contains(&word) || word.parse::<u64>().is_ok(),
                    "{word}"
                );
            }
        }
    }

    #[test]
    fn the_series_is_reproducible_and_the_seed_matters() {
        let config = config();
        assert_eq!(generate(&config, 5), generate(&config, 5));
        let other = SynthConfig {
            seed: 8,
            ..config.clone()
        };
        let differing = (0..50)
            .filter(|&index| generate(&config, index).question != generate(&other, index).question)
            .count();
        assert!(differing > 40, "{differing}");
    }

    #[test]
    fn bad_ranges_are_refused() {
        let mut bad = config();
        bad.steps = [3, 2];
        assert_eq!(bad.check().unwrap_err().path_string(), "steps");
        let mut bad = config();
        bad.operations = vec![Operation::Mul];
        assert_eq!(bad.check().unwrap_err().path_string(), "operations");
    }
}
