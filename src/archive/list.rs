//! Listing the archive's data objects (Parquet, JSON Lines), with or without descending into
//! every folder.

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::ObjectMeta;

use super::location::{ArchiveObject, Location};
use super::runtime::block_on;
use crate::error::{Error, Result};

/// What listing found.
pub(crate) struct Listing {
    /// Every data object in the folders visited, sorted by key.
    pub(crate) objects: Vec<ArchiveObject>,
    /// Folders not listed because `descend` said they hold nothing in scope.
    pub(crate) folders_pruned: usize,
    /// Their paths (ending in `/`), when this listing pruned them (a plan holds only the count).
    pub(crate) pruned_folders: Vec<String>,
    /// Keys of the objects listed but dropped as out of scope (another tenant's `TenantId=`
    /// folder).
    pub(crate) out_of_scope: Vec<String>,
}

/// Lists the data objects under the location. Without `descend` it is one flat listing (from
/// a store, raced by a parallel walk); with it, the folders are walked and a folder (its path
/// relative to the root) is entered only when `descend` says so. A local folder is walked
/// with the operating system's directory reads either way.
pub(crate) fn list_archive(
    loc: &Location,
    descend: Option<&dyn Fn(&str) -> bool>,
) -> Result<Listing> {
    if let Some(obj) = &loc.single {
        return Ok(Listing {
            objects: vec![obj.clone()],
            folders_pruned: 0,
            pruned_folders: Vec::new(),
            out_of_scope: Vec::new(),
        });
    }
    let root = (!loc.prefix.as_ref().is_empty()).then_some(loc.prefix.clone());
    let listed = match (descend, &loc.folder) {
        (descend, Some(folder)) => super::folder::walk_folder(folder, descend),
        (Some(descend), None) => block_on(walk(loc, root, Some(descend), usize::MAX))?,
        // A store: one listing of pages one after the other, or a walk that lists at once the
        // folders of the first level that has enough of them; the first done is taken. A few
        // thousand objects are a page or two, quicker than the walk's levels; a million take
        // hundreds of pages, which the walk splits.
        (None, None) if loc.remote => block_on(first_done(
            async { Ok((flat(loc, root.as_ref()).await?, Vec::new())) },
            walk(loc, root.clone(), None, SPLIT_AT),
        ))?,
        (None, None) => block_on(async { Ok((flat(loc, root.as_ref()).await?, Vec::new())) })?,
    };
    let (metas, mut pruned_folders) = listed.map_err(unreadable(loc))?;
    let mut objects: Vec<ArchiveObject> = metas
        .into_iter()
        .filter_map(|m| {
            let key = relative(loc, &m.location);
            is_data_object(&key).then(|| ArchiveObject {
                key,
                size: m.size,
                e_tag: m.e_tag.clone(),
                last_modified: Some(m.last_modified),
            })
        })
        .collect();
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    if objects.is_empty() && pruned_folders.is_empty() {
        return Err(Error::archive(
            &loc.display,
            Some(
                "no data objects found (`*.parquet`, `*.json`, `*.jsonl`, or either gzip'd)".into(),
            ),
            None,
        ));
    }
    pruned_folders.sort();
    Ok(Listing {
        objects,
        folders_pruned: pruned_folders.len(),
        pruned_folders,
        out_of_scope: Vec::new(),
    })
}

/// Folders listed at once.
const LIST_PARALLEL: usize = 32;

/// A level of this many folders (or more) is listed flat, each folder at once: fewer requests
/// than walking on (a day's hourly folders hold a blob each), and a store lists a folder in
/// pages of 1,000 (S3) or 5,000 (Azure) objects, one after the other.
const SPLIT_AT: usize = 16;

fn unreadable(loc: &Location) -> impl Fn(object_store::Error) -> Error + '_ {
    |e| Error::archive(&loc.display, None, Some(e.into()))
}

/// Times a listing is asked for, in all, when its answer is cut halfway.
const LIST_ATTEMPTS: u32 = 4;

