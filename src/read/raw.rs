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

    /// Moves `other`'s rows to the end of these.
    fn append(&mut self, other: &mut Gathered) {
        self.tenant.append(&mut other.tenant);
        self.aad_tenant.append(&mut other.aad_tenant);
        self.id.append(&mut other.id);
        self.time.append(&mut other.time);
        self.category.append(&mut other.category);
        self.operation.append(&mut other.operation);
        self.result.append(&mut other.result);
        self.targets.append(&mut other.targets);
        self.initiated.append(&mut other.initiated);
        self.details.append(&mut other.details);
    }

    /// Copies of the rows in `range`.
    fn part(&self, range: std::ops::Range<usize>) -> Gathered {
        let part = |v: &[Option<String>]| v.get(range.clone()).unwrap_or_default().to_vec();
        Gathered {
            tenant: part(&self.tenant),
            aad_tenant: part(&self.aad_tenant),
            id: part(&self.id),
            time: self.time.get(range.clone()).unwrap_or_default().to_vec(),
            category: part(&self.category),
            operation: part(&self.operation),
            result: part(&self.result),
            targets: part(&self.targets),
            initiated: part(&self.initiated),
            details: part(&self.details),
        }
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
    pub(crate) fn frame(&self) -> PolarsResult<DataFrame> {
        let s = |name: &str, v: &[Option<String>]| {
            let v: Vec<Option<&str>> = v.iter().map(Option::as_deref).collect();
            Column::new(name.into(), v)
        };
        let time = Column::new(input::TIME_GENERATED.into(), &self.time)
            .cast(&DataType::Datetime(TimeUnit::Nanoseconds, None))?;
        DataFrame::new_infer_height(vec![
            s(input::TENANT, &self.tenant),
            s(input::ID, &self.id),
            time,
            s(input::CATEGORY, &self.category),
            s(input::OPERATION_NAME, &self.operation),
            s(input::RESULT, &self.result),
            s(input::TARGET_RESOURCES, &self.targets),
            s(input::INITIATED_BY, &self.initiated),
            s(input::AAD_TENANT, &self.aad_tenant),
            s(input::ADDITIONAL_DETAILS, &self.details),
        ])
    }
}

/// The candidate rows of many objects, each row tagged with its object; each object's rows
/// are one run. Rows are moved in as each object is read, so that nothing is kept per object:
/// an archive of hourly blobs has tens of thousands, most with a row or two.
#[derive(Debug, Default)]
pub(crate) struct Tagged {
    pub(crate) rows: Gathered,
    pub(crate) tags: Vec<u32>,
}

impl Tagged {
    /// Moves the rows of object `tag` in.
    pub(crate) fn add(&mut self, tag: u32, rows: &mut Gathered) {
        self.tags.extend(std::iter::repeat_n(tag, rows.len()));
        self.rows.append(rows);
    }

    /// One object's rows alone, for each object, in the order they came.
    pub(crate) fn objects(&self) -> impl Iterator<Item = (u32, Tagged)> + '_ {
        let mut start = 0;
        std::iter::from_fn(move || {
            let &tag = self.tags.get(start)?;
            let len = self
                .tags
                .iter()
                .skip(start)
                .take_while(|&&t| t == tag)
                .count();
            let rows = self.rows.part(start..start + len);
            start += len;
            let tags = vec![tag; len];
            Some((tag, Tagged { rows, tags }))
        })
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
    fn tagged_rows_are_moved_in_and_cut_back_per_object() {
        let mut all = Tagged::default();
        let (mut a, mut b, mut none) = (rows(&["a1", "a2"]), rows(&["b1"]), rows(&[]));
        all.add(7, &mut a);
        all.add(3, &mut none);
        all.add(2, &mut b);
        assert_eq!((a.len(), b.len()), (0, 0), "moved, not copied");
        assert_eq!(all.tags, [7, 7, 2]);
        let parts: Vec<(u32, Vec<Option<String>>)> =
            all.objects().map(|(t, p)| (t, p.rows.id)).collect();
        let id = |s: &str| Some(s.to_string());
        assert_eq!(parts, [(7, vec![id("a1"), id("a2")]), (2, vec![id("b1")])]);
        let frame = all.rows.frame().unwrap();
        assert_eq!(frame.height(), 3);
        assert_eq!(frame.column(input::ID).unwrap().str().unwrap().get(2), Some("b1"));
    }
}
