//! Where the archive lives and where reports go: a local folder, Azure Blob / ADLS, S3 or GCS,
//! all through `object_store`. Listing, reading and writing use the same store, so a bucket
//! behaves like a folder. Objects are read with ranged requests for only the column chunks the
//! job needs (plus the footer); everything else in the object is never transferred.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutPayload, RetryConfig,
};
use polars_parquet::parquet::metadata::FileMetadata;
use url::Url;

use crate::error::{Error, Result};
use crate::prune::{object_may_match, row_group_may_match, TimeWindow};

/// One Parquet object of the archive.
#[derive(Debug, Clone)]
pub struct SourceObject {
    /// Key relative to the archive root, `/`-separated (what messages and metrics show).
    pub key: String,
    pub location: ObjectPath,
    pub size: u64,
    pub e_tag: Option<String>,
    pub last_modified: Option<String>,
}

/// A resolved `--archive` or `--out`: a store and a prefix inside it.
#[derive(Clone)]
pub struct Location {
    /// What the user gave, without any query string (SAS tokens live there).
    pub display: String,
    pub store: Arc<dyn ObjectStore>,
    pub prefix: ObjectPath,
    /// Set when the location is a single object rather than a prefix.
    single: Option<SourceObject>,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

/// Values that must never be printed: keys, SAS tokens and secrets from the environment and
/// from `--storage-option`. Every message leaving the binary goes through [`redact`].
static SECRETS: OnceLock<Vec<String>> = OnceLock::new();

const SECRET_ENV: [&str; 12] = [
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_TOKEN",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AWS_TOKEN",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
];

fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["key", "secret", "token", "sas", "password", "signature"]
        .iter()
        .any(|w| k.contains(w))
        && !k.ends_with("key_id")
        && !k.ends_with("access_key_id")
}

fn register_secrets(options: &[(String, String)]) {
    let mut v: Vec<String> = SECRET_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .chain(
            options
                .iter()
                .filter(|(k, _)| is_secret_key(k))
                .map(|(_, v)| v.clone()),
        )
        .filter(|s| s.len() >= 4)
        .collect();
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let _ = SECRETS.set(v);
}

/// Replaces every known secret value (and URL query strings) in `msg`.
pub fn redact(msg: &str) -> String {
    let mut out = msg.to_string();
    if let Some(secrets) = SECRETS.get() {
        for s in secrets {
            out = out.replace(s.as_str(), "***");
        }
    }
    // SAS signatures travel in query strings; mask any `sig=` value that slipped through.
    let mut pos = 0;
    while let Some(rel) = out[pos..].find("sig=") {
        let start = pos + rel + 4;
        let end = out[start..]
            .find(|c: char| c == '&' || c.is_whitespace() || c == '"' || c == '\'')
            .map_or(out.len(), |e| start + e);
        out.replace_range(start..end, "***");
        pos = start + 3;
    }
    out
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the I/O runtime: {e}")))
}

fn rt() -> Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if RT.get().is_none() {
        let _ = RT.set(runtime()?);
    }
    Ok(RT.get().expect("runtime set"))
}

/// Runs async storage calls from the synchronous pipeline.
pub fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    Ok(rt()?.block_on(f))
}

/// Starts storage work in the background (fetching the next objects while these decode).
pub fn spawn<F>(f: F) -> Result<tokio::task::JoinHandle<F::Output>>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    Ok(rt()?.spawn(f))
}

fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 5,
        retry_timeout: Duration::from_secs(60),
    }
}

fn is_url(spec: &str) -> bool {
    spec.contains("://")
}

fn display_url(spec: &str) -> String {
    match spec.split_once('?') {
        Some((base, _)) => base.to_string(),
        None => spec.to_string(),
    }
}

fn usage_option(url: &str, key: &str, why: impl std::fmt::Display) -> Error {
    Error::Usage(format!("--storage-option `{key}` for `{url}`: {why}"))
}

