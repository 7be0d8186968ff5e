//! The error type of the controls module.

/// What went wrong with a control.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// A field was empty, too long or held a forbidden character.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A global halt's lift was asked for and then confirmed by the same person.
    #[error("a global halt is lifted by a second person, not the one who asked to lift it")]
    SamePerson,
    /// A stored value was out of range (corrupt or written by something else).
    #[error("corrupt stored control: {0}")]
    Corrupt(String),
    /// The store failed; its error is the source.
    #[error("control store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl ControlError {
    /// A [`Store`](Self::Store) error from a store's own failure.
    pub fn store(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self::Store(source.into())
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::Error> for ControlError {
    fn from(e: sqlx::Error) -> Self {
        Self::store(e)
    }
}

/// The result type of the controls module.
pub type Result<T, E = ControlError> = std::result::Result<T, E>;
