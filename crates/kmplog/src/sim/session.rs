//! Drives one line over a byte stream (a TCP connection, a pseudo-terminal):
//! reads what the master sends, lets the [`Line`](super::line::Line) decide,
//! and writes the echo and the replies at the line's pace.
//!
//! The line is half duplex, as a real one is: while a reply is delayed or
//! being sent, whatever the master sends meanwhile waits in the stream and is
//! answered afterwards (a late reply can thus arrive while the master already
//! waits for the answer to its next request).

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

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
    loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        let output = line.receive(buffer.get(..read).unwrap_or_default(), simulator.now());
        write_paced(&mut stream, &output.echo, pacing).await?;
        for exchange in output.exchanges {
            simulator.log(name, &exchange);
            if let Some(reply) = exchange.reply() {
                tokio::time::sleep(reply.delay).await;
                write_paced(&mut stream, &reply.bytes, pacing).await?;
            }
        }
    }
}
