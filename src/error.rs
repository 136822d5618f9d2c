//! The crate's one error type. Messages name the object and column in backticks so a hunter
//! can go straight to the bad file; upstream errors are kept as sources (printed as a chain by
//! [`Error::report`]), and [`Error::exit_code`] maps each cause to the documented exit status.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An upstream error kept as the source of ours.
type Source = Box<dyn std::error::Error + Send + Sync>;

/// The documented exit statuses (`--help`, README), one per cause.
pub mod exit {
    /// The run completed, with or without findings.
    pub const OK: u8 = 0;
    /// `--fail-on-findings` and at least one finding.
    pub const FINDINGS: u8 = 1;
    /// A flag, value, config or rule file is wrong: rerunning cannot help.
    pub const USAGE: u8 = 2;
    /// The archive, or one of its objects, cannot be read.
    pub const UNREADABLE: u8 = 3;
    /// A report could not be written.
    pub const WRITE: u8 = 4;
    /// A bug, the machine ran out of a resource (threads, memory), or a store did not answer
    /// (timeouts, connection failures, throttling, 5xx after retries): rerunning may help.
    pub const INTERNAL: u8 = 5;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or value the user gave is wrong (exit 2).
    #[error("{0}")]
    Usage(String),

    /// A value or a file the user gave is not usable, as a library found (exit 2).
    #[error("{message}")]
    Invalid {
        message: String,
        #[source]
        source: Source,
    },

    /// A file the user named (config, rule, watchlist) cannot be read (exit 2).
    #[error("cannot read {what} `{}`", path.display())]
    Input {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The archive root itself cannot be listed, or its store cannot be built (exit 3).
    #[error("cannot read archive `{location}`{}", colon(reason))]
    ArchiveUnreadable {
        location: String,
        reason: Option<String>,
        #[source]
        source: Option<Source>,
    },

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
    #[error("cannot read `{object}`{}", colon(reason))]
    ObjectUnreadable {
        object: String,
        reason: Option<String>,
        #[source]
        source: Option<Source>,
    },

    /// An object is not readable Parquet (corrupt, truncated) (exit 3).
    #[error("`{object}`: not a readable Parquet file{}", colon(reason))]
    CorruptObject {
        object: String,
        reason: Option<String>,
        #[source]
        source: Option<Source>,
    },

    /// The late reader does not read this object's layout; polars' reader takes it instead,
    /// unless `--reader late` asked for the late reader only (exit 3).
    #[error("late reader: {0}")]
    Unsupported(String),

    /// Writing a report failed; nothing half-written is left in place (exit 4).
    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: Source,
    },

    /// The store the job keeps its own state in (the extraction cache) failed a request: exit
    /// 5 when it did not answer (rerunning may help), else 2 (a missing container, refused
    /// credentials: set-up).
    #[error("{what} `{location}` failed")]
    Storage {
        what: &'static str,
        location: String,
        #[source]
        source: object_store::Error,
    },

