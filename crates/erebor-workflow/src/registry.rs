//! The set of step kinds a binary knows, looked up by the name used in `uses:`.

use erebor_core::StepKind;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Step kinds by name. The CLI builds one in `kinds.rs`; validation checks `uses:` against it
/// and the engine runs steps through it.
#[derive(Clone, Default)]
pub struct KindRegistry {
    kinds: BTreeMap<&'static str, Arc<dyn StepKind>>,
}

impl KindRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a kind, replacing one of the same name.
    pub fn register(&mut self, kind: impl StepKind + 'static) -> &mut Self {
        self.register_arc(Arc::new(kind))
    }

    /// Adds a boxed kind, replacing one of the same name.
    pub fn register_boxed(&mut self, kind: Box<dyn StepKind>) -> &mut Self {
        self.register_arc(Arc::from(kind))
    }

    fn register_arc(&mut self, kind: Arc<dyn StepKind>) -> &mut Self {
        self.kinds.insert(kind.info().name, kind);
        self
    }

    /// Builder form of [`KindRegistry::register`].
    #[must_use]
    pub fn with(mut self, kind: impl StepKind + 'static) -> Self {
        self.register(kind);
        self
    }

    /// The kind called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn StepKind>> {
        self.kinds.get(name)
    }

    /// Every kind name, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }

    /// Every kind, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn StepKind>> {
        self.kinds.values()
    }
}

impl std::fmt::Debug for KindRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds.keys()).finish()
    }
}
