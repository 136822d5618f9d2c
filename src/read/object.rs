//! One fetched object → its candidate events (or rows), with the reader `--reader` chose: the
//! late reader where the layout allows, polars' reader for the rest.

use std::time::{Duration, Instant};

use super::cache::Entry;
use super::claims;
use super::late;
use super::raw::Raw;
use super::scope::Scope;
use super::whole;
use crate::archive::Fetched;
use crate::error::{Error, Result};

/// How an object's rows are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Reader {
    #[default]
    /// The late-materialized reader where the layout allows, polars otherwise.
    Auto,
    /// polars' Parquet reader: every needed column decoded whole.
    Polars,
    /// The late-materialized reader only; an object it cannot read is an error (for tests).
    Late,
}

/// What scanning one object gives.
pub(crate) enum Scan {
    /// Its events (polars' reader, or the cache).
    Events(Entry),
    /// Its candidate rows, raw (the late reader): they become events in one pass over all the
    /// late-read objects (`events::extract_raws`).
    Raw(Box<Raw>),
}

impl Scan {
    /// Rows, latest time and rows per tenant of the object.
    pub(crate) fn stats(&self) -> (u64, Option<i64>, &[(String, u64)]) {
        match self {
            Scan::Events(e) => (e.rows, e.max_time, &e.tenant_rows),
            Scan::Raw(r) => (r.rows, r.max_time, &r.tenant_rows),
        }
    }
}

/// Scans one fetched object into its candidate events (or rows) and row statistics, cut to
/// `scope`; also returns how long that took.
pub(crate) fn scan_object(
    key: &str,
    f: Fetched,
    scope: &Scope,
    reader: Reader,
) -> Result<(Scan, Duration)> {
    let started = Instant::now();
    claims::check(key, &f.meta, f.groups.clone(), &f, scope.read_columns())?;
    let mut declined = None;
    if reader != Reader::Polars {
        match late::scan(&f.meta, f.groups.clone(), |r| f.range(r), scope) {
            Ok(raw) => return Ok((Scan::Raw(Box::new(raw)), started.elapsed())),
            Err(e) if reader == Reader::Late => return Err(Error::corrupt(key, e.to_string())),
            // Declined: polars' reader takes the object.
            Err(e) => declined = Some(e.to_string()),
        }
    }
    // When polars fails too, what the late reader saw often names the column.
    let entry = whole::scan(key, f, scope).map_err(|e| match (e, declined) {
        (
            Error::CorruptObject {
                object,
                reason,
                source,
            },
            Some(late),
        ) => Error::CorruptObject {
            object,
            reason: Some(match reason {
                Some(r) => format!("{r} ({late})"),
                None => format!("({late})"),
            }),
            source,
        },
        (e, _) => e,
    })?;
    Ok((Scan::Events(entry), started.elapsed()))
}
