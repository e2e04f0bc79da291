//! The pseudo-terminal front end: a pty whose slave the logger opens by path,
//! as it would a real serial port, with all the meters on the line behind it.
//!
//! Three traps are avoided here. The slave is put in raw mode, or the tty
//! layer would translate bytes (0x0D, the KMP stop byte, into 0x0A) and echo
//! them. The simulator keeps a slave descriptor open, or the master reads EIO
//! each time the logger closes its side. And the master is non-blocking and
//! driven by tokio's [`AsyncFd`], so that no thread blocks on it.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::pty::openpty;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Simulator;
use super::pacing::Pacing;
use super::session;

/// An open pseudo-terminal: the master side the simulator talks through.
#[derive(Debug)]
pub struct Pty {
    master: AsyncFd<OwnedFd>,
    /// Held open for the master's sake; never read.
    _slave: OwnedFd,
    path: PathBuf,
}

impl Pty {
    /// Opens a pseudo-terminal in raw mode. Needs a tokio runtime.
    pub fn open() -> io::Result<Pty> {
        let pair = openpty(None, None)?;
        let mut termios = tcgetattr(&pair.slave)?;
        cfmakeraw(&mut termios);
        tcsetattr(&pair.slave, SetArg::TCSANOW, &termios)?;
        let path = nix::unistd::ttyname(&pair.slave)?;
        let flags = OFlag::from_bits_truncate(fcntl(&pair.master, FcntlArg::F_GETFL)?);
        fcntl(&pair.master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        // `AsyncFd::new` is deprecated because a generic `AsRawFd` might
        // hand out a different or closed descriptor; an `OwnedFd` cannot,
        // and the safe constructor keeps this crate free of `unsafe`.
        #[allow(deprecated, reason = "sound for OwnedFd, see above")]
        let master = AsyncFd::new(pair.master)?;
        Ok(Pty {
            master,
            _slave: pair.slave,
            path,
        })
    }

    /// The slave's path, such as `/dev/pts/3`: what the logger opens.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsyncRead for Pty {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.master.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| Ok(nix::unistd::read(fd.get_ref(), unfilled)?)) {
                Ok(result) => {
                    buf.advance(result?);
                    return Poll::Ready(Ok(()));
                }
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for Pty {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.master.poll_write_ready(cx))?;
            match guard.try_io(|fd| Ok(nix::unistd::write(fd.get_ref(), buf)?)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Serves the line behind `pty` until the task is dropped or the pty fails.
/// The logger may open and close the slave any number of times meanwhile.
pub async fn serve(pty: Pty, simulator: Arc<Simulator>, pacing: Option<Pacing>) -> io::Result<()> {
    let name = format!("pty {}", pty.path().display());
    simulator.log(&name, "ready");
    session::serve(&simulator, &name, pty, pacing).await?;
    // The simulator holds a slave open, so the master never sees an end.
    Err(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the pseudo-terminal closed",
    ))
}

#[cfg(test)]
mod tests {
    use kmp::catalogue::Model;
    use kmp::{Request, Response};
    use serial2_tokio::SerialPort;
    use tokio::time::Instant;

    use super::*;
    use crate::sim::line::LineConfig;
    use crate::sim::meter::Meter;
    use crate::sim::testing::{read_response, simulator};

    #[tokio::test]
    async fn replies_through_a_pty_at_1200_baud() {
        let simulator = simulator(
            vec![Meter::new(63, Model::Multical603)],
            LineConfig::default(),
        );
        let pty = Pty::open().unwrap();
        let path = pty.path().to_owned();
        let pacing = Pacing::new(1_200);
        let server = tokio::spawn(serve(pty, simulator, Some(pacing)));

        // Twice, closing the port in between: the line must survive that.
        for ids in [[60, 68, 80], [86, 87, 89]] {
            let mut port = SerialPort::open(&path, 1_200).unwrap();
            let request = Request::get_register(&ids).unwrap().to_frame(63).encode();
            let start = Instant::now();
            port.write_all(&request).await.unwrap();
            let Response::Registers(values) = read_response(&mut port).await else {
                panic!("not a register response");
            };
            let elapsed = start.elapsed();
            let got: Vec<u16> = values.iter().map(|value| value.register).collect();
            assert_eq!(got, ids);
            let reply_len = Response::Registers(values).to_frame(63).encode().len();
            assert!(reply_len >= 30, "{reply_len} bytes");
            assert!(
                elapsed >= pacing.duration(reply_len),
                "{reply_len} bytes in {elapsed:?}"
            );
        }
        server.abort();
    }
}
