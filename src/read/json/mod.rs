//! JSON Lines archives, as Azure writes them into a storage account: Entra diagnostic-settings
//! records (a camelCase envelope around `properties`) and Log Analytics data-export records
//! (the table's PascalCase columns, dynamic ones as objects or as JSON text), plain or gzip,
//! one record per line or (before November 2018) one `{"records":[…]}` document. The shape is
//! told per record, so one object may even mix them.
//!
//! A line that cannot hold an invite or a redeem is never parsed whole (`prefilter`): only its
//! time and tenant are read, for the rows per tenant and the archive's latest time. The
//! candidates become the same rows the Parquet readers give ([`Raw`]), so everything after the
//! read is shared. What cannot be read is counted per object ([`Quality`]), never fatal; an
//! object that is not JSON at all is an error naming it.
//!
//! | rule field      | diagnostic record                                         | data export     |
//! |-----------------|-----------------------------------------------------------|-----------------|
//! | `TimeGenerated` | `time`, else `properties.activityDateTime`                | `TimeGenerated` |
//! | `Category`      | `properties.category` (the envelope's is the log's)       | `Category`      |
//! | `OperationName` | `properties.activityDisplayName`, else `operationName`    | `OperationName` |
//! | `Result`        | `properties.result`                                       | `Result`        |
//! | `Id`            | `properties.id`                                           | `Id`            |
//! | `TenantId`      | `tenantId`, else `properties.tenantId`, else `resourceId` | `TenantId` (the workspace) |
//! | `AADTenantId`   | the same as `TenantId` (a record has no workspace)        | `AADTenantId`   |
//! | targets, initiator | `properties.targetResources`, `properties.initiatedBy` | `TargetResources`, `InitiatedBy` |
//! | details         | `properties.additionalDetails`                            | `AdditionalDetails` |

mod marks;
mod prefilter;
mod record;
mod sniff;

use std::collections::BTreeMap;
use std::io::Read;

use self::marks::Marks;
use self::prefilter::Prefilter;
use self::sniff::Sniffed;
use super::raw::{Gathered, Raw, Row};
use super::scope::Scope;
use crate::error::{Error, Result};
use crate::time::parse_instant;

/// What could not be read in one JSON object, counted, never fatal.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Quality {
    /// Records read (non-blank lines, or a legacy document's records).
    pub records: u64,
    /// Lines that are not one JSON object.
    pub unparseable_lines: u64,
    /// Lines holding bytes that are not UTF-8 (counted among the unparseable too).
    pub non_utf8_lines: u64,
    /// A last line without its end and not JSON: a blob still being appended to. The next run
    /// reads it whole (the object's ETag and size will have changed).
    pub truncated_last_line: bool,
    /// Records holding none of the fields the rule reads (no `properties`, no table columns).
    pub records_without_fields: u64,
}

/// Is `bytes` (an object's first bytes) gzip?
fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// The candidate rows of one JSON object, cut to `scope`, and what could not be read.
pub(crate) fn scan(key: &str, bytes: &[u8], scope: &Scope) -> Result<Raw> {
    let inflated;
    let mut text = bytes;
    if is_gzip(bytes) {
        let mut out = Vec::new();
        // Several gzip members (appended or concatenated archives) are one stream.
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| Error::corrupt(key, format!("gzip: {e}")))?;
        inflated = out;
        text = &inflated;
    }
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        None | Some(b'{') => {}
        Some(_) => {
            return Err(Error::corrupt(
                key,
                "neither Parquet nor JSON Lines (a JSON object per line)",
            ))
        }
    }
    let mut s = Scanner::new(scope)?;
    if is_records_document(text) {
        s.document(key, text)?;
    } else {
        s.lines(text);
    }
    let raw = Raw {
        candidates: s.out,
        rows: s.rows,
        max_time: s.max_time,
        tenant_rows: s.tenant_rows.into_iter().collect(),
        quality: Some(s.quality),
    };
    Ok(raw)
}

