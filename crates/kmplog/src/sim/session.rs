//! Drives one line over a byte stream (a TCP connection, a pseudo-terminal):
//! reads what the master sends, lets the [`Line`](super::line::Line) decide,
//! and writes the echo and the replies at the line's pace.
//!
//! The line is half duplex, as a real one is: while a reply is delayed or
//! being sent, whatever the master sends meanwhile waits in the stream and is
//! answered afterwards (a late reply can thus arrive while the master already
//! waits for the answer to its next request).
//!
//! The master's bytes take their line time too: a pseudo-terminal or a TCP
//! connection delivers a request at once, but on a paced line the meter has
//! heard its last byte only after the request's length in byte times, and
//! only then starts its reply delay. Without that, a request would cost the
//! line nothing and a benchmark could carry more than the line rate. (With
//! echo on, writing the echo at the line's pace takes that time already.)

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::Instant;

use super::Simulator;
use super::pacing::{Pacing, write_paced};

/// Serves the line on `stream`, named `name` in the log, until the master
/// closes it (`Ok`) or the stream fails.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    simulator: &Simulator,
    name: &str,
    mut stream: S,
    pacing: Option<Pacing>,
) -> io::Result<()> {
    let mut line = simulator.open_line();
    let mut buffer = [0; 1024];
    let traffic = simulator.traffic();
    // When the meters have heard the master's last byte: replies count their
    // delay from there, so that sleeping in several steps does not add up
    // timer lateness on every transaction.
    let mut heard = Instant::now();
    loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        let arrived = Instant::now();
        traffic.received(read, arrived.into_std());
        let output = line.receive(buffer.get(..read).unwrap_or_default(), simulator.now());
        heard = if !output.echo.is_empty() {
            write_paced(&mut stream, &output.echo, pacing).await?;
            traffic.sent(output.echo.len(), Instant::now().into_std());
            Instant::now()
        } else if let Some(pacing) = pacing {
            // Bytes that come while earlier ones are still on the wire queue
            // behind them.
            heard.max(arrived) + pacing.duration(read)
        } else {
            arrived
        };
        traffic.busy_until(heard.into_std());
        for exchange in output.exchanges {
            simulator.log(name, &exchange);
            if let Some(reply) = exchange.reply() {
                tokio::time::sleep_until(heard + reply.delay).await;
                write_paced(&mut stream, &reply.bytes, pacing).await?;
                heard = Instant::now();
                traffic.sent(reply.bytes.len(), heard.into_std());
            }
        }
    }
}