/// Resolves a path or URL. `create` makes a missing local folder (for `--out`).
pub fn resolve(spec: &str, options: &[(String, String)], create: bool) -> Result<Location> {
    register_secrets(options);
    let display = display_url(spec);
    if !is_url(spec) {
        return local(Path::new(spec), &display, create);
    }
    let url =
        Url::parse(spec).map_err(|e| Error::Usage(format!("invalid URL `{display}`: {e}")))?;
    let (scheme, prefix) = ObjectStoreScheme::parse(&url)
        .map_err(|_| Error::Usage(format!("unsupported storage URL `{display}`: use a path, file://, az://, abfs[s]://, https://<account>.blob.core.windows.net/, s3:// or gs://")))?;
    let unreachable = |e: object_store::Error| Error::ArchiveUnreadable {
        location: display.clone(),
        reason: redact(&e.to_string()),
    };
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::Local => {
            let path = url
                .to_file_path()
                .map_err(|_| Error::Usage(format!("invalid file URL `{display}`")))?;
            return local(&path, &display, create);
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut b = MicrosoftAzureBuilder::from_env().with_url(spec).with_retry(retry());
            for (k, v) in options {
                let key: AzureConfigKey = k.parse().map_err(|e| usage_option(&display, k, e))?;
                b = b.with_config(key, v);
            }
            Arc::new(b.build().map_err(unreachable)?)
        }
        ObjectStoreScheme::AmazonS3 => {
            let mut b = AmazonS3Builder::from_env().with_url(spec).with_retry(retry());
            for (k, v) in options {
                let key: AmazonS3ConfigKey = k.parse().map_err(|e| usage_option(&display, k, e))?;
                b = b.with_config(key, v);
            }
            Arc::new(b.build().map_err(unreachable)?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let mut b = GoogleCloudStorageBuilder::from_env().with_url(spec).with_retry(retry());
            for (k, v) in options {
                let key: GoogleConfigKey = k.parse().map_err(|e| usage_option(&display, k, e))?;
                b = b.with_config(key, v);
            }
            Arc::new(b.build().map_err(unreachable)?)
        }
        _ => {
            return Err(Error::Usage(format!(
                "unsupported storage URL `{display}`: use a path, file://, az://, abfs[s]://, https://<account>.blob.core.windows.net/, s3:// or gs://"
            )))
        }
    };
    Ok(Location {
        display,
        store,
        prefix,
        single: None,
    })
}

fn local(path: &Path, display: &str, create: bool) -> Result<Location> {
    let unreadable = |reason: String| Error::ArchiveUnreadable {
        location: display.to_string(),
        reason,
    };
    if create {
        std::fs::create_dir_all(path).map_err(|e| Error::write(path, e))?;
    }
    let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    let (root, single) = if meta.is_file() {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let obj = SourceObject {
            key: name.clone(),
            location: ObjectPath::from(name.as_str()),
            size: meta.len(),
            e_tag: None,
            last_modified: meta
                .modified()
                .ok()
                .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339()),
        };
        (parent.to_path_buf(), Some(obj))
    } else {
        (path.to_path_buf(), None)
    };
    let store = LocalFileSystem::new_with_prefix(&root).map_err(|e| unreadable(e.to_string()))?;
    Ok(Location {
        display: display.to_string(),
        store: Arc::new(store),
        prefix: ObjectPath::default(),
        single,
    })
}

/// What listing found.
pub struct Listing {
    /// Every `*.parquet` object in the folders visited, sorted by key.
    pub objects: Vec<SourceObject>,
    /// Date folders not listed because they cannot hold events in the window.
    pub folders_pruned: usize,
}