/// `list` again when its answer was cut halfway: object_store retries a request that fails,
/// not a body that breaks off while it is read (a listing's pages are read whole), and a walk
/// makes many requests. Other errors are final (object_store has retried them already).
async fn again<T, Fut>(list: impl Fn() -> Fut) -> object_store::Result<T>
where
    Fut: std::future::Future<Output = object_store::Result<T>>,
{
    let mut attempt = 1;
    loop {
        match list().await {
            Err(e) if attempt < LIST_ATTEMPTS && is_cut(&e) => {
                tokio::time::sleep(std::time::Duration::from_millis(100) * attempt).await;
                attempt += 1;
            }
            done => return done,
        }
    }
}

/// A listing's answer that broke off while its body was read (object_store says so only in
/// its message).
fn is_cut(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::Generic { .. }) && e.to_string().contains("response body")
}

/// Every object under `root`, in one listing.
async fn flat(loc: &Location, root: Option<&ObjectPath>) -> object_store::Result<Vec<ObjectMeta>> {
    again(|| loc.store.list(root).try_collect::<Vec<_>>()).await
}

/// What `a` or `b` gives, whichever is done first with no error (else the first error).
async fn first_done<T>(
    a: impl std::future::Future<Output = object_store::Result<T>>,
    b: impl std::future::Future<Output = object_store::Result<T>>,
) -> object_store::Result<T> {
    use futures::future::{select, Either};
    futures::pin_mut!(a, b);
    match select(a, b).await {
        Either::Left((Ok(v), _)) | Either::Right((Ok(v), _)) => Ok(v),
        Either::Left((Err(e), other)) => other.await.map_err(|_| e),
        Either::Right((Err(e), other)) => other.await.map_err(|_| e),
    }
}

/// Walks the folders under `root` a level at a time, the folders of a level listed at once (a
/// round trip each, not one after the other). Enters a folder when `descend` says so (and
/// returns those it did not enter), and lists flat each folder of a level that has at least
/// `split_at` of them.
async fn walk(
    loc: &Location,
    root: Option<ObjectPath>,
    descend: Option<&dyn Fn(&str) -> bool>,
    split_at: usize,
) -> object_store::Result<(Vec<ObjectMeta>, Vec<String>)> {
    let (mut metas, mut pruned) = (Vec::new(), Vec::new());
    let mut level = vec![root];
    while !level.is_empty() {
        if level.len() >= split_at {
            let lists = futures::stream::iter(level.iter())
                .map(|dir| flat(loc, dir.as_ref()))
                .buffer_unordered(LIST_PARALLEL)
                .try_collect::<Vec<_>>();
            metas.extend(lists.await?.into_iter().flatten());
            break;
        }
        let store = &loc.store;
        let lists = futures::stream::iter(level.iter())
            .map(|dir| again(|| store.list_with_delimiter(dir.as_ref())))
            .buffer_unordered(LIST_PARALLEL)
            .try_collect::<Vec<_>>();
        let mut next = Vec::new();
        for listed in lists.await? {
            metas.extend(listed.objects);
            for sub in listed.common_prefixes {
                match descend {
                    Some(descend) if !descend(&relative(loc, &sub)) => {
                        pruned.push(format!("{}/", relative(loc, &sub)));
                    }
                    _ => next.push(Some(sub)),
                }
            }
        }
        level = next;
    }
    Ok((metas, pruned))
}

/// A listed path relative to the location's prefix.
fn relative(loc: &Location, p: &ObjectPath) -> String {
    p.as_ref()
        .get(loc.prefix.as_ref().len()..)
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string()
}

/// Parquet and JSON Lines objects only: hidden and `_`-prefixed names (`_SUCCESS`, `.crc`,
/// staging files, a Delta log) are bookkeeping of the writers, not data.
fn is_data_object(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    (name.to_ascii_lowercase().ends_with(".parquet") || super::is_json_key(key))
        && !key
            .split('/')
            .any(|seg| seg.starts_with('.') || seg.starts_with('_'))
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
        assert!(is_data_object("y=2026/m=01/d=02/h=03/m=00/PT1H.json"));
        assert!(is_data_object("w/PT05M_1.JSON"));
        assert!(is_data_object("a/b.jsonl.gz") && is_data_object("a/b.json.gz"));
        assert!(!is_data_object("_delta_log/00000.json"));
        assert!(!is_data_object("notes.txt") && !is_data_object("a.gz"));
    }
}
