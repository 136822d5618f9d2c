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

/// How a store request failed (see [`Error::store_failure`]).
enum StoreFailure {
    /// A transport error or a timeout.
    NoAnswer,
    /// 408, 429 or 5xx after retries.
    Status,
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
        // succeed, so it must not read as a bad object. A store that answered 5xx about one
        // object, every time, is that object's failure (exit 3, skippable).
        match self.store_failure() {
            Some(StoreFailure::NoAnswer) => return exit::INTERNAL,
            Some(StoreFailure::Status) if !self.is_object_error() => return exit::INTERNAL,
            _ => {}
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

    /// How a request to a store failed, when it did: no answer (a transport error, a
    /// timeout) or a status that retrying may cure (408, 429, 5xx). object_store's retry error
    /// is the one whose message starts "Error performing"; a connection dropped while a body
    /// was read surfaces as its bare `HttpError`.
    fn store_failure(&self) -> Option<StoreFailure> {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = next {
            if e.downcast_ref::<object_store::client::HttpError>()
                .is_some()
            {
                return Some(StoreFailure::NoAnswer);
            }
            let text = e.to_string();
            if text.starts_with("Error performing ") {
                let status = text
                    .split("status code: ")
                    .nth(1)
                    .and_then(|r| r.get(..3))
                    .and_then(|c| c.parse::<u16>().ok());
                // Throttling, timeouts and gateways say the store is busy, not that the object
                // is bad: they stop the run like no answer at all. Another 5xx, every time, is
                // about the object.
                return match status {
                    None | Some(408 | 429 | 502 | 503 | 504) => Some(StoreFailure::NoAnswer),
                    Some(c) if c >= 500 => Some(StoreFailure::Status),
                    Some(_) => None,
                };
            }
            next = e.source();
        }
        None
    }

    /// An error about one object (not the archive, the cache or a set-up file).
    fn is_object_error(&self) -> bool {
        matches!(
            self,
            Error::ObjectUnreadable { .. }
                | Error::CorruptObject { .. }
                | Error::MissingColumn { .. }
                | Error::WrongType { .. }
        )
    }

    /// A store answered 401 or 403 (or redirected elsewhere) somewhere in the chain.
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
            // Some requests (Azure listings) keep the status only in their message. A redirect
            // without a location is a wrong region: set-up, too. Only object_store's own retry
            // error is read so: an object key may hold any text.
            let text = e.to_string();
            if text.starts_with("Error performing ")
                && [
                    "status code: 401",
                    "status code: 403",
                    "redirect without LOCATION",
                ]
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
    /// A store that stops answering or refuses credentials is not the object's fault: it must
    /// stop the run, not thin out its evidence. An object it will not give (5xx every time, gone
    /// since the listing, rewritten) is.
    pub(crate) fn is_bad_object(&self) -> bool {
        self.is_object_error()
            && !self.refused_credentials()
            && !matches!(self.store_failure(), Some(StoreFailure::NoAnswer))
    }
}

/// The text of a panic's payload (what `panic!` and `unwrap` put there).
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

thread_local! {
    /// Where this thread last panicked, for the message of the error it becomes.
    static PANICKED_AT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Where the process last panicked (any thread).
static LAST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Replaces the default panic hook (the binary does): a panic is reported once, as an error
/// with the place it happened, by whoever catches it, not as extra lines on stderr.
pub fn report_panics_as_errors() {
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| l.to_string());
        PANICKED_AT.with(|p| p.replace(at.clone()));
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = at;
        }
    }));
}

/// Where the process last panicked, when [`report_panics_as_errors`] recorded it.
pub fn last_panic() -> Option<String> {
    LAST_PANIC.lock().ok().and_then(|l| l.clone())
}

/// Runs `f`, the reading of one object, inside that object's failure boundary: a panic in it
/// (ours or a library's, on bytes no check foresaw) becomes the object's error, so
/// `--skip-bad-files` can skip it and a run without it names it.
pub(crate) fn guarded<T>(object: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(Error::panicked(object, p.as_ref())))
}

