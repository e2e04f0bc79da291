//! Transports: how bytes reach a line of meters. A serial port (RS-232,
//! RS-485, an optical head on USB) or a TCP connection to a serial-to-Ethernet
//! gateway (ser2net, Moxa NPort). Each opens to a [`Line`]: a byte stream in
//! both directions that knows nothing of KMP.

pub mod serial;
pub mod tcp;
pub mod udp;

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

pub use serial::{DataBits, Parity, SerialSettings, StopBits};
pub use tcp::TcpSettings;

/// A byte stream to and from a line of meters.
pub trait Line: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Line for T {}

/// An open line.
pub type BoxedLine = Box<dyn Line>;

/// The future [`Opener::open`] returns.
pub type OpenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<BoxedLine, TransportError>> + Send + 'a>>;

/// Opens a line, again after each failure: an [`Endpoint`] in production; in
/// tests, an in-memory line to a simulator, so that bus tasks can run on
/// paused time.
pub trait Opener: Send + Sync + fmt::Display {
    /// Opens the line.
    fn open(&self) -> OpenFuture<'_>;

    /// Time one byte takes on the line (see [`Endpoint::byte_time`]).
    fn byte_time(&self) -> Duration;
}

impl Opener for Endpoint {
    fn open(&self) -> OpenFuture<'_> {
        Box::pin(Endpoint::open(self))
    }

    fn byte_time(&self) -> Duration {
        Endpoint::byte_time(self)
    }
}

/// Where a line is and how to open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A local serial port.
    Serial(SerialSettings),
    /// A TCP serial-to-Ethernet gateway.
    Tcp(TcpSettings),
    /// A gateway that takes and sends one UDP datagram per frame, at `host:port`.
    Udp(String),
}

impl Endpoint {
    /// Opens the line.
    pub async fn open(&self) -> Result<BoxedLine, TransportError> {
        match self {
            Endpoint::Serial(settings) => {
                serial::open(settings).map(|port| Box::new(port) as BoxedLine)
            }
            Endpoint::Tcp(settings) => tcp::connect(settings)
                .await
                .map(|stream| Box::new(stream) as BoxedLine),
            Endpoint::Udp(address) => udp::connect(address)
                .await
                .map(|socket| Box::new(socket) as BoxedLine),
        }
    }

    /// Time one byte takes on the line: 11 bit times at 8N2 on a serial
    /// port; zero on a network, where the gateway's own line is not ours to
    /// time.
    pub fn byte_time(&self) -> Duration {
        match self {
            Endpoint::Serial(settings) => Duration::from_secs_f64(
                f64::from(settings.bits_per_byte()) / f64::from(settings.baud),
            ),
            Endpoint::Tcp(_) | Endpoint::Udp(_) => Duration::ZERO,
        }
    }
}

impl fmt::Display for Endpoint {
    /// `serial /dev/ttyUSB0 1200 8N2` or `tcp 10.0.0.5:4001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Serial(settings) => write!(f, "serial {settings}"),
            Endpoint::Tcp(settings) => write!(f, "tcp {}", settings.address),
            Endpoint::Udp(address) => write!(f, "udp {address}"),
        }
    }
}

/// A line that cannot be opened or that failed while in use.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The serial port cannot be opened or configured.
    #[error("cannot open serial port {path}: {source}")]
    OpenSerial {
        /// The device path.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// Another master holds the serial port.
    #[error(
        "serial port {path} is held by another master ({holder}); two masters on one line garble each other's frames: stop the other one, or make this bus only listen (send = false)"
    )]
    SerialInUse {
        /// The device path.
        path: String,
        /// Who holds it: `pid 4242: kmplog run kmplog.toml`.
        holder: String,
    },
    /// The gateway's name does not resolve.
    #[error("cannot resolve {address}: {source}")]
    Resolve {
        /// The `host:port` given.
        address: String,
        /// Why.
        source: io::Error,
    },
    /// The gateway refuses or cannot be reached.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The `host:port` given.
        address: String,
        /// Why.
        source: io::Error,
    },
    /// The gateway does not answer the connection in time.
    #[error("cannot connect to {address}: no answer within {} ms", timeout.as_millis())]
    ConnectTimeout {
        /// The `host:port` given.
        address: String,
        /// How long kmplog waited.
        timeout: Duration,
    },
    /// Reading or writing the line failed.
    #[error("line {endpoint}: {source}")]
    Io {
        /// The line.
        endpoint: String,
        /// Why.
        source: io::Error,
    },
    /// The other end closed the connection.
    #[error("line {endpoint}: closed by the other end")]
    Closed {
        /// The line.
        endpoint: String,
    },
    /// A request left unsent because its attempt could not end by the
    /// moment the master must stop writing (the bus's lease in a cluster):
    /// the line is fine, the bus must stop here.
    #[error(
        "line {endpoint}: request not sent: its attempt of up to {} ms would end after the bus's lease",
        needed.as_millis()
    )]
    NoRoom {
        /// The line.
        endpoint: String,
        /// How long the attempt could take.
        needed: Duration,
    },
}