/// A legacy blob: one `{"records": [...]}` document.
fn is_records_document(text: &[u8]) -> bool {
    let rest = text
        .trim_ascii_start()
        .strip_prefix(b"{")
        .unwrap_or_default();
    rest.trim_ascii_start().starts_with(br#""records""#)
}

/// The byte prefilter and the rule's two patterns, built once per process: a two-year archive
/// of hourly blobs is tens of thousands of small objects.
struct Matchers {
    prefilter: &'static Prefilter,
    category: &'static regex::Regex,
    operation: &'static regex::Regex,
}

/// Invites and redeems; and the guest's whole life cycle (`Scope::lifecycle`).
static PAIRS: std::sync::OnceLock<Prefilter> = std::sync::OnceLock::new();
static LIFECYCLE: std::sync::OnceLock<Prefilter> = std::sync::OnceLock::new();

fn matchers(scope: &Scope) -> Result<Matchers> {
    let once = match scope.lifecycle {
        true => &LIFECYCLE,
        false => &PAIRS,
    };
    let p = scope.patterns()?;
    Ok(Matchers {
        prefilter: once.get_or_init(|| Prefilter::new(scope.lifecycle)),
        category: &p.category,
        operation: &p.operation,
    })
}

/// The scan of one object, record by record.
struct Scanner<'a> {
    scope: &'a Scope,
    m: Matchers,
    out: Gathered,
    quality: Quality,
    rows: u64,
    max_time: Option<i64>,
    tenant_rows: BTreeMap<String, u64>,
    /// The marks of the line being read.
    marks: Marks,
}

impl Quality {
    /// Some line could not be read.
    pub(crate) fn is_clean(&self) -> bool {
        self.unparseable_lines == 0 && !self.truncated_last_line && self.records_without_fields == 0
    }
}

impl<'a> Scanner<'a> {
    fn new(scope: &'a Scope) -> Result<Self> {
        Ok(Scanner {
            scope,
            m: matchers(scope)?,
            out: Gathered::default(),
            quality: Quality::default(),
            rows: 0,
            max_time: None,
            tenant_rows: BTreeMap::new(),
            marks: Marks::default(),
        })
    }

    fn lines(&mut self, text: &[u8]) {
        let mut rest = text;
        while !rest.is_empty() {
            // Newlines found by SIMD: lines are a kilobyte or more.
            let (line, last) = match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    let line = rest.get(..i).unwrap_or_default();
                    rest = rest.get(i + 1..).unwrap_or_default();
                    (line, false)
                }
                None => (std::mem::take(&mut rest), true),
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line).trim_ascii();
            if line.is_empty() {
                continue;
            }
            self.marks.mark(line);
            let read = match triage(self.m.prefilter, line, &self.marks) {
                Triage::Keep => record::line_fields(line).map(|r| self.record(r)),
                Triage::Drop(walked) => self.dropped(line, walked),
            };
            if read.is_some() {
                continue;
            }
            if last && !text.ends_with(b"\n") {
                self.quality.truncated_last_line = true;
                continue;
            }
            self.quality.records += 1;
            self.quality.unparseable_lines += 1;
            if std::str::from_utf8(line).is_err() {
                self.quality.non_utf8_lines += 1;
            }
        }
    }

    /// A line the prefilter dropped, counted by its time and tenant (`None`: the line is not
    /// a JSON object), from what the walk read of it or else parsed.
    fn dropped(&mut self, line: &[u8], walked: Option<Sniffed>) -> Option<()> {
        let c = walked.and_then(counted).or_else(|| parsed(line))?;
        self.count(c.tenant.as_deref(), c.time);
        self.quality.records_without_fields += u64::from(c.empty);
        Some(())
    }

    /// A legacy `{"records": [...]}` document, read whole.
    fn document(&mut self, key: &str, text: &[u8]) -> Result<()> {
        #[derive(serde::Deserialize)]
        struct Records<'a> {
            #[serde(borrow)]
            records: Vec<&'a serde_json::value::RawValue>,
        }
        let doc: Records = serde_json::from_slice(text)
            .map_err(|e| Error::corrupt(key, format!("a `records` document: {e}")))?;
        for r in doc.records {
            if let Some(r) = record::fields(r.get()) {
                self.record(r);
            } else {
                self.quality.records += 1;
                self.quality.unparseable_lines += 1;
            }
        }
        Ok(())
    }

    /// One parsed record: counted, and kept when it is a candidate in scope.
    fn record(&mut self, r: Row) {
        self.count(r.tenant.as_deref(), r.time);
        if holds_nothing(&r) {
            self.quality.records_without_fields += 1;
            return;
        }
        let matches =
            |re: &regex::Regex, f: &Option<String>| f.as_deref().is_some_and(|s| re.is_match(s));
        if matches(self.m.operation, &r.operation)
            && matches(self.m.category, &r.category)
            && self
                .scope
                .keeps_tenant(r.tenant.as_deref().map(str::as_bytes))
            && self.scope.keeps_time(r.time)
        {
            self.out.push(r);
        }
    }

    fn count(&mut self, tenant: Option<&str>, time: Option<i64>) {
        self.quality.records += 1;
        self.rows += 1;
        self.max_time = self.max_time.max(time);
        let tenant = tenant.unwrap_or_default();
        // A blob holds one tenant or a few: the key is copied once, not per line.
        match self.tenant_rows.get_mut(tenant) {
            Some(n) => *n += 1,
            None => {
                self.tenant_rows.insert(tenant.to_string(), 1);
            }
        }
    }
}