/// Lists the `*.parquet` objects under the location. With an open window it is one flat
/// listing; otherwise it walks the folders and does not descend into date folders (see
/// [`crate::prune::key_span`]) outside the window. Other hive-style names are just folders.
pub fn list_archive(loc: &Location, window: &TimeWindow) -> Result<Listing> {
    let window = *window;
    if let Some(obj) = &loc.single {
        return Ok(Listing {
            objects: vec![obj.clone()],
            folders_pruned: 0,
        });
    }
    let unreadable = |reason: String| Error::ArchiveUnreadable {
        location: loc.display.clone(),
        reason: redact(&reason),
    };
    let root = (!loc.prefix.as_ref().is_empty()).then_some(&loc.prefix);
    let strip = loc.prefix.as_ref().len();
    let relative = |p: &ObjectPath| -> String {
        p.as_ref()
            .get(strip..)
            .unwrap_or("")
            .trim_start_matches('/')
            .to_string()
    };
    let mut metas = Vec::new();
    let mut folders_pruned = 0;
    // Exporters may file a late event under a later folder than its TimeGenerated, never an
    // earlier one: folders are pruned on the `--since` side only.
    let folder_window = TimeWindow {
        since: window.since,
        until: None,
    };
    if folder_window.is_open() {
        metas = block_on(loc.store.list(root).try_collect::<Vec<_>>())?
            .map_err(|e| unreadable(e.to_string()))?;
    } else {
        let mut stack: Vec<Option<ObjectPath>> = vec![root.cloned()];
        while let Some(dir) = stack.pop() {
            let listed = block_on(loc.store.list_with_delimiter(dir.as_ref()))?
                .map_err(|e| unreadable(e.to_string()))?;
            metas.extend(listed.objects);
            for sub in listed.common_prefixes {
                // `key_span` reads folder names; the trailing segment stands for a file.
                if object_may_match(&format!("{}/_", relative(&sub)), &folder_window) {
                    stack.push(Some(sub));
                } else {
                    folders_pruned += 1;
                }
            }
        }
    }
    let mut objects: Vec<SourceObject> = metas
        .into_iter()
        .filter_map(|m| {
            let key = relative(&m.location);
            is_data_object(&key).then(|| SourceObject {
                key,
                location: m.location.clone(),
                size: m.size,
                e_tag: m.e_tag.clone(),
                last_modified: Some(m.last_modified.to_rfc3339()),
            })
        })
        .collect();
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    if objects.is_empty() && folders_pruned == 0 {
        return Err(unreadable("no `*.parquet` objects found".into()));
    }
    Ok(Listing {
        objects,
        folders_pruned,
    })
}

/// Parquet data objects only: hidden and `_`-prefixed names (`_SUCCESS`, `.crc`, staging
/// files) are bookkeeping of the writers, not data.
fn is_data_object(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.to_ascii_lowercase().ends_with(".parquet")
        && !key
            .split('/')
            .any(|seg| seg.starts_with('.') || seg.starts_with('_'))
}

/// An object's bytes as far as the job needs them: the footer and the chunks of the needed
/// columns in the row groups that can matter, as fetched; nothing else is ever fetched.
pub struct Fetched {
    /// `(offset, bytes)` of every fetched range, by offset.
    pub parts: Vec<(u64, Bytes)>,
    pub size: u64,
    /// The parsed footer (`None` when every row group was pruned).
    pub meta: Option<FileMetadata>,
    /// The row groups fetched.
    pub groups: Range<usize>,
    pub bytes_read: u64,
    pub row_groups: usize,
    pub row_groups_pruned: usize,
    /// Rows to read, `(offset, len)`, when row groups at the ends were pruned; `None`: all.
    pub rows: Option<(u64, u64)>,
}

impl Fetched {
    /// The object as one buffer of its full size, the fetched ranges at their true offsets and
    /// zeros elsewhere (lazily zeroed: untouched pages cost no memory).
    pub fn sparse(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.size as usize];
        for (start, b) in &self.parts {
            buf[*start as usize..*start as usize + b.len()].copy_from_slice(b);
        }
        buf
    }

    /// The bytes of `r`, when it was fetched: a slice of one part, or a copy across parts.
    pub fn range(&self, r: Range<u64>) -> Option<Bytes> {
        let i = self
            .parts
            .partition_point(|(s, _)| *s <= r.start)
            .checked_sub(1)?;
        let (s, b) = &self.parts[i];
        let off = (r.start - s) as usize;
        if off + (r.end - r.start) as usize <= b.len() {
            return Some(b.slice(off..off + (r.end - r.start) as usize));
        }
        let mut out = Vec::with_capacity((r.end - r.start) as usize);
        let mut at = r.start;
        for (s, b) in &self.parts[i..] {
            if *s > at || at >= r.end {
                break;
            }
            let from = (at - s) as usize;
            let to = ((r.end - s) as usize).min(b.len());
            if from >= to {
                continue;
            }
            out.extend_from_slice(&b[from..to]);
            at = s + to as u64;
        }
        (at == r.end).then(|| Bytes::from(out))
    }
}

const TAIL: u64 = 64 * 1024;

