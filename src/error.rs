//! The crate's one error type. Messages name the object and column in backticks so a hunter
//! can go straight to the bad file; `exit_code` maps each kind to the documented exit status.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or value the user gave is wrong (exit 2).
    #[error("{0}")]
    Usage(String),

    /// The archive root itself cannot be listed (exit 3).
    #[error("cannot read archive `{location}`: {reason}")]
    ArchiveUnreadable { location: String, reason: String },

    /// A needed column is absent from one object (exit 3).
    #[error("`{object}`: missing column `{column}` (needed columns: {needed})")]
    MissingColumn {
        object: String,
        column: String,
        needed: String,
    },

    /// A needed column has a type the job cannot read (exit 3).
    #[error("`{object}`: column `{column}` has type {found}, expected {expected}")]
    WrongType {
        object: String,
        column: String,
        found: String,
        expected: String,
    },

    /// An object could not be fetched from its store (exit 3).
    #[error("cannot read `{object}`: {reason}")]
    ObjectUnreadable { object: String, reason: String },

    /// An object is not readable Parquet (corrupt, truncated) (exit 3).
    #[error("`{object}`: not a readable Parquet file: {reason}")]
    CorruptObject { object: String, reason: String },

    /// Writing a report failed; nothing half-written is left in place.
    #[error("cannot write `{}`: {reason}", path.display())]
    Write { path: PathBuf, reason: String },

    /// A polars operation on already-validated data failed; this is a bug or resource limit.
    #[error("internal dataframe error: {0}")]
    Polars(#[from] polars::prelude::PolarsError),
}

impl Error {
    /// Exit status documented in `--help` and the README.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::ArchiveUnreadable { .. }
            | Error::MissingColumn { .. }
            | Error::WrongType { .. }
            | Error::ObjectUnreadable { .. }
            | Error::CorruptObject { .. } => 3,
            Error::Write { .. } | Error::Polars(_) => 4,
        }
    }

    pub(crate) fn write(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        Error::Write {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
