//! Reading a small result frame's columns into plain values, and cutting frames per tenant.

use std::collections::HashMap;

use polars::prelude::*;

use crate::error::Result;
use crate::rule::columns::out;

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

/// A count column (any integer width) as u64 values (null as 0).
pub(super) fn counts(df: &DataFrame, c: &str) -> Result<Vec<u64>> {
    let s = df
        .column(c)?
        .as_materialized_series()
        .cast(&DataType::UInt64)?;
    Ok(s.u64()?.iter().map(|v| v.unwrap_or(0)).collect())
}

/// A frame's rows per tenant, order kept: one pass, however many tenants look at it.
pub(super) struct PerTenant {
    parts: HashMap<String, DataFrame>,
    /// The frame with no rows, for a tenant that has none.
    empty: DataFrame,
}

impl PerTenant {
    pub(super) fn new(df: &DataFrame) -> Result<Self> {
        let parts = df
            .partition_by_stable([out::TENANT], true)?
            .into_iter()
            .map(|part| -> Result<(String, DataFrame)> {
                let tenant = part
                    .column(out::TENANT)?
                    .str()?
                    .get(0)
                    .unwrap_or("")
                    .to_string();
                Ok((tenant, part))
            })
            .collect::<Result<HashMap<_, _>>>()?;
        Ok(PerTenant {
            parts,
            empty: df.clear(),
        })
    }

    pub(super) fn of(&self, tenant: &str) -> &DataFrame {
        self.parts.get(tenant).unwrap_or(&self.empty)
    }
}