/// Fetches the footer, then every needed column chunk of the contiguous run of row groups
/// whose statistics can fall in `window` (all of them when `None`), with one ranged request
/// each, coalesced by the store.
pub async fn fetch_needed(
    store: &dyn ObjectStore,
    obj: &SourceObject,
    columns: &[&str],
    window: Option<TimeWindow>,
) -> Result<Fetched> {
    let keep_row_group =
        |meta: &FileMetadata, rg: usize| window.is_none_or(|w| row_group_may_match(meta, rg, &w));
    let unreadable = |e: object_store::Error| Error::ObjectUnreadable {
        object: obj.key.clone(),
        reason: redact(&e.to_string()),
    };
    let corrupt = |reason: String| Error::CorruptObject {
        object: obj.key.clone(),
        reason,
    };
    let size = obj.size;
    if size < 12 {
        return Err(corrupt(format!("{size} bytes is too small for Parquet")));
    }
    let tail_start = size.saturating_sub(TAIL);
    let tail = store
        .get_range(&obj.location, tail_start..size)
        .await
        .map_err(unreadable)?;
    let changed = || Error::ObjectUnreadable {
        object: obj.key.clone(),
        reason: "the object changed while it was read (size differs from the listing)".into(),
    };
    if tail.len() as u64 != size - tail_start {
        return Err(changed());
    }
    let mut read = tail.len() as u64;
    let n = tail.len();
    if n < 8 || &tail[n - 4..] != b"PAR1" {
        return Err(corrupt(
            "no Parquet magic bytes at the end (corrupt or truncated)".into(),
        ));
    }
    let footer_len = u32::from_le_bytes(tail[n - 8..n - 4].try_into().expect("4 bytes")) as u64;
    if footer_len + 12 > size {
        return Err(corrupt(format!(
            "footer length {footer_len} exceeds the object size {size}"
        )));
    }
    let footer_start = size - 8 - footer_len;
    let mut parts: Vec<(u64, Bytes)> = vec![(tail_start, tail)];
    if footer_start < tail_start {
        let more = store
            .get_range(&obj.location, footer_start..tail_start)
            .await
            .map_err(unreadable)?;
        if more.len() as u64 != tail_start - footer_start {
            return Err(changed());
        }
        read += more.len() as u64;
        parts.insert(0, (footer_start, more));
    }
    // The footer alone: its offsets are absolute, so it parses without the rest of the object.
    let footer: Vec<u8> = parts
        .iter()
        .flat_map(|(_, b)| b.iter().copied())
        .skip((footer_start - parts[0].0) as usize)
        .collect();
    let meta = polars_parquet::parquet::read::read_metadata_with_size(
        &mut Cursor::new(&footer[..]),
        footer.len() as u64,
    )
    .map_err(|e| corrupt(format!("unreadable footer: {e}")))?;
    let groups = meta.row_groups.len();
    let kept: Vec<usize> = (0..groups).filter(|&i| keep_row_group(&meta, i)).collect();
    let (first, last) = match (kept.first(), kept.last()) {
        (Some(&f), Some(&l)) => (f, l),
        _ => {
            return Ok(Fetched {
                parts: Vec::new(),
                size,
                meta: None,
                groups: 0..0,
                bytes_read: read,
                row_groups: groups,
                row_groups_pruned: groups,
                rows: Some((0, 0)),
            })
        }
    };
    let mut ranges: BTreeSet<(u64, u64)> = BTreeSet::new();
    for rg in &meta.row_groups[first..=last] {
        for name in columns {
            for chunk in rg.columns_under_root_iter(name).into_iter().flatten() {
                // Checked here: `byte_range()` panics on negative sizes from a corrupt footer.
                let start = chunk
                    .dictionary_page_offset()
                    .unwrap_or_else(|| chunk.data_page_offset());
                let len = chunk.compressed_size();
                let r = match (u64::try_from(start), u64::try_from(len)) {
                    (Ok(s), Ok(l)) if s.checked_add(l).is_some() => s..s + l,
                    _ => {
                        return Err(corrupt(format!(
                            "column chunk of `{name}` has offset {start} and size {len}"
                        )))
                    }
                };
                if r.end > footer_start || r.start > r.end {
                    return Err(corrupt(format!(
                        "column chunk of `{name}` lies outside the data ({r:?})"
                    )));
                }
                // Bytes already in the tail read are not fetched again.
                let end = r.end.min(tail_start);
                if r.start < end {
                    ranges.insert((r.start, end));
                }
            }
        }
    }
    let ranges: Vec<Range<u64>> = ranges.into_iter().map(|(s, e)| s..e).collect();
    let got: Vec<Bytes> = store
        .get_ranges(&obj.location, &ranges)
        .await
        .map_err(unreadable)?;
    for (r, b) in ranges.iter().zip(got) {
        if b.len() as u64 != r.end - r.start {
            return Err(changed());
        }
        read += b.len() as u64;
        parts.push((r.start, b));
    }
    parts.sort_by_key(|(s, _)| *s);
    let rows_before: u64 = meta.row_groups[..first]
        .iter()
        .map(|g| g.num_rows() as u64)
        .sum();
    let rows_kept: u64 = meta.row_groups[first..=last]
        .iter()
        .map(|g| g.num_rows() as u64)
        .sum();
    let pruned = groups - (last - first + 1);
    Ok(Fetched {
        parts,
        size,
        meta: Some(meta),
        groups: first..last + 1,
        bytes_read: read,
        row_groups: groups,
        row_groups_pruned: pruned,
        rows: (pruned > 0).then_some((rows_before, rows_kept)),
    })
}

