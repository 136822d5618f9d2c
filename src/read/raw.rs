//! Candidate rows as every reader hands them over: the needed columns of the rows that may be
//! invites or redeems, with the object's row statistics. They become events in one pass
//! (`events::extract_raws`), whichever reader (or format) gave them.

use polars::prelude::*;

use crate::rule::columns::input;

/// The candidate rows of one object (all `Category`/`OperationName` matches within the scope),
/// with the raw columns the event expressions read, plus the per-object stats.
pub(crate) struct Raw {
    /// The candidate rows. They stay plain strings until the one extraction pass builds a
    /// frame of every object's: a frame per object would hold a buffer block per column even
    /// for a few short rows, and memory would grow with the number of objects.
    pub(crate) candidates: Gathered,
    pub(crate) rows: u64,
    pub(crate) max_time: Option<i64>,
    pub(crate) tenant_rows: Vec<(String, u64)>,
    /// A JSON object's lines that could not be read (`None`: a Parquet object).
    pub(crate) quality: Option<super::json::Quality>,
}

/// One candidate row, each column's value as the Parquet readers give it (dynamic columns as
/// JSON text).
#[derive(Debug, Default)]
pub(crate) struct Row {
    pub(crate) tenant: Option<String>,
    pub(crate) aad_tenant: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) time: Option<i64>,
    pub(crate) category: Option<String>,
    pub(crate) operation: Option<String>,
    pub(crate) result: Option<String>,
    pub(crate) targets: Option<String>,
    pub(crate) initiated: Option<String>,
    pub(crate) details: Option<String>,
}

/// The candidate rows gathered so far, column by column.
#[derive(Debug, Default, Clone)]
pub(crate) struct Gathered {
    pub(crate) tenant: Vec<Option<String>>,
    pub(crate) aad_tenant: Vec<Option<String>>,
    pub(crate) id: Vec<Option<String>>,
    pub(crate) time: Vec<Option<i64>>,
    pub(crate) category: Vec<Option<String>>,
    pub(crate) operation: Vec<Option<String>>,
    pub(crate) result: Vec<Option<String>>,
    pub(crate) targets: Vec<Option<String>>,
    pub(crate) initiated: Vec<Option<String>>,
    pub(crate) details: Vec<Option<String>>,
}

impl Gathered {
    pub(crate) fn len(&self) -> usize {
        self.tenant.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tenant.is_empty()
    }

    /// Appends copies of `other`'s rows.
    pub(crate) fn extend_from(&mut self, other: &Gathered) {
        self.tenant.extend_from_slice(&other.tenant);
        self.aad_tenant.extend_from_slice(&other.aad_tenant);
        self.id.extend_from_slice(&other.id);
        self.time.extend_from_slice(&other.time);
        self.category.extend_from_slice(&other.category);
        self.operation.extend_from_slice(&other.operation);
        self.result.extend_from_slice(&other.result);
        self.targets.extend_from_slice(&other.targets);
        self.initiated.extend_from_slice(&other.initiated);
        self.details.extend_from_slice(&other.details);
    }

    pub(crate) fn push(&mut self, r: Row) {
        self.tenant.push(r.tenant);
        self.aad_tenant.push(r.aad_tenant);
        self.id.push(r.id);
        self.time.push(r.time);
        self.category.push(r.category);
        self.operation.push(r.operation);
        self.result.push(r.result);
        self.targets.push(r.targets);
        self.initiated.push(r.initiated);
        self.details.push(r.details);
    }

    /// The [`input::READ`] columns, as polars' reader would give them.
    pub(crate) fn frame(self) -> PolarsResult<DataFrame> {
        let s = |name: &str, v: Vec<Option<String>>| Column::new(name.into(), v);
        let time = Column::new(input::TIME_GENERATED.into(), self.time)
            .cast(&DataType::Datetime(TimeUnit::Nanoseconds, None))?;
        DataFrame::new_infer_height(vec![
            s(input::TENANT, self.tenant),
            s(input::ID, self.id),
            time,
            s(input::CATEGORY, self.category),
            s(input::OPERATION_NAME, self.operation),
            s(input::RESULT, self.result),
            s(input::TARGET_RESOURCES, self.targets),
            s(input::INITIATED_BY, self.initiated),
            s(input::AAD_TENANT, self.aad_tenant),
            s(input::ADDITIONAL_DETAILS, self.details),
        ])
    }
}