impl Error {
    /// An object whose reading panicked: corrupt bytes that reached a decoder's assertion.
    pub(crate) fn panicked(object: &str, payload: &(dyn std::any::Any + Send)) -> Self {
        let at = PANICKED_AT
            .with(|p| p.take())
            .map(|at| format!(" at {at}"))
            .unwrap_or_default();
        Error::CorruptObject {
            object: object.to_string(),
            reason: Some(format!(
                "a decoder failed on its bytes ({}{at})",
                panic_text(payload)
            )),
            source: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::client::{HttpError, HttpErrorKind};

    fn store_error(source: impl std::error::Error + Send + Sync + 'static) -> object_store::Error {
        object_store::Error::Generic {
            store: "MicrosoftAzure",
            source: Box::new(source),
        }
    }

    fn retry_text(tail: &str) -> std::io::Error {
        std::io::Error::other(format!(
            "Error performing GET http://127.0.0.1/logs/a.parquet in 2s, after 5 retries, \
             max_retries: 5, retry_timeout: 60s  - {tail}"
        ))
    }

    #[test]
    fn store_failures_map_to_their_exit_codes() {
        let object = |e| Error::unreadable_by("a.parquet", e);
        let archive = |e: object_store::Error| Error::archive("az://logs", None, Some(e.into()));
        // A connection dropped while a body was read: no answer, whatever was being read.
        let reset = || {
            store_error(HttpError::new(
                HttpErrorKind::Interrupted,
                std::io::Error::from(std::io::ErrorKind::ConnectionReset),
            ))
        };
        assert_eq!(object(reset()).exit_code(), exit::INTERNAL);
        assert!(!object(reset()).is_bad_object());
        // 500 after retries: the object's failure when it is about one object, else the store's.
        let five = || {
            store_error(retry_text(
                "Server returned non-2xx status code: 500 Internal Server Error: ",
            ))
        };
        assert_eq!(object(five()).exit_code(), exit::UNREADABLE);
        assert!(object(five()).is_bad_object());
        assert_eq!(archive(five()).exit_code(), exit::INTERNAL);
        // Throttling on one object stops the run, like no answer.
        let busy = store_error(retry_text(
            "Server returned non-2xx status code: 503 Service Unavailable: ",
        ));
        assert_eq!(object(busy).exit_code(), exit::INTERNAL);
        let slow = store_error(retry_text(
            "Server returned non-2xx status code: 429 Too Many Requests: ",
        ));
        assert!(!object(slow).is_bad_object());
        // A key holding a status text is not a refusal.
        let odd = Error::corrupt("status code: 403.parquet", "no Parquet magic bytes");
        assert_eq!(odd.exit_code(), exit::UNREADABLE);
        // A timeout, with no status at all.
        let timeout = store_error(retry_text("HTTP error: request or response body error"));
        assert_eq!(archive(timeout).exit_code(), exit::INTERNAL);
        // Set-up: refused credentials and a wrong region, wherever they surface.
        let refused = || {
            store_error(retry_text(
                "Server returned non-2xx status code: 403 Forbidden: ",
            ))
        };
        assert_eq!(object(refused()).exit_code(), exit::USAGE);
        assert!(!object(refused()).is_bad_object());
        let redirect = || {
            store_error(retry_text(
                "Received redirect without LOCATION, this normally indicates an incorrectly \
                 configured region",
            ))
        };
        assert_eq!(object(redirect()).exit_code(), exit::USAGE);
        assert_eq!(archive(redirect()).exit_code(), exit::USAGE);
        // A 404 on a listed object: gone since the listing, the object's failure.
        let gone = object_store::Error::NotFound {
            path: "a.parquet".into(),
            source: "gone".into(),
        };
        assert_eq!(object(gone).exit_code(), exit::UNREADABLE);
    }

    #[test]
    fn a_panic_inside_the_boundary_is_the_objects_error() {
        let e = guarded("k.parquet", || -> Result<()> {
            panic!("index out of bounds")
        })
        .err()
        .unwrap();
        assert!(e.is_bad_object());
        assert_eq!(e.exit_code(), exit::UNREADABLE);
        assert!(
            e.to_string().contains("`k.parquet`") && e.to_string().contains("index out of bounds")
        );
    }
}
