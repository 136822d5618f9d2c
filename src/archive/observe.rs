//! What a remote store's answers say of its load: the requests it throttled (503, as Azure
//! Storage and S3 answer "server busy" and "slow down", or 429), counted before object_store
//! retries them, so that the scan can slow down (`read::pace`).

use std::sync::atomic::{AtomicU64, Ordering};

use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::ClientOptions;

static THROTTLED: AtomicU64 = AtomicU64::new(0);

/// Requests throttled so far, by every remote store of this process.
pub(crate) fn throttled() -> u64 {
    THROTTLED.load(Ordering::Relaxed)
}

/// object_store's own HTTP client, its answers' statuses counted.
#[derive(Debug, Default)]
pub(crate) struct Observed;

impl HttpConnector for Observed {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let client = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Counting(client)))
    }
}

#[derive(Debug)]
struct Counting(HttpClient);

#[async_trait::async_trait]
impl HttpService for Counting {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let res = self.0.execute(req).await?;
        if matches!(res.status().as_u16(), 429 | 503) {
            THROTTLED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(res)
    }
}
