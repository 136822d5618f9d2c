//! A location the user gave (`--archive`, `--out`): a local folder, Azure Blob / ADLS, S3 or
//! GCS, resolved to an `object_store` and a prefix inside it, so a bucket behaves like a folder.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreScheme, RetryConfig};
use url::Url;

use super::observe::Observed;
use super::secrets::register;
use crate::error::{Error, Result};

/// One object of the archive.
#[derive(Debug, Clone)]
pub(crate) struct ArchiveObject {
    /// Key relative to the archive root, `/`-separated (what messages and metrics show).
    pub(crate) key: String,
    pub(crate) size: u64,
    pub(crate) e_tag: Option<String>,
    /// Kept as a time, not its text: one listing can hold a million objects.
    pub(crate) last_modified: Option<chrono::DateTime<chrono::Utc>>,
}

impl ArchiveObject {
    /// Its path in [`Location::objects`]' store. Not kept with it: tens of thousands of
    /// listed objects would hold their paths twice.
    pub(crate) fn path(&self) -> ObjectPath {
        // A listed key is a valid path; a local file's own name may not be, and is encoded.
        ObjectPath::parse(&self.key).unwrap_or_else(|_| ObjectPath::from(self.key.as_str()))
    }
}

/// A resolved location: a store and a prefix inside it.
#[derive(Clone)]
pub(crate) struct Location {
    /// What the user gave, without any query string (SAS tokens live there).
    pub(crate) display: String,
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) prefix: ObjectPath,
    /// Set when the location is a single object rather than a prefix.
    pub(crate) single: Option<ArchiveObject>,
    /// Reached over the network (a request costs a round trip), not a local folder.
    pub(crate) remote: bool,
    /// A local folder's canonical path: listed with the operating system's directory reads.
    pub(crate) folder: Option<std::path::PathBuf>,
}

impl Location {
    /// The store seen from the prefix: the listed objects' keys are their paths in it.
    pub(crate) fn objects(&self) -> Arc<dyn ObjectStore> {
        if self.prefix.as_ref().is_empty() {
            return self.store.clone();
        }
        Arc::new(PrefixStore::new(self.store.clone(), self.prefix.clone()))
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

const SCHEMES: &str = "use a path, file://, az://, abfs[s]://, https://<account>.blob.core.windows.net/, s3:// or gs://";

/// The retry policy for requests to a store, from the options the job reads itself
/// (object_store takes them only through its API); returns the other options. Defaults: 5
/// retries within 60 s, backoff from 100 ms doubling up to 15 s.
fn retry(options: &[(String, String)]) -> Result<(RetryConfig, Vec<(String, String)>)> {
    let mut config = RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 5,
        retry_timeout: Duration::from_secs(60),
    };
    let mut rest = Vec::new();
    for (k, v) in options {
        let bad = |what: &str| Error::Usage(format!("--storage-option `{k}={v}`: expected {what}"));
        let duration = || {
            crate::time::parse_duration(v)
                .ok()
                .and_then(|ns| u64::try_from(ns).ok())
                .map(Duration::from_nanos)
                .ok_or_else(|| bad("a duration such as `500ms`, `30s` or `2m`"))
        };
        match k.as_str() {
            "max_retries" => config.max_retries = v.parse().map_err(|_| bad("a whole number"))?,
            "retry_timeout" => config.retry_timeout = duration()?,
            "backoff_initial" => config.backoff.init_backoff = duration()?,
            "backoff_max" => config.backoff.max_backoff = duration()?,
            "backoff_base" => {
                config.backoff.base = v
                    .parse::<f64>()
                    .ok()
                    .filter(|b| *b >= 1.0)
                    .ok_or_else(|| bad("a number of at least 1"))?
            }
            _ => rest.push((k.clone(), v.clone())),
        }
    }
    Ok((config, rest))
}

/// A location as messages show it: without its query string (SAS tokens live there).
pub(crate) fn display_url(spec: &str) -> String {
    match spec.split_once('?') {
        Some((base, _)) => base.to_string(),
        None => spec.to_string(),
    }
}

fn unsupported(display: &str) -> Error {
    Error::Usage(format!("unsupported storage URL `{display}`: {SCHEMES}"))
}

/// Resolves a path or URL. `create` makes a missing local folder (for `--out`).
pub(crate) fn resolve(spec: &str, options: &[(String, String)], create: bool) -> Result<Location> {
    register(options);
    let display = display_url(spec);
    if !spec.contains("://") {
        return local(Path::new(spec), &display, create);
    }
    let url =
        Url::parse(spec).map_err(|e| Error::invalid(format!("invalid URL `{display}`"), e))?;
    let (scheme, prefix) = ObjectStoreScheme::parse(&url).map_err(|_| unsupported(&display))?;
    let (policy, options) = retry(options)?;
    let options = &options[..];
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::Local => {
            let path = url
                .to_file_path()
                .map_err(|_| Error::Usage(format!("invalid file URL `{display}`")))?;
            return local(&path, &display, create);
        }
        ObjectStoreScheme::MicrosoftAzure => Arc::new(build(
            MicrosoftAzureBuilder::from_env()
                .with_url(spec)
                .with_retry(policy.clone())
                .with_http_connector(Observed),
            options,
            &display,
            |b, k, v| b.with_config(k, v),
            MicrosoftAzureBuilder::build,
        )?),
        ObjectStoreScheme::AmazonS3 => Arc::new(build(
            AmazonS3Builder::from_env()
                .with_url(spec)
                .with_retry(policy.clone())
                .with_http_connector(Observed),
            options,
            &display,
            |b, k, v| b.with_config(k, v),
            AmazonS3Builder::build,
        )?),
        ObjectStoreScheme::GoogleCloudStorage => Arc::new(build(
            GoogleCloudStorageBuilder::from_env()
                .with_url(spec)
                .with_retry(policy.clone())
                .with_http_connector(Observed),
            options,
            &display,
            |b, k, v| b.with_config(k, v),
            GoogleCloudStorageBuilder::build,
        )?),
        _ => return Err(unsupported(&display)),
    };
    Ok(Location {
        display,
        store,
        prefix,
        single: None,
        remote: true,
        folder: None,
    })
}

