//! Late-materialized scan of one object in the common flat layout (every needed column a flat
//! string or timestamp leaf). The narrow columns (`OperationName`, `TenantId`, `TimeGenerated`)
//! are decoded whole, their predicates evaluated once per dictionary entry, and `Category` at
//! the rows whose name the rule accepts; the
//! others (`TargetResources`, `InitiatedBy`, `Id`, `Result`, `AADTenantId`) only where a candidate lies:
//! a page without one is never decompressed, a PLAIN zstd or snappy page is decompressed only up
//! to its last candidate's value, and a dictionary only up to the last entry the candidates use.
//! Decompression is most of a scan's CPU, and guest events are rare.
//!
//! Anything this reader does not handle (nested dynamic columns, v2 pages, other encodings,
//! INT96 times, invalid UTF-8, a malformed page) makes it decline with
//! [`Error::Unsupported`], and the caller scans the object with polars instead, which also
//! reports real faults.

// Indexing below is on the reader's own structures, never on a value read from the file
// unchecked: keys are assigned by `Values::push` or checked against the dictionary's size
// (`dictionary_keys`), levels and indices are decoded to exactly the page's count (`hybrid`),
// and row indices stay below the row group's rows, which every chunk is checked to hold
// (`Chunk::finish`). Byte ranges of a page go through `Body::ensure` or `get` first.
#![allow(clippy::indexing_slicing)]

mod column;
mod floor;
mod page;
mod snappy;
mod zstd;

pub(crate) use floor::measure as decompression_floor;
pub use floor::{Floor, Meter};

use std::collections::BTreeMap;
use std::ops::Range;

use bytes::Bytes;
use polars::prelude::*;
use polars_parquet::parquet::metadata::{ColumnChunkMetadata, FileMetadata, RowGroupMetadata};
use polars_parquet::parquet::schema::types::PhysicalType;

use self::column::{read, Cx, Values, Want, NULL};
use self::page::Width;
use super::raw::{Gathered, Raw};
use super::scope::Scope;
use crate::archive::nanos_per_unit;
use crate::error::{Error, Result};
use crate::rule::columns::input;
use crate::rule::{INVITE_OP, RESET_INVITE_OP, UPDATE_USER_OP, USER_STATE};

/// The late reader declines: `why` goes to `--reader late`'s error.
fn no<T>(why: impl Into<String>) -> Result<T> {
    Err(Error::Unsupported(why.into()))
}

/// The string columns: every needed column but `TimeGenerated`.
const STRINGS: [&str; 7] = [
    input::TENANT,
    input::ID,
    input::CATEGORY,
    input::OPERATION_NAME,
    input::RESULT,
    input::TARGET_RESOURCES,
    input::INITIATED_BY,
];

/// The scan of a whole object, row group by row group.
struct Scan<'a, F> {
    bytes: &'a F,
    scope: &'a Scope,
    /// ns per stored unit of `TimeGenerated`.
    scale: i64,
    category: &'static regex::Regex,
    operation: &'static regex::Regex,
    cx: Cx,
    out: Gathered,
    tenant_rows: BTreeMap<String, u64>,
    rows: u64,
    max_time: Option<i64>,
    /// The optional columns the object has.
    optional: Optional,
    /// `TargetResources` of this row group's candidates, when already read (to cut updates).
    targets: Option<Vec<Option<String>>>,
}

/// Which optional columns an object has (each then a string column).
#[derive(Debug, Clone, Copy)]
struct Optional {
    aad_tenant: bool,
    details: bool,
}

/// The late scan of row groups `groups`; `bytes` gives a column chunk's fetched bytes. Rows
/// outside `scope` need not be candidates: the caller applies the full predicate to what comes
/// back.
pub(crate) fn scan(
    meta: &FileMetadata,
    groups: Range<usize>,
    bytes: impl Fn(Range<u64>) -> Option<Bytes>,
    scope: &Scope,
) -> Result<Raw> {
    Ok(scan_metered(meta, groups, &bytes, scope, None)?.0)
}

