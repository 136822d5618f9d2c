//! The decompression floor of an object, for the floor benchmark (`examples/floor.rs`): the
//! page bytes any reader of the rule must decompress at least, and the time decompressing
//! exactly those takes; beside it, what this reader decompresses.
//!
//! The floor is every page of `OperationName` (each row's name must be seen to find the
//! candidates), the pages of `Category` holding a row with a rule's name, and, of every other
//! column the rule reads (`TenantId`, `TimeGenerated`, `Id`, `Result`, `TargetResources`,
//! `AADTenantId`; `InitiatedBy` of the invites), the pages holding a candidate: a zstd or snappy
//! page up to its last candidate's value (zstd by whole blocks of up to 128 KB), a page of
//! another codec whole, a dictionary page up to the last entry a candidate uses.
//! Intended reading, no `--since` and no tenant cut: what a full hunt reads.

use std::ops::Range;
use std::time::{Duration, Instant};

use bytes::Bytes;
use polars_parquet::parquet::metadata::{FileMetadata, RowGroupMetadata};
use polars_parquet::parquet::schema::types::PhysicalType;

use super::column::{read, Want};
use super::page::Width;
use super::Scan;
use crate::error::Result;
use crate::rule::columns::input;

/// Pages decompressed, the bytes they gave, and the time it took (decompression calls only).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Meter {
    pub pages: u64,
    pub bytes: u64,
    pub time: Duration,
}

impl Meter {
    /// `bytes` more decompressed since `started`.
    pub(super) fn add(&mut self, bytes: usize, started: Instant) {
        self.bytes += bytes as u64;
        self.time += started.elapsed();
    }

    /// Both meters' counts together.
    pub fn plus(self, o: Meter) -> Meter {
        Meter {
            pages: self.pages + o.pages,
            bytes: self.bytes + o.bytes,
            time: self.time + o.time,
        }
    }
}

/// An object's floor, and what this reader decompresses of it.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Floor {
    pub rows: u64,
    pub candidates: u64,
    pub floor: Meter,
    pub reader: Meter,
    /// The late reader's whole scan of the object (its decompression included), one thread.
    pub scan: Duration,
}

/// The floor of one object (`meta` its footer, `bytes` a byte range of it) and what the late
/// reader decompresses of it; `Err(Unsupported)` when the late reader does not read it.
pub(crate) fn measure(
    meta: &FileMetadata,
    bytes: impl Fn(Range<u64>) -> Option<Bytes>,
) -> Result<Floor> {
    let scope = super::Scope::default();
    let all = || 0..meta.row_groups.len();
    let started = Instant::now();
    let (raw, reader) = super::scan_metered(meta, all(), &bytes, &scope, Some(false))?;
    let scan = started.elapsed();
    let (_, floor) = super::scan_metered(meta, all(), &bytes, &scope, Some(true))?;
    Ok(Floor {
        rows: raw.rows,
        candidates: raw.candidates.time.len() as u64,
        floor,
        reader,
        scan,
    })
}

/// Takes the meters of the scan's state (zstd's and the others').
pub(super) fn start(cx: &mut super::Cx) {
    cx.dec.meter = Some(Meter::default());
    cx.zstd_meter(Some(Meter::default()));
}

pub(super) fn stop(cx: &mut super::Cx) -> Meter {
    let other = cx.dec.meter.take().unwrap_or_default();
    let zstd = cx.zstd_meter(None).unwrap_or_default();
    other.plus(zstd)
}

impl<F: Fn(Range<u64>) -> Option<Bytes>> Scan<'_, F> {
    /// A row group read as the floor counts it: `OperationName` whole, the rest only where
    /// it matters.
    pub(super) fn floor_row_group(&mut self, rg: &RowGroupMetadata) -> Result<()> {
        let n = rg.num_rows();
        self.rows += n as u64;
        let super::Named { op, hits, .. } = self.named(rg)?;
        if hits.is_empty() {
            return Ok(());
        }
        self.strings(rg, input::TENANT, Want::Rows(&hits))?;
        let (c, b) = self.chunk(rg, input::TIME_GENERATED, PhysicalType::Int64)?;
        read(c, b, n, Width::Eight, Want::Rows(&hits), &mut self.cx)?;
        self.wide_columns(rg, &hits, &op)
    }
}
