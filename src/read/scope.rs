//! What a run reads: the tenants asked for (`--tenant`) and the time window (`--since` .. T).
//! Every cut of the scan is decided here, whichever stage applies it: folders while listing,
//! row groups by their statistics, rows in polars' reader and in the late reader, and events
//! already extracted (from the cache, whose entries hold whole objects).

use polars::prelude::*;
use polars_parquet::parquet::metadata::FileMetadata;

use crate::archive::{folder_span, row_group_span, TimeWindow};
use crate::error::{Error, Result};
use crate::rule::columns::ev::kind;
use crate::rule::columns::{ev, input};
use crate::rule::{category_pattern, lifecycle_operation_pattern, operation_pattern};

/// The rule's two patterns, compiled once per process for each reading: the byte readers test
/// them on every object, and compiling them was a tenth of the CPU of a scan of small objects.
#[derive(Debug)]
pub(crate) struct Patterns {
    pub(crate) category: regex::Regex,
    pub(crate) operation: regex::Regex,
}

type Compiled = std::sync::OnceLock<std::result::Result<Patterns, String>>;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scope {
    /// Only these tenants (all when empty); a null `TenantId` counts as `""`.
    pub(crate) tenants: Vec<String>,
    /// Rows before this instant (ns) are out.
    pub(crate) since: Option<i64>,
    /// T when it was given (`--as-of`): bounds which row groups can matter, never rows (the
    /// rule itself cuts at T, and the default T is the archive's latest event).
    pub(crate) until: Option<i64>,
    /// How far from its date folder an event may be filed (ns): a folder is pruned only when
    /// it ends more than this before `since`.
    pub(crate) folder_skew: i64,
    /// Read the guest's life cycle too (`precise`): reset re-invites, deletions, accepting
    /// user updates, and the invites' `AdditionalDetails`. Else invites and redeems only.
    pub(crate) lifecycle: bool,
}

impl Scope {
    /// No cut at all: what an extraction-cache entry holds, so that every run can share it
    /// (the life cycle included, for `precise` runs).
    pub(crate) fn everything() -> Scope {
        Scope {
            lifecycle: true,
            ..Scope::default()
        }
    }

    /// Whether listing should walk the folders to prune them (else one flat listing).
    pub(crate) fn prunes_folders(&self) -> bool {
        self.since.is_some()
    }

    /// Can a folder (a path of folder names) hold rows in scope? Folders are pruned on the
    /// `--since` side only (exporters may file a late event under a later folder than its
    /// `TimeGenerated`), and with a margin of `folder_skew`: a diagnostic-settings blob is
    /// filled by time received, and holds events up to about 48 h from its hour.
    pub(crate) fn folder_may_hold(&self, folder: &str) -> bool {
        let since_only = TimeWindow {
            since: self.since,
            until: None,
        };
        folder_span(folder).is_none_or(|(start, end)| {
            since_only.overlaps(start, (end - 1).saturating_add(self.folder_skew))
        })
    }

