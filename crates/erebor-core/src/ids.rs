//! Identifiers of runs, steps and attempts.
//!
//! All three are strings on disk and in the database; the newtypes keep them from being mixed up.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an existing identifier.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }
    };
}

string_id!(
    /// One execution of a workflow file, e.g. `r-20261127-033012-7f3a`.
    RunId
);
string_id!(
    /// A step of an expanded workflow, e.g. `train` or a matrix arm `train[dpop]`.
    StepId
);
string_id!(
    /// One try of one step; a retry or a resume makes a new attempt.
    AttemptId
);

impl StepId {
    /// Directory-safe form of the id (`train[dpop]` becomes `train-dpop`), used for work folders.
    pub fn file_name(&self) -> String {
        self.0
            .chars()
            .filter(|c| *c != ']')
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_step_ids_become_safe_file_names() {
        assert_eq!(StepId::from("train[dpop]").file_name(), "train-dpop");
        assert_eq!(StepId::from("eval[dpo,1]").file_name(), "eval-dpo-1");
        assert_eq!(StepId::from("convert").file_name(), "convert");
    }
}
