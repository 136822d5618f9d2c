//! Destination for reports. Every object is written whole with one `put`: the local store
//! stages it under a temporary name and renames it into place, and an object store makes it
//! visible only when complete, so a failed run never leaves half a report behind.

use std::path::PathBuf;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};

use super::location::Location;
use super::runtime::block_on;
use crate::error::{Error, Result};

/// Puts in flight at once when writing many reports.
const CONCURRENT_PUTS: usize = 16;

pub(crate) struct Sink {
    loc: Location,
}

impl Sink {
    pub(crate) fn open(loc: Location) -> Self {
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

    async fn put_async(&self, key: &str, data: Vec<u8>) -> Result<()> {
        let location = self.location(key)?;
        let payload = PutPayload::from(Bytes::from(data));
        self.loc
            .store
            .put(&location, payload)
            .await
            .map_err(|e| Error::write(self.describe(key), e))?;
        Ok(())
    }

    pub(crate) fn put(&self, key: &str, data: Vec<u8>) -> Result<()> {
        block_on(self.put_async(key, data))?
    }

    /// Removes `key`, if it is there. Looked up first (a retried GET): most runs write into a
    /// fresh folder and need no delete, which some stores send as a batch POST that
    /// object_store does not retry after a timeout, so a delete is tried three times.
    /// Credentials that may write but not read or delete leave the key in place: the run's own
    /// put replaces it at the end.
    pub(crate) fn remove(&self, key: &str) -> Result<()> {
        let location = self.location(key)?;
        let store = &self.loc.store;
        let fail = |e| Error::write(self.describe(key), e);
        let refused = |e: &Error| e.exit_code() == crate::error::exit::USAGE;
        match block_on(store.head(&location))?.map_err(fail) {
            Err(Error::Write { source, .. })
                if matches!(
                    source.downcast_ref::<object_store::Error>(),
                    Some(object_store::Error::NotFound { .. })
                ) =>
            {
                return Ok(())
            }
            Err(e) if refused(&e) => return Ok(()),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        for tries in 1.. {
            match block_on(store.delete(&location))? {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => return Ok(()),
                Err(e) => {
                    let e = fail(e);
                    if refused(&e) {
                        return Ok(());
                    }
                    if tries == 3 {
                        return Err(e);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200 * tries));
                }
            }
        }
        Ok(())
    }

    /// Writes every `(key, bytes)`, several at a time; stops at the first failure.
    pub(crate) fn put_all(&self, files: Vec<(String, Vec<u8>)>) -> Result<()> {
        block_on(
            futures::stream::iter(files)
                .map(|(key, data)| async move { self.put_async(&key, data).await })
                .buffer_unordered(CONCURRENT_PUTS)
                .try_collect::<Vec<()>>(),
        )??;
        Ok(())
    }

    pub(crate) fn display(&self) -> &str {
        &self.loc.display
    }
}
