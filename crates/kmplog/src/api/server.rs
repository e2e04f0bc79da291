//! The API's listener: a TCP accept loop serving each connection with
//! hyper's HTTP/1 server, within limits that keep a flood of clients from
//! taking the logger's descriptors and memory.
//!
//! `axum::serve` sets no header-read timeout and accepts every connection,
//! so 20,000 sockets that never sent a request used up the descriptors and
//! a bus could no longer reopen its gateway. Here a connection must send
//! its request head within [`Limits::header_read_timeout`] (also between
//! requests on a kept-alive connection), and past [`Limits::connections`]
//! a new connection is answered 503 and closed at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// What one API may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a connection may take to send a request head, counted
    /// from when the server waits for one (idle keep-alive included).
    pub header_read_timeout: Duration,
    /// Open connections; past it a new one gets 503 and is closed.
    pub connections: usize,
    /// `GET /api/readings` answers being written at once; past it 503.
    pub readings_queries: usize,
    /// Batches a live client may have waiting; a client that falls this
    /// far behind is dropped (it reconnects with `Last-Event-ID`).
    pub stream_backlog: usize,
    /// Readings kept for clients that reconnect with `Last-Event-ID`.
    pub replay_readings: usize,
}

/// Descriptors left to the logger (lines, databases, sinks) whatever the
/// API holds.
const RESERVED_DESCRIPTORS: u64 = 256;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            connections: default_connections(),
            readings_queries: 8,
            stream_backlog: 64,
            replay_readings: 10_000,
        }
    }
}

/// Half the descriptors the process may open (`ulimit -n`, `LimitNOFILE=`),
/// at most 4096, so that the API can never take the ones the buses need.
fn default_connections() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    let share = (soft / 2).min(soft.saturating_sub(RESERVED_DESCRIPTORS));
    usize::try_from(share.clamp(16, 4096)).unwrap_or(4096)
}

/// The answer to a connection past the cap, written without hyper: the
/// connection is refused before any request is read.
const TOO_MANY: &str =
    "{\"error\":\"the API has as many connections open as it allows; try again in a moment\"}";

/// The read buffer of a connection, which bounds a request head.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How long the loop waits after a failed accept (no descriptor left)
/// before it tries again, rather than spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` within `limits` until `shutdown`; open
/// connections then finish their current request and close.
pub async fn run(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let bound = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |address| address.to_string());
    let connections = Arc::new(Semaphore::new(limits.connections));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // Room for a head a little past what the guard answers with JSON
        // (414, 431); only beyond this does hyper answer bare.
        .max_buf_size(MAX_HEAD_BYTES);
    let builder = Arc::new(builder);
    let mut accept_failing = false;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                if std::mem::take(&mut accept_failing) {
                    info!(address = %bound, "API accepts connections again");
                }
                accepted
            }
            Err(error) => {
                if !std::mem::replace(&mut accept_failing, true) {
                    warn!(address = %bound, reason = %error, "API cannot accept connections");
                }
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            refuse(&stream, peer);
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let (builder, shutdown) = (Arc::clone(&builder), shutdown.clone());
        tokio::spawn(async move {
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                // Timeouts and clients that go away are the normal end of
                // many connections, not the operator's concern.
                debug!(%peer, reason = %error, "API connection ended");
            }
            drop(permit);
        });
    }
}

/// Answers a connection past the cap with 503 and closes it. The answer
/// fits in an empty socket buffer; if it does not go out, the close alone
/// still tells the client.
fn refuse(stream: &TcpStream, peer: SocketAddr) {
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{TOO_MANY}",
        TOO_MANY.len()
    );
    let _ = stream.try_write(answer.as_bytes());
    debug!(%peer, "API connection refused: too many open");
}
