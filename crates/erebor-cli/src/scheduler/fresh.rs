//! Which steps a schedule's runs must run fresh (not reuse from the cache).

/// The steps a schedule runs fresh: `["*"]` is every step.
pub(crate) const FRESH_ALL: &str = "*";