/// What a dropped line is counted by.
#[derive(Debug, PartialEq)]
struct Counted<'a> {
    tenant: Option<std::borrow::Cow<'a, str>>,
    time: Option<i64>,
    /// Neither shape (no `properties`, no table column).
    empty: bool,
}

/// What becomes of a line.
#[derive(Debug)]
enum Triage<'a> {
    /// Parsed in full: it may hold an event the run reads.
    Keep,
    /// Only counted, from what the walk read of it (`None`: the walk left it to the parse).
    Drop(Option<Sniffed<'a>>),
}

/// The prefilter's verdict on a marked line. Its one costly test, a `\u` escape that could
/// spell a name, is taken from the walk where the walk reads the line: it meets every escape
/// of a valid line anyway (outside strings there are none).
fn triage<'a>(p: &Prefilter, line: &'a [u8], marks: &Marks) -> Triage<'a> {
    let kind = marks.kind();
    if p.keeps_spelled(line, kind) {
        return Triage::Keep;
    }
    match sniff::sniff(line, marks) {
        Some(s) if s.unicode_escape => Triage::Keep,
        Some(s) => Triage::Drop(Some(s)),
        None if p.keeps_escaped(line, kind) => Triage::Keep,
        None => Triage::Drop(None),
    }
}

/// A dropped line as the walk (`sniff`) read it, where that is enough to count it exactly.
fn counted(s: Sniffed) -> Option<Counted> {
    let time = |t: Option<&str>| t.and_then(|t| parse_instant(t).ok());
    if s.properties {
        // Only the envelope's fields are read; where they are missing, `properties` is.
        let (t, tenant) = s.time.zip(s.tenant_id)?;
        return Some(Counted {
            tenant: Some(tenant.into()),
            time: time(Some(t)),
            empty: false,
        });
    }
    Some(Counted {
        tenant: s.table_tenant.map(Into::into),
        time: time(s.time_generated),
        empty: s.time_generated.is_none() && s.table_tenant.is_none(),
    })
}

/// A dropped line parsed in full (`None`: not a JSON object).
fn parsed(line: &[u8]) -> Option<Counted<'static>> {
    let e = serde_json::from_slice::<Envelope>(line).ok()?;
    Some(Counted {
        tenant: e.tenant().map(|t| t.to_string().into()),
        time: e.time(),
        empty: e.is_empty(),
    })
}

