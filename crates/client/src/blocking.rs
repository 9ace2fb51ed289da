//! The same client for synchronous programs (the benchmarks): each call runs the async client
//! to completion on a private single-threaded runtime, which also drives the connection's
//! reader while the call waits.

use ai_session_protocol::Notification;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Options, Selector};

/// A connection to the daemon, one call at a time.
pub struct Client {
    // Dropped before the runtime: the connection's reader task belongs to it.
    inner: crate::Client,
    rt: tokio::runtime::Runtime,
}

impl Client {
    /// Connects as [`crate::Client::connect`] does.
    pub fn connect(sel: &Selector, opts: &Options) -> Result<Self, Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let inner = rt.block_on(crate::Client::connect(sel, opts))?;
        Ok(Self { inner, rt })
    }

    /// Calls the registry's method `M` with its typed params; its typed result.
    pub fn invoke<M: ai_session_protocol::registry::Method>(
        &self,
        params: &M::Params,
    ) -> Result<M::Result, Error> {
        self.rt.block_on(self.inner.invoke::<M>(params))
    }

    /// Calls `method` and decodes its result as `R`.
    pub fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
    ) -> Result<R, Error> {
        self.rt.block_on(self.inner.call(method, params))
    }

    /// Calls `method` and returns its result as JSON.
    pub fn call_value<P: Serialize>(
        &self,
        method: &str,
        params: P,
    ) -> Result<serde_json::Value, Error> {
        self.rt.block_on(self.inner.call_value(method, params))
    }

    /// The next notification, or `None` once the connection is closed.
    pub fn notification(&self) -> Option<Notification> {
        self.rt.block_on(self.inner.notification())
    }
}
