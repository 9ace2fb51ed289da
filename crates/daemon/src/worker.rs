//! A thread that owns some blocking state (the store, the contexts) and runs jobs on it in
//! order, behind a bounded queue: a caller that finds the queue full waits for room (async
//! back-pressure) or, when it cannot wait, gets a clear error. Memory never grows with a
//! burst of work.

use ai_session_protocol::{ErrorKind, RpcError};
use tokio::sync::{mpsc, oneshot};

type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// What a job of [`Worker::call_then`] leaves to run once its caller has the answer.
pub(crate) type Then<S> = Option<Box<dyn FnOnce(&mut S) + Send>>;

/// The queue in front of one worker thread.
pub(crate) struct Worker<S> {
    tx: mpsc::Sender<Job<S>>,
    name: &'static str,
}

impl<S: Send + 'static> Worker<S> {
    /// Starts the thread `name` owning `state`, with room for `capacity` queued jobs. The
    /// thread ends once every `Worker` handle is dropped and the queue is drained.
    pub(crate) fn start(name: &'static str, capacity: usize, state: S) -> std::io::Result<Self> {
        Self::start_with_exit(name, capacity, state, |_| {})
    }

    /// [`Worker::start`], running `at_exit` on the state once the queue is drained and closed.
    pub(crate) fn start_with_exit(
        name: &'static str,
        capacity: usize,
        mut state: S,
        at_exit: impl FnOnce(&mut S) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Job<S>>(capacity);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Some(job) = rx.blocking_recv() {
                    job(&mut state);
                }
                at_exit(&mut state);
            })?;
        Ok(Worker { tx, name })
    }

    fn gone(&self) -> RpcError {
        RpcError::new(
            ErrorKind::Internal,
            format!("the {} thread is gone", self.name),
        )
        .with_advice(
            ai_session_protocol::hint::Advice::new(
                "the daemon log says why; restart the daemon ({0}, then start it again)",
            )
            .call("daemon.stop", serde_json::json!({})),
        )
    }

    /// Queues a job, waiting for room when the queue is full.
    pub(crate) async fn send(
        &self,
        job: impl FnOnce(&mut S) + Send + 'static,
    ) -> Result<(), RpcError> {
        self.tx.send(Box::new(job)).await.map_err(|_| self.gone())
    }

    /// Runs `f` on the thread and waits for its answer.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S) -> Result<T, RpcError> + Send + 'static,
    ) -> Result<T, RpcError> {
        let (reply, rx) = oneshot::channel();
        self.send(move |state| {
            reply.send(f(state)).ok();
        })
        .await?;
        rx.await.map_err(|_| self.gone())?
    }

    /// Runs `f` on the thread and waits for the answer it gives first; what it gives with the
    /// answer runs right after on the same thread, before any job queued behind, while the
    /// caller goes on.
    pub(crate) async fn call_then<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S) -> (Result<T, RpcError>, Then<S>) + Send + 'static,
    ) -> Result<T, RpcError> {
        let (reply, rx) = oneshot::channel();
        self.send(move |state| {
            let (answer, then) = f(state);
            reply.send(answer).ok();
            if let Some(then) = then {
                then(state);
            }
        })
        .await?;
        rx.await.map_err(|_| self.gone())?
    }

    /// A handle for queueing from a task that outlives the borrow.
    pub(crate) fn handle(&self) -> Worker<S> {
        Worker {
            tx: self.tx.clone(),
            name: self.name,
        }
    }
}
