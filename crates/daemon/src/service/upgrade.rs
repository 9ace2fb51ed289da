//! `daemon.upgrade`: hand every session to a newly started daemon binary (the work is in
//! `crate::upgrade`).

use std::sync::Arc;

use ai_session_protocol::RpcError;
use ai_session_protocol::methods::{UpgradeParams, UpgradeResult};

use crate::server::Daemon;

pub(super) async fn upgrade(d: &Arc<Daemon>, p: UpgradeParams) -> Result<UpgradeResult, RpcError> {
    crate::upgrade::upgrade(d, p).await
}
