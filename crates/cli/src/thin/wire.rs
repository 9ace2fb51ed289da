//! One connection to the daemon for the small client: a blocking Unix socket, one call at a
//! time, newline-delimited JSON-RPC frames. No runtime and no reader task: the answer to a
//! call is read right after the call is written, and notifications in between (none come to a
//! connection that subscribed to nothing) are skipped.
//!
//! The errors are `ai_session_client`'s, with the same meaning, so the CLI shows them alike.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use ai_session_client::Error;
use ai_session_protocol::registry::{Hello, Method};
use ai_session_protocol::trace::TraceContext;
use ai_session_protocol::{Request, Response, ServerMessage};
use serde::Serialize;
use serde_json::Value;

/// The field of a successful result in which the daemon says the action could not be audited.
const AUDIT_WARNING: &str = "audit_warning";

/// Bytes read from the socket at a time: an exec's answer can be megabytes on one line.
const READ_BUFFER: usize = 256 << 10;

pub(crate) struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
    trace: Option<TraceContext>,
    /// The id of a hello sent ahead whose answer is still to read.
    hello_ahead: Option<u64>,
    /// The connection closed before the hello sent ahead was answered: the daemon ran
    /// nothing sent on it (it reads a request only once the hello before it is answered).
    hello_lost: bool,
    /// Answers read while waiting for another one: answers may come in any order (the
    /// command's can come before the hello's sent ahead of it).
    early: Vec<Response>,
}

impl Conn {
    /// Connects to the daemon listening on `socket`; an error when none does.
    pub(crate) fn connect(socket: &Path) -> std::io::Result<Self> {
        let writer = UnixStream::connect(socket)?;
        let reader = BufReader::with_capacity(READ_BUFFER, writer.try_clone()?);
        Ok(Self {
            reader,
            writer,
            next_id: 1,
            // Run inside a traced program, the daemon's spans join its trace.
            trace: TraceContext::from_env(),
            hello_ahead: None,
            hello_lost: false,
            early: Vec::new(),
        })
    }

    /// Sends `hello` and leaves its answer for the next call to read: that call goes out
    /// right behind it, one round trip for both. The daemon handles a hello before it reads
    /// the next request and refuses every request behind a refused hello, so nothing runs
    /// unless the hello is accepted.
    pub(crate) fn hello_ahead<P: Serialize>(&mut self, params: P) -> Result<(), Error> {
        let id = self.send(Hello::NAME, params)?;
        self.hello_ahead = Some(id);
        Ok(())
    }

    /// True when the connection closed before the hello sent ahead was answered.
    pub(crate) fn hello_lost(&self) -> bool {
        self.hello_lost
    }

    /// Calls `method` and decodes its result as `R`.
    pub(crate) fn call<P: Serialize, R: serde::de::DeserializeOwned>(
        &mut self,
        method: &str,
        params: P,
    ) -> Result<R, Error> {
        let value = self.call_value(method, params)?;
        serde_json::from_value(value).map_err(|source| Error::Decode {
            method: method.to_owned(),
            source,
        })
    }

    /// Calls `method` and returns its result as JSON; a warning the daemon attached (the
    /// action could not be audited) goes to stderr, as the whole CLI does.
    pub(crate) fn call_value<P: Serialize>(
        &mut self,
        method: &str,
        params: P,
    ) -> Result<Value, Error> {
        // The hello's answer is read even when the command could not be written: a daemon
        // that refuses the connection answers the hello and closes, and the command's write
        // then fails with the reason waiting to be read.
        let sent = self.send(method, params);
        if let Some(hello) = self.hello_ahead.take() {
            match self.answer(Hello::NAME, hello) {
                Ok(_) => {}
                Err(Error::Closed) => {
                    self.hello_lost = true;
                    return Err(Error::Closed);
                }
                Err(e) => return Err(e),
            }
        }
        let id = sent?;
        self.answer(method, id)
    }

    /// Writes a request for `method`; its id.
    fn send<P: Serialize>(&mut self, method: &str, params: P) -> Result<u64, Error> {
        let id = self.next_id;
        self.next_id += 1;
        let encode = |source| Error::Encode {
            method: method.to_owned(),
            source,
        };
        let mut req = Request::new(id, method, params).map_err(encode)?;
        req.trace = self.trace.clone();
        let mut line = serde_json::to_vec(&req).map_err(encode)?;
        line.push(b'\n');
        // A write fails only when the daemon is gone (EPIPE, ECONNRESET).
        self.writer.write_all(&line).map_err(|_| Error::Closed)?;
        Ok(id)
    }

    /// Reads the answer to request `id` (a call of `method`).
    fn answer(&mut self, method: &str, id: u64) -> Result<Value, Error> {
        let resp = match self.early.iter().position(|r| r.id.as_u64() == Some(id)) {
            Some(at) => self.early.swap_remove(at),
            None => loop {
                let mut frame = String::new();
                match self.reader.read_line(&mut frame) {
                    Ok(0) | Err(_) => return Err(Error::Closed),
                    Ok(_) => {}
                }
                match serde_json::from_str::<ServerMessage>(&frame) {
                    Ok(ServerMessage::Response(resp)) if resp.id.as_u64() == Some(id) => {
                        break resp;
                    }
                    // The answer to a call still waiting for its turn to be read.
                    Ok(ServerMessage::Response(resp))
                        if resp.id.as_u64().is_some_and(|other| other < self.next_id) =>
                    {
                        self.early.push(resp);
                    }
                    // A notification or an unreadable line: no call's answer.
                    _ => continue,
                }
            },
        };
        match (resp.result, resp.error) {
            (_, Some(err)) => Err(Error::Rpc(err)),
            (Some(result), None) => {
                if let Some(warning) = result.get(AUDIT_WARNING).and_then(Value::as_str) {
                    errln!("ai-session: warning: {warning}");
                }
                Ok(result)
            }
            (None, None) => Err(Error::EmptyResponse {
                method: method.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A daemon that refuses the connection answers the hello sent ahead and closes before
    /// the command is written: the command's write fails, and the refusal is still what the
    /// caller gets (it once got "the daemon closed the connection").
    #[test]
    fn a_refusal_answered_before_the_command_is_written_is_what_the_call_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let mut conn = Conn::connect(&path).unwrap();
        let (stream, _) = listener.accept().unwrap();
        conn.hello_ahead(serde_json::json!({"client": "test", "protocol": 1}))
            .unwrap();
        let mut reader = BufReader::new(&stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let hello: Value = serde_json::from_str(&line).unwrap();
        let refusal = Response::err(
            hello["id"].clone(),
            ai_session_protocol::RpcError::new(
                ai_session_protocol::ErrorKind::PermissionDenied,
                "connection refused: process 7 is in another user namespace",
            ),
        );
        let mut frame = serde_json::to_vec(&refusal).unwrap();
        frame.push(b'\n');
        (&stream).write_all(&frame).unwrap();
        drop(reader);
        drop(stream);
        drop(listener);
        let got = conn.call_value("session.list", serde_json::json!({}));
        match got {
            Err(Error::Rpc(e)) => assert!(e.message.contains("another user namespace"), "{e:?}"),
            other => panic!("expected the refusal, got {other:?}"),
        }
    }
}