/// Applies every `--storage-option` to a store builder (its own config keys), then builds it.
fn build<B, K, S>(
    mut builder: B,
    options: &[(String, String)],
    display: &str,
    with: impl Fn(B, K, &str) -> B,
    finish: impl FnOnce(B) -> object_store::Result<S>,
) -> Result<S>
where
    K: std::str::FromStr,
    K::Err: std::fmt::Display,
{
    for (k, v) in options {
        let key: K = k
            .parse()
            .map_err(|e| Error::Usage(format!("--storage-option `{k}` for `{display}`: {e}")))?;
        builder = with(builder, key, v);
    }
    // A store that cannot even be built is configuration (no account, a bad key format).
    finish(builder)
        .map_err(|e| Error::invalid(format!("cannot use storage location `{display}`"), e))
}

fn local(path: &Path, display: &str, create: bool) -> Result<Location> {
    let unreadable =
        |e: Box<dyn std::error::Error + Send + Sync>| Error::archive(display, None, Some(e));
    if create {
        std::fs::create_dir_all(path).map_err(|e| Error::write(path, e))?;
    }
    let meta = std::fs::metadata(path).map_err(|e| unreadable(e.into()))?;
    let (root, single) = if meta.is_file() {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let obj = ArchiveObject {
            key: name,
            size: meta.len(),
            e_tag: None,
            last_modified: meta
                .modified()
                .ok()
                .map(chrono::DateTime::<chrono::Utc>::from),
        };
        (parent.to_path_buf(), Some(obj))
    } else {
        (path.to_path_buf(), None)
    };
    let store = LocalFileSystem::new_with_prefix(&root).map_err(|e| unreadable(e.into()))?;
    let folder = match single {
        None => Some(std::fs::canonicalize(&root).map_err(|e| unreadable(e.into()))?),
        Some(_) => None,
    };
    Ok(Location {
        display: display.to_string(),
        store: Arc::new(store),
        prefix: ObjectPath::default(),
        single,
        remote: false,
        folder,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn gcs_urls_and_options_resolve() {
        // No GCS emulator here: resolution only.
        let loc = resolve(
            "gs://bucket/audit/logs",
            &[("google_skip_signature".into(), "true".into())],
            false,
        )
        .unwrap();
        assert_eq!(loc.prefix.as_ref(), "audit/logs");
        // A malformed service-account key is a clear error that does not echo the key.
        let key = r#"{"type":"service_account","private_key":"TOPSECRETVALUE"}"#;
        let err = resolve(
            "gs://bucket/a",
            &[("google_service_account_key".into(), key.into())],
            false,
        )
        .unwrap_err()
        .report();
        let err = super::super::secrets::redact(&err);
        assert!(
            err.contains("gs://bucket/a") && !err.contains("TOPSECRETVALUE"),
            "{err}"
        );
        let err = resolve("gs://bucket/a", &[("nope".into(), "v".into())], false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`nope`"), "{err}");
    }
}