    /// The I/O runtime could not start (exit 5).
    #[error("cannot start the I/O runtime")]
    Runtime(#[source] std::io::Error),

    /// A polars operation on already-validated data failed: a bug or a resource limit (exit 5).
    #[error("internal dataframe error")]
    Polars(#[from] polars::prelude::PolarsError),

    /// An invariant of the job's own does not hold: a bug (exit 5).
    #[error("internal error: {0}")]
    Internal(String),
}

fn colon(reason: &Option<String>) -> String {
    reason
        .as_ref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default()
}

impl Error {
    /// Exit status documented in `--help` and the README, by cause.
    pub fn exit_code(&self) -> u8 {
        // Refused credentials are configuration, wherever they surface: rerunning cannot help.
        if self.refused_credentials() {
            return exit::USAGE;
        }
        // A store that did not answer (after object_store's own retries): another attempt may
        // succeed, so it must not read as a bad object.
        if self.store_unavailable() {
            return exit::INTERNAL;
        }
        match self {
            // The cache's store answered, but no (a missing container, a bad path): set-up.
            Error::Usage(_)
            | Error::Invalid { .. }
            | Error::Input { .. }
            | Error::Storage { .. } => exit::USAGE,
            Error::ArchiveUnreadable { .. }
            | Error::MissingColumn { .. }
            | Error::WrongType { .. }
            | Error::ObjectUnreadable { .. }
            | Error::CorruptObject { .. }
            | Error::Unsupported(_) => exit::UNREADABLE,
            Error::Write { .. } => exit::WRITE,
            Error::Runtime(_) | Error::Polars(_) | Error::Internal(_) => exit::INTERNAL,
        }
    }

    /// A request to a store failed for want of an answer: a transport error, a timeout, 408,
    /// 429 or 5xx. object_store's retry error is the one whose message starts so.
    fn store_unavailable(&self) -> bool {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = next {
            let text = e.to_string();
            if text.starts_with("Error performing ") {
                let status = text
                    .split("status code: ")
                    .nth(1)
                    .and_then(|r| r.get(..3))
                    .and_then(|c| c.parse::<u16>().ok());
                return status.is_none_or(|c| c >= 500 || c == 408 || c == 429);
            }
            next = e.source();
        }
        false
    }

    /// A store answered 401 or 403 somewhere in the chain.
    fn refused_credentials(&self) -> bool {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = next {
            if let Some(
                object_store::Error::Unauthenticated { .. }
                | object_store::Error::PermissionDenied { .. },
            ) = e.downcast_ref::<object_store::Error>()
            {
                return true;
            }
            // Some requests (Azure listings) keep the status only in their message.
            let text = e.to_string();
            if ["status code: 401", "status code: 403"]
                .iter()
                .any(|s| text.contains(s))
            {
                return true;
            }
            next = e.source();
        }
        false
    }

    /// The message and its chain of sources on one line (the binary masks secrets in it).
    pub fn report(&self) -> String {
        self.chain()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The message followed by its sources; a source whose text the message already holds is
    /// not repeated.
    pub fn chain(&self) -> String {
        let mut msg = self.to_string();
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            let text = e.to_string();
            if !msg.contains(&text) {
                msg.push_str(": ");
                msg.push_str(&text);
            }
            next = e.source();
        }
        msg
    }

    pub(crate) fn invalid(message: impl Into<String>, source: impl Into<Source>) -> Self {
        Error::Invalid {
            message: message.into(),
            source: source.into(),
        }
    }

    pub(crate) fn write(path: impl Into<PathBuf>, source: impl Into<Source>) -> Self {
        Error::Write {
            path: path.into(),
            source: source.into(),
        }
    }

    /// An object whose bytes do not make readable Parquet, with why in words.
    pub(crate) fn corrupt(object: &str, reason: impl Into<String>) -> Self {
        Error::CorruptObject {
            object: object.to_string(),
            reason: Some(reason.into()),
            source: None,
        }
    }

    /// An object whose bytes do not make readable Parquet, as a library found.
    pub(crate) fn corrupt_by(object: &str, source: impl Into<Source>) -> Self {
        Error::CorruptObject {
            object: object.to_string(),
            reason: None,
            source: Some(source.into()),
        }
    }

    /// The same, with what was being read.
    pub(crate) fn corrupt_in(object: &str, what: &str, source: impl Into<Source>) -> Self {
        Error::CorruptObject {
            object: object.to_string(),
            reason: Some(what.to_string()),
            source: Some(source.into()),
        }
    }

    /// An object the store would not give, with the store's error.
    pub(crate) fn unreadable_by(object: &str, source: object_store::Error) -> Self {
        Error::ObjectUnreadable {
            object: object.to_string(),
            reason: None,
            source: Some(Box::new(source)),
        }
    }

    /// An archive root that cannot be listed or reached.
    pub(crate) fn archive(location: &str, reason: Option<String>, source: Option<Source>) -> Self {
        Error::ArchiveUnreadable {
            location: location.to_string(),
            reason,
            source,
        }
    }

    /// The object's own fault (not the store's): what `--skip-bad-files` may skip.
    pub(crate) fn is_bad_object(&self) -> bool {
        matches!(
            self,
            Error::CorruptObject { .. } | Error::MissingColumn { .. } | Error::WrongType { .. }
        )
    }
}
