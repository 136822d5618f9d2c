//! One object a user names by path or URL (`--plan`): read whole, or written whole with one
//! put (the local store renames a temporary file into place).

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::location::{display_url, resolve};
use super::runtime::block_on;
use crate::error::{Error, Result};

/// A named object: its store and its path there.
pub(crate) struct NamedObject {
    pub(crate) display: String,
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
}

/// Resolves `spec` to one object; `create` makes a missing local parent folder.
pub(crate) fn named_object(
    spec: &str,
    options: &[(String, String)],
    create: bool,
) -> Result<NamedObject> {
    let display = display_url(spec);
    let local = if spec.starts_with("file://") {
        let url = url::Url::parse(spec)
            .map_err(|e| Error::invalid(format!("invalid URL `{display}`"), e))?;
        Some(
            url.to_file_path()
                .map_err(|_| Error::Usage(format!("invalid file URL `{display}`")))?,
        )
    } else if spec.contains("://") {
        None
    } else {
        Some(Path::new(spec).to_path_buf())
    };
    let Some(path) = local else {
        let loc = resolve(spec, options, false)?;
        if loc.prefix.as_ref().is_empty() {
            return Err(Error::Usage(format!(
                "`{display}` names a container or bucket, not an object"
            )));
        }
        return Ok(NamedObject {
            display,
            store: loc.store,
            path: loc.prefix,
        });
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::Usage(format!("`{display}` names a folder, not a file")))?;
    let parent = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p.to_path_buf(),
        None => std::env::current_dir().map_err(|e| Error::write(&path, e))?,
    };
    if create {
        std::fs::create_dir_all(&parent).map_err(|e| Error::write(&parent, e))?;
    }
    let store = LocalFileSystem::new_with_prefix(&parent).map_err(|e| Error::Input {
        what: "plan",
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    Ok(NamedObject {
        display,
        store: Arc::new(store),
        path: ObjectPath::from(name.as_str()),
    })
}

impl NamedObject {
    pub(crate) fn read(&self, what: &'static str) -> Result<Bytes> {
        let unreadable = |e: object_store::Error| Error::Input {
            what,
            path: self.display.clone().into(),
            source: std::io::Error::other(e),
        };
        block_on(async {
            match self.store.get(&self.path).await {
                Ok(r) => r.bytes().await.map_err(unreadable),
                Err(e) => Err(unreadable(e)),
            }
        })?
    }

    pub(crate) fn write(&self, bytes: Vec<u8>) -> Result<()> {
        block_on(
            self.store
                .put(&self.path, PutPayload::from(Bytes::from(bytes))),
        )?
        .map_err(|e| Error::write(&self.display, e))?;
        Ok(())
    }
}