/// [`scan`], with what it decompressed when `meter` says so: `Some(false)` as the scan reads,
/// `Some(true)` as the floor counts (`floor`).
fn scan_metered(
    meta: &FileMetadata,
    groups: Range<usize>,
    bytes: &impl Fn(Range<u64>) -> Option<Bytes>,
    scope: &Scope,
    meter: Option<bool>,
) -> Result<(Raw, Meter)> {
    let patterns = scope.patterns()?;
    let (scale, optional) = inferred_scale(meta, scope.lifecycle)?;
    let mut s = Scan {
        bytes,
        scope,
        scale,
        optional,
        targets: None,
        category: &patterns.category,
        operation: &patterns.operation,
        cx: Cx::take()?,
        out: Gathered::default(),
        tenant_rows: BTreeMap::new(),
        rows: 0,
        max_time: None,
    };
    let Some(row_groups) = meta.row_groups.get(groups) else {
        return no("row groups beyond the footer");
    };
    if meter.is_some() {
        floor::start(&mut s.cx);
    }
    for rg in row_groups {
        match meter {
            Some(true) => s.floor_row_group(rg)?,
            _ => s.row_group(rg)?,
        }
    }
    let metered = floor::stop(&mut s.cx);
    let Scan {
        cx,
        out,
        rows,
        max_time,
        tenant_rows,
        ..
    } = s;
    cx.put_back();
    let raw = Raw {
        candidates: out,
        rows,
        max_time,
        tenant_rows: tenant_rows.into_iter().collect(),
        quality: None,
    };
    Ok((raw, metered))
}

/// ns per unit of `TimeGenerated` as polars would read it, after checking that every needed
/// column has the type polars would give it, so that the events come out the same; and
/// which optional columns the object has (string columns too, else the late reader cannot read
/// it); `AdditionalDetails` only matters when the run reads the life cycle (`lifecycle`).
fn inferred_scale(meta: &FileMetadata, lifecycle: bool) -> Result<(i64, Optional)> {
    let arrow =
        polars_parquet::arrow::read::infer_schema(meta).or_else(|e| no(format!("schema: {e}")))?;
    let schema = Schema::from_arrow_schema(&arrow);
    for name in STRINGS {
        if schema.get(name) != Some(&DataType::String) {
            return no(format!("`{name}` is not a string column"));
        }
    }
    let has = |name: &str| match schema.get(name) {
        None => Ok(false),
        Some(DataType::String) => Ok(true),
        Some(_) => no(format!("`{name}` is not a string column")),
    };
    let optional = Optional {
        aad_tenant: has(input::AAD_TENANT)?,
        details: lifecycle && has(input::ADDITIONAL_DETAILS)?,
    };
    let Some(DataType::Datetime(unit, _)) = schema.get(input::TIME_GENERATED) else {
        return no("`TimeGenerated` is not a timestamp");
    };
    // polars converts stored values to the unit it infers (from an embedded Arrow schema, when
    // there is one); only the case where that is the stored unit is read here.
    let scale = match unit {
        TimeUnit::Milliseconds => 1_000_000,
        TimeUnit::Microseconds => 1_000,
        TimeUnit::Nanoseconds => 1,
    };
    Ok((scale, optional))
}

