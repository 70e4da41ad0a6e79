//! The one secrets redactor: values registered here are masked as `***` in every text passed
//! through [`redact`] — log lines (the CLI's stderr writer), a step's failure messages and text
//! outputs before they reach the result file and the store, a command step's echoed arguments
//! and output. The registry is process-wide and only grows: a runner registers its workflow's
//! secret params, a step process the secrets it was handed.
//!
//! [`redact_url`] masks the password of a database or endpoint URL for messages.

use std::borrow::Cow;
use std::sync::{PoisonError, RwLock};

/// The registered values, longest first (so a secret that contains another is masked whole).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Masks these values in every later [`redact`] call. Empty values are ignored.
pub fn register(values: impl IntoIterator<Item = String>) {
    let mut secrets = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
    for value in values {
        if !value.is_empty() && !secrets.contains(&value) {
            secrets.push(value);
        }
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every registered secret replaced by `***` (borrowed when none occurs).
pub fn redact(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
    if !secrets.iter().any(|secret| text.contains(secret.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    for secret in secrets.iter() {
        out = out.replace(secret.as_str(), "***");
    }
    Cow::Owned(out)
}

/// A URL with the password of its user info masked (`postgres://u:***@host/db`); other URLs
/// unchanged.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_masked_longest_first() {
        register(["s3cr3t-core-test".to_owned(), String::new()]);
        register(["s3cr3t-core-test-longer".to_owned()]);
        assert_eq!(
            redact("a s3cr3t-core-test-longer and s3cr3t-core-test"),
            "a *** and ***"
        );
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact_url("postgres://me:pw@db:5432/x"),
            "postgres://me:***@db:5432/x"
        );
        assert_eq!(redact_url("sqlite://runs.db"), "sqlite://runs.db");
        assert_eq!(redact_url("postgres://me@db/x"), "postgres://me@db/x");
    }
}
