//! TCP client to a serial-to-Ethernet gateway (ser2net, Moxa NPort, an ESP
//! bridge). Keep-alive is on because gateways leave half-open sockets behind
//! after a power cut; Nagle is off because every frame is a small write that
//! should leave at once.

use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

use super::TransportError;

/// Where the gateway is and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSettings {
    /// `host:port`.
    pub address: String,
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
    /// Idle time before the first keep-alive probe.
    pub keepalive: Duration,
}

impl TcpSettings {
    /// Defaults: 5 s to connect, keep-alive probes after 30 s idle.
    pub fn new(address: impl Into<String>) -> Self {
        TcpSettings {
            address: address.into(),
            connect_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(30),
        }
    }
}

/// Checks that `text` is `host:port` with a port 1 to 65535; the error says
/// what is missing, as in "`x` has no port".
pub fn check_address(text: &str) -> Result<(), String> {
    match text.rsplit_once(':') {
        None => Err(format!("`{text}` has no port")),
        Some(("", _)) => Err(format!("`{text}` has no host")),
        Some((_, port)) => match port.parse::<u16>() {
            Ok(1..) => Ok(()),
            _ => Err(format!("`{port}` is not a port number 1 to 65535")),
        },
    }
}

/// Connects to the gateway.
pub async fn connect(settings: &TcpSettings) -> Result<TcpStream, TransportError> {
    let address = &settings.address;
    let addrs: Vec<_> = tokio::net::lookup_host(address)
        .await
        .map_err(|source| TransportError::Resolve {
            address: address.clone(),
            source,
        })?
        .collect();
    let mut last_error = None;
    for addr in addrs {
        match tokio::time::timeout(settings.connect_timeout, TcpStream::connect(addr)).await {
            Err(_) => {
                last_error = Some(TransportError::ConnectTimeout {
                    address: address.clone(),
                    timeout: settings.connect_timeout,
                });
            }
            Ok(Err(source)) => {
                last_error = Some(TransportError::Connect {
                    address: address.clone(),
                    source,
                })
            }
            Ok(Ok(stream)) => {
                configure(&stream, settings).map_err(|source| TransportError::Connect {
                    address: address.clone(),
                    source,
                })?;
                return Ok(stream);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| TransportError::Resolve {
        address: address.clone(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address"),
    }))
}

fn configure(stream: &TcpStream, settings: &TcpSettings) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let keepalive = TcpKeepalive::new()
        .with_time(settings.keepalive)
        .with_interval(settings.keepalive / 3);
    SockRef::from(stream).set_tcp_keepalive(&keepalive)
}