/// Destination for reports. Every object is written whole with one `put`: the local store
/// stages it under a temporary name and renames it into place, and an object store makes it
/// visible only when complete, so a failed run never leaves half a report behind.
pub struct Sink {
    loc: Location,
}

impl Sink {
    pub fn open(loc: Location) -> Self {
        Sink { loc }
    }

    fn location(&self, key: &str) -> Result<ObjectPath> {
        let full = if self.loc.prefix.as_ref().is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.loc.prefix.as_ref())
        };
        ObjectPath::parse(&full).map_err(|e| Error::write(self.describe(key), e))
    }

    fn describe(&self, key: &str) -> PathBuf {
        PathBuf::from(format!("{}/{key}", self.loc.display.trim_end_matches('/')))
    }

    pub fn put(&self, key: &str, data: Vec<u8>) -> Result<()> {
        let location = self.location(key)?;
        let payload = PutPayload::from(Bytes::from(data));
        block_on(self.loc.store.put(&location, payload))?
            .map_err(|e| Error::write(self.describe(key), redact(&e.to_string())))?;
        Ok(())
    }

    pub fn display(&self) -> &str {
        &self.loc.display
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_parquet_objects_are_data() {
        assert!(is_data_object("y=2026/m=03/d=01/part-0.parquet"));
        assert!(is_data_object("TenantId=abc/PART.PARQUET"));
        assert!(!is_data_object("y=2026/_SUCCESS"));
        assert!(!is_data_object("_delta_log/x.parquet"));
        assert!(!is_data_object("y=2026/.part-0.parquet.crc"));
        assert!(!is_data_object("notes.json"));
    }

    #[test]
    fn urls_resolve_to_their_stores_and_prefixes() {
        let cases = [
            ("az://logs/audit/2026", "audit/2026"),
            ("abfss://logs@acct.dfs.core.windows.net/audit", "audit"),
            ("https://acct.blob.core.windows.net/logs/audit/x", "audit/x"),
            ("s3://bucket/a/b", "a/b"),
            ("gs://bucket/a", "a"),
        ];
        for (url, prefix) in cases {
            let opts = [
                ("azure_storage_account_name".to_string(), "acct".to_string()),
                (
                    "azure_storage_account_key".to_string(),
                    "a2V5a2V5".to_string(),
                ),
            ];
            let opts: &[(String, String)] = if url.contains("az") || url.contains("windows") {
                &opts
            } else {
                &[]
            };
            let loc = resolve(url, opts, false).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(loc.prefix.as_ref(), prefix, "{url}");
        }
        let err = resolve("ftp://host/x", &[], false).unwrap_err().to_string();
        assert!(err.contains("unsupported storage URL"), "{err}");
        let bad = [("not_a_key".to_string(), "v".to_string())];
        let err = resolve("s3://bucket/a", &bad, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`not_a_key`"), "{err}");
    }

    #[test]
    fn sas_tokens_never_reach_messages() {
        assert_eq!(
            display_url("https://a.blob.core.windows.net/c/p?sv=1&sig=SECRET"),
            "https://a.blob.core.windows.net/c/p"
        );
        assert_eq!(
            redact("GET https://x/c?sv=1&sig=abc&se=2 failed"),
            "GET https://x/c?sv=1&sig=***&se=2 failed"
        );
        assert!(is_secret_key("azure_storage_account_key"));
        assert!(is_secret_key("aws_secret_access_key"));
        assert!(!is_secret_key("aws_access_key_id"));
        assert!(!is_secret_key("azure_storage_account_name"));
    }
}
