//! Reading a small result frame's columns into plain values, and cutting frames per tenant key.

use std::collections::HashMap;

use polars::prelude::*;

use crate::error::Result;
use crate::rule::columns::{out, TENANT_KEY};
use crate::rule::TenantKey;

/// A string column as owned values (null as `""`).
pub(super) fn strings(df: &DataFrame, c: &str) -> Result<Vec<String>> {
    Ok(df
        .column(c)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or("").to_string())
        .collect())
}

/// An integer column (any width) as i64 values.
pub(super) fn ints(df: &DataFrame, c: &str) -> Result<Vec<Option<i64>>> {
    let s = df
        .column(c)?
        .as_materialized_series()
        .cast(&DataType::Int64)?;
    Ok(s.i64()?.iter().collect())
}

/// A numeric column's values as floats, nulls left out.
pub(super) fn floats(df: &DataFrame, c: &str) -> Result<Vec<f64>> {
    let s = df
        .column(c)?
        .as_materialized_series()
        .cast(&DataType::Float64)?;
    Ok(s.f64()?.iter().flatten().collect())
}

/// A count column (any integer width) as u64 values (null as 0).
pub(super) fn counts(df: &DataFrame, c: &str) -> Result<Vec<u64>> {
    let s = df
        .column(c)?
        .as_materialized_series()
        .cast(&DataType::UInt64)?;
    Ok(s.u64()?.iter().map(|v| v.unwrap_or(0)).collect())
}

/// A frame's rows per tenant key, order kept: one pass, however many tenants look at it.
pub(super) struct PerTenant {
    parts: HashMap<TenantKey, DataFrame>,
    /// The frame with no rows, for a tenant that has none.
    empty: DataFrame,
}

impl PerTenant {
    pub(super) fn new(df: &DataFrame) -> Result<Self> {
        let parts = df
            .partition_by_stable(TENANT_KEY, true)?
            .into_iter()
            .map(|part| -> Result<(TenantKey, DataFrame)> {
                let first = |c: &str| -> Result<String> {
                    Ok(part.column(c)?.str()?.get(0).unwrap_or("").to_string())
                };
                let key = TenantKey {
                    tenant: first(out::TENANT)?,
                    aad_tenant: first(out::AAD_TENANT)?,
                };
                Ok((key, part))
            })
            .collect::<Result<HashMap<_, _>>>()?;
        Ok(PerTenant {
            parts,
            empty: df.clear(),
        })
    }

    pub(super) fn of(&self, key: &TenantKey) -> &DataFrame {
        self.parts.get(key).unwrap_or(&self.empty)
    }
}
