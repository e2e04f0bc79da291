//! UDP, for gateways that carry one frame per datagram. The socket is
//! connected, so only the gateway's datagrams are read; a write is sent as
//! one datagram, which the master makes one frame.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UdpSocket;

use super::TransportError;

/// A connected UDP socket seen as a byte stream.
#[derive(Debug)]
pub struct UdpLine {
    socket: UdpSocket,
}

/// Binds an ephemeral local port and connects it to the gateway at `address`.
pub async fn connect(address: &str) -> Result<UdpLine, TransportError> {
    let fail = |source| TransportError::Connect {
        address: address.to_owned(),
        source,
    };
    let remote = tokio::net::lookup_host(address)
        .await
        .map_err(|source| TransportError::Resolve {
            address: address.to_owned(),
            source,
        })?
        .next()
        .ok_or_else(|| TransportError::Resolve {
            address: address.to_owned(),
            source: io::Error::new(io::ErrorKind::NotFound, "the name has no address"),
        })?;
    let local = if remote.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(local).await.map_err(fail)?;
    socket.connect(remote).await.map_err(fail)?;
    Ok(UdpLine { socket })
}

impl AsyncRead for UdpLine {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // A datagram larger than the buffer would be cut; the master reads
        // with a buffer larger than any KMP frame.
        self.socket.poll_recv(cx, buf)
    }
}

impl AsyncWrite for UdpLine {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.socket.poll_send(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn one_write_is_one_datagram_and_back() {
        let gateway = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut line = connect(&gateway.local_addr().unwrap().to_string())
            .await
            .unwrap();
        line.write_all(&[0x80, 0x3F, 0x01, 0x05, 0x8A, 0x0D])
            .await
            .unwrap();
        let mut datagram = [0u8; 64];
        let (count, from) = gateway.recv_from(&mut datagram).await.unwrap();
        assert_eq!(&datagram[..count], [0x80, 0x3F, 0x01, 0x05, 0x8A, 0x0D]);
        gateway.send_to(&[0x06], from).await.unwrap();
        let mut reply = [0u8; 16];
        assert_eq!(line.read(&mut reply).await.unwrap(), 1);
        assert_eq!(reply[0], 0x06);
    }
}