impl<F: Fn(Range<u64>) -> Option<Bytes>> Scan<'_, F> {
    /// The flat chunk of `name` in `rg`, and its fetched bytes.
    fn chunk<'m>(
        &self,
        rg: &'m RowGroupMetadata,
        name: &str,
        physical: PhysicalType,
    ) -> Result<(&'m ColumnChunkMetadata, Bytes)> {
        let mut it = rg.columns_under_root_iter(name).into_iter().flatten();
        let c = match (it.next(), it.next()) {
            (Some(c), None) => c,
            _ => return no(format!("`{name}` is not one flat column")),
        };
        let d = &c.descriptor().descriptor;
        if c.descriptor().path_in_schema.len() != 1
            || d.max_rep_level != 0
            || d.max_def_level > 1
            || d.primitive_type.physical_type != physical
        {
            return no(format!("`{name}` is not a flat {physical:?} column"));
        }
        let start = c.dictionary_page_offset().unwrap_or(c.data_page_offset());
        let range = u64::try_from(start)
            .ok()
            .zip(u64::try_from(c.compressed_size()).ok())
            .and_then(|(s, l)| Some(s..s.checked_add(l)?));
        let Some(range) = range else {
            return no(format!("`{name}`: bad chunk offsets"));
        };
        match (self.bytes)(range) {
            Some(b) => Ok((c, b)),
            None => no(format!("`{name}`: chunk not fetched")),
        }
    }

    /// A string column of `rg`: every row, or the wanted ones.
    fn strings(&mut self, rg: &RowGroupMetadata, name: &str, want: Want) -> Result<Values> {
        let (c, b) = self.chunk(rg, name, PhysicalType::ByteArray)?;
        read(c, b, rg.num_rows(), Width::Bytes, want, &mut self.cx)
    }

    /// The rows whose `OperationName` and `Category` the rule accepts. `Category` is read only
    /// at the rows whose name it accepts: most rows' categories are never decoded.
    fn named(&mut self, rg: &RowGroupMetadata) -> Result<Named> {
        let op = self.strings(rg, input::OPERATION_NAME, Want::All)?;
        let op_ok = matches(&op, self.operation)?;
        let named: Vec<usize> = (0..rg.num_rows())
            .filter(|&i| op.key_ok(i, &op_ok))
            .collect();
        let cat = self.strings(rg, input::CATEGORY, Want::Rows(&named))?;
        let cat_ok = matches(&cat, self.category)?;
        let hits = named
            .iter()
            .enumerate()
            .filter(|&(j, _)| cat.key_ok(j, &cat_ok))
            .map(|(_, &i)| i)
            .collect();
        Ok(Named {
            op,
            named,
            cat,
            hits,
        })
    }

    fn row_group(&mut self, rg: &RowGroupMetadata) -> Result<()> {
        let n = rg.num_rows();
        let Named {
            op,
            named,
            cat,
            mut hits,
        } = self.named(rg)?;
        let tenant = self.strings(rg, input::TENANT, Want::All)?;
        self.cut_tenants(&tenant, &mut hits);
        self.count_tenants(&tenant)?;
        let time = self.times(rg)?;
        self.rows += n as u64;
        if self.scope.since.is_some() {
            let mut kept = Vec::with_capacity(hits.len());
            for &i in &hits {
                if self.scope.keeps_time(self.at(&time, i)?) {
                    kept.push(i);
                }
            }
            hits = kept;
        }
        self.targets = None;
        if self.scope.lifecycle {
            self.cut_updates(rg, &op, &mut hits)?;
        }
        if hits.is_empty() {
            return Ok(());
        }
        for &i in &hits {
            self.out.time.push(self.at(&time, i)?);
            self.out
                .tenant
                .push(opt_string(tenant.get(i), input::TENANT)?);
            let at = named.binary_search(&i).ok();
            let category = at.and_then(|j| cat.get(j));
            self.out
                .category
                .push(opt_string(category, input::CATEGORY)?);
            self.out
                .operation
                .push(opt_string(op.get(i), input::OPERATION_NAME)?);
        }
        self.wide_columns(rg, &hits, &op)
    }

    /// Drops the "Update user" candidates whose `TargetResources` do not mention `UserState`:
    /// only an update of it can accept an invitation, and real tenants update users all day.
    /// The candidates' `TargetResources` are read here once, for [`Self::wide_columns`] too.
    fn cut_updates(
        &mut self,
        rg: &RowGroupMetadata,
        op: &Values,
        hits: &mut Vec<usize>,
    ) -> Result<()> {
        let update: Vec<bool> = (0..op.entries())
            .map(|k| {
                utf8(op.entry(k), input::OPERATION_NAME)
                    .map(|s| s.eq_ignore_ascii_case(UPDATE_USER_OP))
            })
            .collect::<Result<_>>()?;
        if !hits.iter().any(|&i| op.key_ok(i, &update)) {
            return Ok(());
        }
        let v = self.strings(rg, input::TARGET_RESOURCES, Want::Rows(hits))?;
        let finder = memchr::memmem::Finder::new(USER_STATE.as_bytes());
        let (mut kept, mut targets) = (Vec::new(), Vec::new());
        for (j, &i) in hits.iter().enumerate() {
            let t = v.get(j);
            if op.key_ok(i, &update) && t.is_none_or(|b| finder.find(b).is_none()) {
                continue;
            }
            kept.push(i);
            targets.push(opt_string(t, input::TARGET_RESOURCES)?);
        }
        *hits = kept;
        self.targets = Some(targets);
        Ok(())
    }

    /// Drops candidates of tenants out of scope (decided once per dictionary entry).
    fn cut_tenants(&self, tenant: &Values, hits: &mut Vec<usize>) {
        if !self.scope.cuts_tenants() {
            return;
        }
        let keep: Vec<bool> = (0..tenant.entries())
            .map(|k| self.scope.keeps_tenant(Some(tenant.entry(k))))
            .collect();
        let null_kept = self.scope.keeps_tenant(None);
        hits.retain(|&i| match tenant.keys[i] {
            NULL => null_kept,
            k => keep[k as usize],
        });
    }

    /// Adds this row group's rows per tenant (a null tenant counts as `""`).
    fn count_tenants(&mut self, tenant: &Values) -> Result<()> {
        let mut counts = vec![0u64; tenant.entries() + 1];
        for &k in &tenant.keys {
            counts[if k == NULL {
                tenant.entries()
            } else {
                k as usize
            }] += 1;
        }
        for (k, &c) in counts.iter().enumerate().filter(|(_, &c)| c > 0) {
            let name = if k == tenant.entries() {
                ""
            } else {
                utf8(tenant.entry(k), input::TENANT)?
            };
            *self.tenant_rows.entry(name.to_string()).or_default() += c;
        }
        Ok(())
    }

    /// `TimeGenerated` of every row, and the latest time of the row group (its stored maximum,
    /// scaled once: scaling keeps the order).
    fn times(&mut self, rg: &RowGroupMetadata) -> Result<Values> {
        let (tc, tb) = self.chunk(rg, input::TIME_GENERATED, PhysicalType::Int64)?;
        let Some(scale) = nanos_per_unit(&tc.descriptor().descriptor.primitive_type) else {
            return no("`TimeGenerated` has no timestamp unit");
        };
        if scale != self.scale {
            return no("`TimeGenerated` stored in another unit than it reads as");
        }
        let time = read(tc, tb, rg.num_rows(), Width::Eight, Want::All, &mut self.cx)?;
        let stored = time
            .keys
            .iter()
            .filter(|&&k| k != NULL)
            .map(|&k| time.int(k as usize));
        let (lo, hi) = stored.fold((i64::MAX, i64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if lo <= hi {
            // A value whose scaling overflows (polars would wrap it around) is left to polars.
            let out_of_range = || Error::Unsupported("time out of range".into());
            lo.checked_mul(scale).ok_or_else(out_of_range)?;
            let latest = hi.checked_mul(scale).ok_or_else(out_of_range)?;
            self.max_time = self.max_time.max(Some(latest));
        }
        Ok(time)
    }

    /// Row `i`'s time in ns.
    fn at(&self, time: &Values, i: usize) -> Result<Option<i64>> {
        match time.keys[i] {
            NULL => Ok(None),
            k => match time.int(k as usize).checked_mul(self.scale) {
                Some(t) => Ok(Some(t)),
                None => no("time out of range"),
            },
        }
    }

    /// `Id`, `Result` and `TargetResources` of the candidates, and `InitiatedBy` of the
    /// invites among them: only an invite's initiator matters (see `events::candidate_events`),
    /// so the pages holding only redeems are never decompressed.
    fn wide_columns(&mut self, rg: &RowGroupMetadata, hits: &[usize], op: &Values) -> Result<()> {
        if self.optional.aad_tenant {
            let v = self.strings(rg, input::AAD_TENANT, Want::Rows(hits))?;
            for j in 0..hits.len() {
                let aad = opt_string(v.get(j), input::AAD_TENANT)?;
                self.out.aad_tenant.push(aad);
            }
        } else {
            self.out.aad_tenant.extend(hits.iter().map(|_| None));
        }
        match self.targets.take() {
            Some(read) => self.out.targets.extend(read),
            None => {
                let v = self.strings(rg, input::TARGET_RESOURCES, Want::Rows(hits))?;
                for j in 0..hits.len() {
                    self.out
                        .targets
                        .push(opt_string(v.get(j), input::TARGET_RESOURCES)?);
                }
            }
        }
        for name in [input::ID, input::RESULT] {
            let v = self.strings(rg, name, Want::Rows(hits))?;
            let dst = match name {
                input::ID => &mut self.out.id,
                _ => &mut self.out.result,
            };
            for j in 0..hits.len() {
                dst.push(opt_string(v.get(j), name)?);
            }
        }
        let invite: Vec<bool> = (0..op.entries())
            .map(|k| {
                utf8(op.entry(k), input::OPERATION_NAME).map(|s| {
                    let s = s.to_lowercase();
                    s == INVITE_OP || s == RESET_INVITE_OP
                })
            })
            .collect::<Result<_>>()?;
        let invites: Vec<usize> = hits
            .iter()
            .copied()
            .filter(|&i| op.key_ok(i, &invite))
            .collect();
        let initiated = self.spread(rg, input::INITIATED_BY, hits, &invites)?;
        self.out.initiated.extend(initiated);
        let details = match self.optional.details {
            true => self.spread(rg, input::ADDITIONAL_DETAILS, hits, &invites)?,
            false => vec![None; hits.len()],
        };
        self.out.details.extend(details);
        Ok(())
    }

    /// `name`'s values at `some` of the rows `hits` (both sorted), null at the other hits.
    fn spread(
        &mut self,
        rg: &RowGroupMetadata,
        name: &str,
        hits: &[usize],
        some: &[usize],
    ) -> Result<Vec<Option<String>>> {
        let v = self.strings(rg, name, Want::Rows(some))?;
        let mut next = 0;
        let mut out = Vec::with_capacity(hits.len());
        for &i in hits {
            if some.get(next) == Some(&i) {
                out.push(opt_string(v.get(next), name)?);
                next += 1;
            } else {
                out.push(None);
            }
        }
        Ok(out)
    }
}

/// A row group's rows with a name the rule reads (`named`, whose `Category` values `cat` holds
/// in that order), and those of them with its category too (`hits`).
struct Named {
    op: Values,
    named: Vec<usize>,
    cat: Values,
    hits: Vec<usize>,
}

/// Whether each entry matches `re` (a string column's predicate, once per entry).
fn matches(v: &Values, re: &regex::Regex) -> Result<Vec<bool>> {
    (0..v.entries())
        .map(|k| utf8(v.entry(k), "filter column").map(|s| re.is_match(s)))
        .collect()
}

fn utf8<'a>(b: &'a [u8], column: &str) -> Result<&'a str> {
    std::str::from_utf8(b).or_else(|_| no(format!("`{column}`: invalid UTF-8")))
}

fn opt_string(b: Option<&[u8]>, column: &str) -> Result<Option<String>> {
    b.map(|b| utf8(b, column).map(str::to_string)).transpose()
}