/// What a line the prefilter dropped is read for: its time and tenant (either shape).
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    time: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default, rename = "TimeGenerated")]
    time_generated: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default, rename = "tenantId")]
    tenant_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default, rename = "TenantId")]
    table_tenant: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default, rename = "resourceId")]
    resource_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    properties: Option<Properties<'a>>,
}

#[derive(serde::Deserialize)]
struct Properties<'a> {
    #[serde(borrow, default, rename = "tenantId")]
    tenant_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default, rename = "activityDateTime")]
    activity_time: Option<std::borrow::Cow<'a, str>>,
}

impl Envelope<'_> {
    /// Neither shape: no `properties`, no table column.
    fn is_empty(&self) -> bool {
        self.properties.is_none() && self.time_generated.is_none() && self.table_tenant.is_none()
    }

    fn tenant(&self) -> Option<&str> {
        match &self.properties {
            Some(p) => self
                .tenant_id
                .as_deref()
                .or(p.tenant_id.as_deref())
                .or_else(|| self.resource_id.as_deref().and_then(tenant_of_resource)),
            None => self.table_tenant.as_deref(),
        }
    }

    fn time(&self) -> Option<i64> {
        let text = match &self.properties {
            Some(p) => self.time.as_deref().or(p.activity_time.as_deref()),
            None => self.time_generated.as_deref(),
        };
        text.and_then(|t| parse_instant(t).ok())
    }
}

/// The tenant of a diagnostic record's `resourceId` (`/tenants/<tid>/providers/…`).
fn tenant_of_resource(id: &str) -> Option<&str> {
    let mut parts = id.split('/').filter(|p| !p.is_empty());
    while let Some(p) = parts.next() {
        if p.eq_ignore_ascii_case("tenants") {
            return parts.next();
        }
    }
    None
}

