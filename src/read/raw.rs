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
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.tenant.len()
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
}

/// The candidate rows of many objects, as string columns with each row tagged with its object;
/// each object's rows are one run. An object's rows are copied in as soon as it is read, so
/// that nothing is kept per object (an archive of hourly blobs has tens of thousands, most
/// with a row or two), and the strings are held once, in the form the extraction reads.
pub(crate) struct Tagged {
    /// The string columns, in [`STRINGS`]' order.
    strings: Vec<StringChunkedBuilder>,
    time: Vec<Option<i64>>,
    tags: Vec<u32>,
    /// Bytes of text held.
    text: usize,
}

/// The string columns of [`Tagged`].
const STRINGS: [&str; 9] = [
    input::TENANT,
    input::AAD_TENANT,
    input::ID,
    input::CATEGORY,
    input::OPERATION_NAME,
    input::RESULT,
    input::TARGET_RESOURCES,
    input::INITIATED_BY,
    input::ADDITIONAL_DETAILS,
];

impl Default for Tagged {
    fn default() -> Self {
        Tagged {
            strings: STRINGS
                .iter()
                .map(|name| StringChunkedBuilder::new((*name).into(), 0))
                .collect(),
            time: Vec::new(),
            tags: Vec::new(),
            text: 0,
        }
    }
}

impl Tagged {
    /// Copies the rows of object `tag` in.
    pub(crate) fn add(&mut self, tag: u32, rows: Gathered) {
        let Gathered {
            tenant,
            aad_tenant,
            id,
            time,
            category,
            operation,
            result,
            targets,
            initiated,
            details,
        } = rows;
        self.tags.extend(std::iter::repeat_n(tag, time.len()));
        self.time.extend(time);
        let columns = [
            tenant, aad_tenant, id, category, operation, result, targets, initiated, details,
        ];
        for (builder, values) in self.strings.iter_mut().zip(columns) {
            for v in values {
                self.text += v.as_ref().map_or(0, String::len);
                builder.append_option(v);
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// Bytes of text held.
    pub(crate) fn text(&self) -> usize {
        self.text
    }

    /// The [`input::READ`] columns, as polars' reader would give them, and `tag` holding each
    /// row's object.
    pub(crate) fn frame(self, tag: &str) -> PolarsResult<DataFrame> {
        let time = Column::new(input::TIME_GENERATED.into(), self.time)
            .cast(&DataType::Datetime(TimeUnit::Nanoseconds, None))?;
        let mut columns: Vec<Column> = self
            .strings
            .into_iter()
            .map(|b| b.finish().into_column())
            .collect();
        columns.push(time);
        columns.push(Column::new(tag.into(), self.tags));
        DataFrame::new_infer_height(columns)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rows(ids: &[&str]) -> Gathered {
        let mut g = Gathered::default();
        for id in ids {
            g.push(Row {
                id: Some((*id).to_string()),
                time: Some(1),
                ..Row::default()
            });
        }
        g
    }

    #[test]
    fn tagged_rows_are_copied_in_with_their_objects() {
        let mut all = Tagged::default();
        all.add(7, rows(&["a1", "a2"]));
        all.add(3, rows(&[]));
        all.add(2, rows(&["b1"]));
        let frame = all.frame("tag").unwrap();
        let tags: Vec<u32> = frame
            .column("tag")
            .unwrap()
            .u32()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(tags, [7, 7, 2]);
        let ids = frame.column(input::ID).unwrap().str().unwrap();
        assert_eq!(
            ids.iter().collect::<Vec<_>>(),
            [Some("a1"), Some("a2"), Some("b1")]
        );
        let tenants = frame.column(input::TENANT).unwrap();
        assert_eq!(tenants.null_count(), 3);
        assert!(frame
            .column(input::TIME_GENERATED)
            .unwrap()
            .dtype()
            .is_temporal());
    }
}
