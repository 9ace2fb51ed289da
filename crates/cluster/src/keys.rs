//! Listing a bucket's keys without a consumer. The key-value client's `keys()` reads them
//! through an ordered consumer and stops at the message it is told is the last one; an entry
//! that expires between the consumer's creation and its delivery is never delivered, so the
//! listing waits forever (a node record expiring while `nodes` runs did exactly that). The
//! stream's own list of subjects (`STREAM.INFO` with a subject filter, paged) is one bounded
//! request per page and cannot wait for a message that is gone.

use async_nats::jetstream::kv;
use futures_util::StreamExt;

use crate::ClusterError;

/// The keys of `store` that start with `prefix` (a key prefix ending in `.`), in no order.
/// A deleted key's marker is listed too: reading it gives nothing.
pub(crate) async fn keys(
    store: &kv::Store,
    prefix: &str,
    what: &str,
) -> Result<Vec<String>, ClusterError> {
    let filter = format!("{}{prefix}>", store.prefix);
    let mut subjects = store
        .stream
        .info_with_subjects(&filter)
        .await
        .map_err(|e| ClusterError::store(what, e))?;
    let mut keys = Vec::new();
    while let Some(subject) = subjects.next().await {
        let (subject, _) = subject.map_err(|e| ClusterError::store(what, e))?;
        if let Some(key) = subject.strip_prefix(store.prefix.as_str()) {
            keys.push(key.to_string());
        }
    }
    Ok(keys)
}