/// Holds none of the fields the rule reads.
fn holds_nothing(r: &Row) -> bool {
    r.id.is_none()
        && r.time.is_none()
        && r.category.is_none()
        && r.operation.is_none()
        && r.result.is_none()
        && r.targets.is_none()
        && r.initiated.is_none()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::io::Write;

    use polars::prelude::*;

    use serde_json::Value;

    use super::*;
    use crate::read::events::extract_raws;
    use crate::rule::columns::ev;

    fn kind(df: &DataFrame) -> u32 {
        df.column(ev::KIND).unwrap().u32().unwrap().get(0).unwrap()
    }

    fn flag(df: &DataFrame, c: &str) -> bool {
        df.column(c).unwrap().bool().unwrap().get(0).unwrap()
    }

    /// Real records (tests/fixtures/json/README.md says where each comes from).
    const INVITE: &str =
        include_str!("../../../tests/fixtures/json/diag-invite-external-user.splunk.json");
    const HOUR: &str = include_str!("../../../tests/fixtures/json/diag-PT1H.datadog.json");

    fn read(bytes: &[u8]) -> (Raw, Quality) {
        let raw = scan("k.json", bytes, &Scope::everything()).unwrap();
        let quality = raw.quality.clone().unwrap();
        (raw, quality)
    }

    /// The events of one object's candidates, as every reader's rows become.
    fn events(bytes: &[u8]) -> DataFrame {
        let (raw, _) = read(bytes);
        let mut all = crate::read::raw::Tagged::default();
        all.add(0, raw.candidates);
        let all = all.frame(crate::read::events::OBJECT).unwrap();
        match extract_raws(&all, &Scope::everything()).unwrap() {
            Some(e) => e.drop(crate::read::events::OBJECT).unwrap(),
            None => crate::rule::columns::empty_events(),
        }
    }

    fn strings(df: &DataFrame, c: &str) -> Vec<Option<String>> {
        df.column(c)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    fn one(df: &DataFrame, c: &str) -> String {
        assert_eq!(df.height(), 1, "{df}");
        strings(df, c)[0].clone().unwrap()
    }

    #[test]
    fn a_real_invite_is_extracted_exactly() {
        let e = events(INVITE.as_bytes());
        assert_eq!(one(&e, ev::TENANT), "fc69e276-e9e8-4af9-9002-1e410d77244e");
        assert_eq!(
            one(&e, ev::ID),
            "Invited Users_e7d580a6-eaac-4f82-843c-40b0b5f3cf99_YNUMP_7291793"
        );
        assert_eq!(
            one(&e, ev::TR_UPN),
            "oops360_gmail.com#EXT#@strtadminsplunkresearch.onmicrosoft.com"
        );
        assert_eq!(one(&e, ev::INIT_UPN), "oopsr@splunkresearch.com");
        assert_eq!(one(&e, ev::INIT_IP), "40.126.4.40");
        let time = e.column(ev::TIME).unwrap().i64().unwrap().get(0);
        // Seven fractional digits: 100 ns kept.
        assert_eq!(
            time,
            Some(parse_instant("2023-07-13T00:29:59.5100003Z").unwrap())
        );
        assert_eq!(kind(&e), ev::kind::INVITE);
        assert_eq!(one(&e, ev::TR_ID), "f416526a-17ee-4129-8ca9-f5ee55f69f34");
        assert_eq!(
            one(&e, ev::INVITATION_ID),
            "65c7d12f-c6f3-44f0-8fad-4f57a1020484"
        );
        assert_eq!(one(&e, ev::INVITED_EMAIL), "oops360@gmail.com");
    }

    #[test]
    fn a_real_hour_blob_reads_whole_with_no_candidate() {
        let (raw, q) = read(HOUR.as_bytes());
        assert_eq!((raw.rows, raw.candidates.len()), (22, 0));
        assert_eq!(
            q,
            Quality {
                records: 22,
                ..Quality::default()
            }
        );
        assert_eq!(
            raw.tenant_rows,
            [("4d3bac44-0230-4732-9e70-cc00736f0a97".to_string(), 22)]
        );
        let latest = HOUR
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["time"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .map(|t| parse_instant(&t).unwrap())
            .max();
        assert_eq!(raw.max_time, latest);
    }

    /// A redeem of the shape the public sample shows (`UPN: …` text in `displayName`).
    fn redeem(id: &str, upn: &str) -> String {
        format!(
            r#"{{"time":"2026-03-01T10:00:00.1234567Z","resourceId":"/tenants/t1/providers/Microsoft.aadiam","operationName":"Redeem external user invite","category":"AuditLogs","properties":{{"id":"{id}","category":"UserManagement","result":"success","activityDisplayName":"Redeem external user invite","loggedByService":"B2B Auth","initiatedBy":{{"user":{{"userPrincipalName":"jane@fabrikam.com","ipAddress":"198.51.100.4"}}}},"targetResources":[{{"id":"d042c4fe-5dd1-44a2-883a-eede6c10608f","displayName":"UPN: {upn}, Email: jane@fabrikam.com, InvitationId: 4c93fc70-169a-411f-8cf7-aff732f8c7b9, Source: One Time Passcode","type":"User","userPrincipalName":"{upn}"}}]}}}}"#
        )
    }

    #[test]
    fn a_redeem_keeps_its_upn_text_and_takes_its_tenant_from_the_resource() {
        let upn = "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com";
        let e = events(redeem("r1", upn).as_bytes());
        assert_eq!(one(&e, ev::TENANT), "t1", "no tenantId: from resourceId");
        assert!(one(&e, ev::TR_DISPLAY).starts_with(&format!("UPN: {upn}, Email: ")));
        assert_eq!(kind(&e), ev::kind::REDEEM);
        assert_eq!(one(&e, ev::TR_ID), "d042c4fe-5dd1-44a2-883a-eede6c10608f");
        assert!(flag(&e, ev::RESULT_OK));
        // No rule reads a redeem's initiator (as in the Parquet readers).
        assert_eq!(strings(&e, ev::INIT_UPN), [None]);
    }

    /// A data-export record (PascalCase columns); `nested` writes the dynamic ones as JSON
    /// values, else as JSON text.
    fn exported(id: &str, nested: bool) -> String {
        let targets = r#"[{"id":"g1","type":"User","userPrincipalName":"omar_adatum.org#EXT#@contoso.onmicrosoft.com"}]"#;
        let initiated =
            r#"{"user":{"userPrincipalName":"admin@contoso.com","ipAddress":"203.0.113.7"}}"#;
        let dynamic = |v: &str| {
            if nested {
                v.to_string()
            } else {
                Value::from(v).to_string()
            }
        };
        format!(
            r#"{{"TenantId":"ws-1","AADTenantId":"t2","TimeGenerated":"2026-03-01T09:00:00Z","Id":"{id}","Category":"UserManagement","OperationName":"Invite external user","Result":"success","TargetResources":{},"InitiatedBy":{}}}"#,
            dynamic(targets),
            dynamic(initiated)
        )
    }

    #[test]
    fn exported_dynamic_columns_read_the_same_as_values_or_as_text() {
        let mixed = format!("{}\n{}\n", exported("a", true), exported("b", false));
        let e = events(mixed.as_bytes());
        assert_eq!(strings(&e, ev::ID), [Some("a".into()), Some("b".into())]);
        let upn = Some("omar_adatum.org#EXT#@contoso.onmicrosoft.com".to_string());
        assert_eq!(strings(&e, ev::TR_UPN), [upn.clone(), upn]);
        let ip = Some("203.0.113.7".to_string());
        assert_eq!(strings(&e, ev::INIT_IP), [ip.clone(), ip]);
        assert_eq!(
            strings(&e, ev::TENANT),
            [Some("ws-1".into()), Some("ws-1".into())]
        );
    }

    fn gzip(text: &str) -> Vec<u8> {
        let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        g.write_all(text.as_bytes()).unwrap();
        g.finish().unwrap()
    }

    #[test]
    fn gzip_members_legacy_documents_and_mixed_shapes_read_alike() {
        let upn = "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com";
        let lines = format!("{INVITE}\n{}\n{}\n", redeem("r1", upn), exported("a", true));
        let plain = events(lines.as_bytes());
        assert_eq!(plain.height(), 3);
        // Two gzip members, as an appended or concatenated archive holds.
        let (first, rest) = lines.split_at(lines.find('\n').unwrap() + 1);
        let mut two = gzip(first);
        two.extend(gzip(rest));
        assert!(events(&two).equals_missing(&plain));
        let records: Vec<Value> = lines
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let doc = serde_json::json!({ "records": records }).to_string();
        assert!(events(doc.as_bytes()).equals_missing(&plain));
        // A record a `Value` would refuse (a lone surrogate) is counted, not the document's end.
        let bad = doc.replacen("\"records\":[", "\"records\":[{\"x\":\"\\ud800\"},", 1);
        assert!(events(bad.as_bytes()).equals_missing(&plain));
        assert_eq!(read(bad.as_bytes()).1.unparseable_lines, 1);
    }

    #[test]
    fn bad_lines_are_counted_never_fatal() {
        let mut text = format!("{INVITE}\r\nnot json\n\n[1, 2]\n").into_bytes();
        text.extend(b"{\"operationName\": \"Invite external user\xff\"}\n");
        text.extend(format!("{{\"Level\": 4}}\n{}", &INVITE[..INVITE.len() / 2]).bytes());
        let (raw, q) = read(&text);
        assert_eq!(
            q,
            Quality {
                records: 5,
                unparseable_lines: 3,
                non_utf8_lines: 1,
                truncated_last_line: true,
                records_without_fields: 1,
            }
        );
        assert_eq!((raw.candidates.len(), raw.rows), (1, 2));
        assert_eq!(read(b"").0.rows, 0);
        assert_eq!(read(b"  \n\n").1, Quality::default());
        for not_json in [&b"PAR1\x00\x00"[..], b"[{\"a\": 1}]", b"hello"] {
            let Err(e) = scan("k.json", not_json, &Scope::everything()) else {
                panic!("{not_json:?} read as JSON");
            };
            assert!(e.to_string().contains("k.json"), "{e}");
        }
    }

    #[test]
    fn the_scope_cuts_candidates_but_counts_every_row() {
        let upn = "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com";
        let text = format!("{INVITE}\n{}\n", redeem("r1", upn));
        let scope = Scope {
            tenants: vec!["t1".into()],
            ..Scope::default()
        };
        let raw = scan("k.json", text.as_bytes(), &scope).unwrap();
        assert_eq!(raw.candidates.len(), 1);
        assert_eq!(raw.rows, 2);
        let since = Scope {
            since: Some(parse_instant("2024-01-01").unwrap()),
            ..Scope::default()
        };
        let raw = scan("k.json", text.as_bytes(), &since).unwrap();
        assert_eq!(raw.candidates.id, [Some("r1".to_string())]);
    }

    fn marked_walk(line: &[u8]) -> Option<Counted<'_>> {
        let mut m = Marks::default();
        m.mark(line);
        let s = sniff::sniff(line, &m)?;
        assert_eq!(
            s.unicode_escape,
            has_unicode_escape(line),
            "{}",
            String::from_utf8_lossy(line)
        );
        counted(s)
    }

    /// Whether a line the walk reads holds a `\u` escape, byte by byte: its backslashes are
    /// all inside strings.
    fn has_unicode_escape(line: &[u8]) -> bool {
        let mut bytes = line.iter();
        while let Some(&b) = bytes.next() {
            if b == b'\\' && bytes.next() == Some(&b'u') {
                return true;
            }
        }
        false
    }

    #[test]
    fn the_walk_counts_a_dropped_line_as_the_parse_does() {
        use rand::{Rng, SeedableRng};
        let export = r#"{"TenantId":"ws","AADTenantId":"t2","TimeGenerated":"2026-03-01T09:00:00.5Z","Id":"x","OperationName":"Update user","TargetResources":[{"displayName":"a \"b\" ]"}],"DurationMs":0,"Ok":true,"N":null}"#;
        // Escapes: a `\u` one, and an escaped backslash before a `u`, which is none.
        let escaped =
            r#"{"TenantId":"ws","TimeGenerated":"2026-03-01T09:00:00Z","Note":"caf\u00e9"}"#;
        let not_escaped =
            r#"{"TenantId":"ws","TimeGenerated":"2026-03-01T09:00:00Z","Path":"C:\\u00e9"}"#;
        let lines: Vec<&str> = HOUR
            .lines()
            .chain([INVITE.trim_end(), export, escaped, not_escaped])
            .collect();
        for line in &lines {
            let walked = marked_walk(line.as_bytes());
            assert!(walked.is_some(), "the walk reads a real record: {line}");
            assert_eq!(walked, parsed(line.as_bytes()), "{line}");
        }
        // Damaged copies: a line the walk reads, the parse reads too, the same.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(15);
        let (mut agreed, mut left_to_parse) = (0, 0);
        for _ in 0..20_000 {
            let mut b = lines[rng.gen_range(0..lines.len())].as_bytes().to_vec();
            for _ in 0..rng.gen_range(1..3) {
                if b.is_empty() {
                    break;
                }
                let at = rng.gen_range(0..b.len());
                match rng.gen_range(0..3) {
                    0 => {
                        b.remove(at);
                    }
                    1 => b.insert(at, b"{}[]\",:\\ 0an\xff"[rng.gen_range(0..13)]),
                    _ => b.truncate(at),
                }
            }
            match (marked_walk(&b), parsed(&b)) {
                (Some(w), Some(p)) => {
                    assert_eq!(w, p, "{}", String::from_utf8_lossy(&b));
                    agreed += 1;
                }
                (None, _) => left_to_parse += 1,
                (Some(_), None) => panic!("walked, not parsed: {}", String::from_utf8_lossy(&b)),
            }
        }
        assert!(
            agreed > 1_000 && left_to_parse > 1_000,
            "{agreed} {left_to_parse}"
        );
    }
}