    /// Can an object hold rows in scope, by its key? An object under a `TenantId=<id>` folder
    /// (hive partitioning by tenant) holds only that tenant's rows.
    pub(crate) fn key_may_hold(&self, key: &str) -> bool {
        if self.tenants.is_empty() {
            return true;
        }
        key.split('/').all(|segment| match segment.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("TenantId") => {
                self.tenants.iter().any(|t| t.eq_ignore_ascii_case(v))
            }
            _ => true,
        })
    }

    /// Can a row group hold rows in scope? Its `TimeGenerated` statistics, once checked
    /// (`read::statistics`), are exact bounds, so they prune on both sides.
    pub(crate) fn row_group_may_hold(&self, meta: &FileMetadata, rg: usize) -> bool {
        let w = TimeWindow {
            since: self.since,
            until: self.until,
        };
        w.is_open()
            || row_group_span(meta, rg, input::TIME_GENERATED)
                .is_none_or(|(min, max)| w.overlaps(min, max))
    }

    /// Rows in scope, as a predicate on an object's tenant (nulls already `""`) and time (ns)
    /// expressions; `None` when every row is.
    pub(crate) fn rows(&self, tenant: &Expr, time: &Expr) -> Option<Expr> {
        let since = self.since.map(|s| time.clone().gt_eq(lit(s)));
        let tenants = self
            .tenants
            .iter()
            .map(|t| tenant.clone().eq(lit(t.as_str())))
            .reduce(|a, b| a.or(b));
        match (since, tenants) {
            (Some(a), Some(b)) => Some(a.and(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether rows are cut by tenant at all.
    pub(crate) fn cuts_tenants(&self) -> bool {
        !self.tenants.is_empty()
    }

    /// Is a row of this tenant (`None`: null) in scope?
    pub(crate) fn keeps_tenant(&self, tenant: Option<&[u8]>) -> bool {
        let t = tenant.unwrap_or_default();
        !self.cuts_tenants() || self.tenants.iter().any(|k| k.as_bytes() == t)
    }

    /// Is a row at this time (`None`: null) in scope?
    pub(crate) fn keeps_time(&self, time: Option<i64>) -> bool {
        self.since
            .is_none_or(|since| time.is_some_and(|t| t >= since))
    }

    /// The rows of extracted events in scope (events of the life cycle only when it is read).
    pub(crate) fn cut(&self, events: LazyFrame) -> LazyFrame {
        let pairs = col(ev::KIND).lt_eq(lit(kind::REDEEM).cast(DataType::UInt32));
        let pred = match (self.rows(&col(ev::TENANT), &col(ev::TIME)), self.lifecycle) {
            (Some(rows), false) => Some(rows.and(pairs)),
            (None, false) => Some(pairs),
            (rows, true) => rows,
        };
        match pred {
            Some(pred) => events.filter(pred),
            None => events,
        }
    }

    /// [`Patterns`] of this reading (invites and redeems, or the life cycle).
    pub(crate) fn patterns(&self) -> Result<&'static Patterns> {
        static PAIRS: Compiled = Compiled::new();
        static LIFECYCLE: Compiled = Compiled::new();
        let once = match self.lifecycle {
            true => &LIFECYCLE,
            false => &PAIRS,
        };
        let compiled = once.get_or_init(|| {
            let re = |p: String| regex::Regex::new(&p).map_err(|e| e.to_string());
            Ok(Patterns {
                category: re(category_pattern())?,
                operation: re(self.operation_pattern())?,
            })
        });
        compiled.as_ref().map_err(|e| Error::Internal(e.clone()))
    }

    /// `OperationName =~` the operations read.
    pub(crate) fn operation_pattern(&self) -> String {
        match self.lifecycle {
            true => lifecycle_operation_pattern(),
            false => operation_pattern(),
        }
    }

    /// The archive columns read (`AdditionalDetails` only with the life cycle).
    pub(crate) fn read_columns(&self) -> &'static [&'static str] {
        match self.lifecycle {
            true => &input::READ,
            false => input::READ.split_at(input::READ.len() - 1).0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_folders_prune_only_with_tenants_asked_for() {
        let key = "TenantId=AAA/y=2026/part-0.parquet";
        assert!(Scope::everything().key_may_hold(key));
        let only = |t: &str| Scope {
            tenants: vec![t.into()],
            ..Scope::default()
        };
        assert!(only("aaa").key_may_hold(key), "GUIDs compare without case");
        assert!(!only("bbb").key_may_hold(key));
        assert!(!only("bbb").key_may_hold("x/tenantid=aaa/p.parquet"));
        assert!(
            only("bbb").key_may_hold("y=2026/m=01/p.parquet"),
            "no tenant folder"
        );
    }
    use crate::time::parse_instant;

    #[test]
    fn folders_are_pruned_on_the_since_side_only() {
        let s = Scope {
            since: Some(parse_instant("2026-03-01T00:00:00Z").unwrap()),
            until: Some(parse_instant("2026-03-10T00:00:00Z").unwrap()),
            ..Scope::default()
        };
        assert!(!s.folder_may_hold("y=2026/m=02/d=28"));
        assert!(!s.folder_may_hold("y=2026/m=02"));
        assert!(s.folder_may_hold("y=2026/m=03/d=01"));
        assert!(s.folder_may_hold("y=2026"));
        // Late events are filed under later folders: T never prunes a folder.
        assert!(s.folder_may_hold("y=2026/m=03/d=11"));
        assert!(s.folder_may_hold("no-dates"));
        assert!(Scope::everything().folder_may_hold("y=2026/m=02/d=28"));
        // With a margin, a folder is kept while it ends less than the margin before --since.
        let skewed = Scope {
            folder_skew: 48 * 3600 * 1_000_000_000,
            ..s
        };
        assert!(skewed.folder_may_hold("y=2026/m=02/d=28/h=00"));
        assert!(skewed.folder_may_hold("y=2026/m=02/d=27/h=00"));
        assert!(!skewed.folder_may_hold("y=2026/m=02/d=26/h=23"));
    }

    #[test]
    fn null_tenants_count_as_empty() {
        let s = Scope {
            tenants: vec!["a".into(), "".into()],
            ..Scope::default()
        };
        assert!(s.keeps_tenant(Some(b"a")));
        assert!(s.keeps_tenant(None));
        assert!(!s.keeps_tenant(Some(b"b")));
        assert!(Scope::everything().keeps_tenant(Some(b"b")));
        let since = Scope {
            since: Some(10),
            ..Scope::default()
        };
        assert!(since.keeps_time(Some(10)) && !since.keeps_time(Some(9)));
        assert!(!since.keeps_time(None) && Scope::everything().keeps_time(None));
    }
}
