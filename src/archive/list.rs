//! Listing the archive's data objects (Parquet, JSON Lines), with or without descending into
//! every folder.

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;

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

/// Lists the data objects under the location. Without `descend` it is one flat listing;
/// with it, the folders are walked and a folder (its path relative to the root) is entered only
/// when `descend` says so.
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
    let unreadable = |e: object_store::Error| Error::archive(&loc.display, None, Some(e.into()));
    let root = (!loc.prefix.as_ref().is_empty()).then_some(&loc.prefix);
    let mut metas = Vec::new();
    let mut pruned_folders = Vec::new();
    match descend {
        None => {
            metas = block_on(loc.store.list(root).try_collect::<Vec<_>>())?.map_err(unreadable)?
        }
        Some(descend) => {
            let mut stack: Vec<Option<ObjectPath>> = vec![root.cloned()];
            while let Some(dir) = stack.pop() {
                let listed =
                    block_on(loc.store.list_with_delimiter(dir.as_ref()))?.map_err(unreadable)?;
                metas.extend(listed.objects);
                for sub in listed.common_prefixes {
                    if descend(&relative(loc, &sub)) {
                        stack.push(Some(sub));
                    } else {
                        pruned_folders.push(format!("{}/", relative(loc, &sub)));
                    }
                }
            }
        }
    }
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
