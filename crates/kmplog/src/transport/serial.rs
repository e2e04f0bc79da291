//! Serial ports, through `serial2-tokio`. KMP meters talk 1200 baud, 8 data
//! bits, no parity, 2 stop bits on their optical port; data modules and
//! electricity meters may use other settings, so all of them can be set.
//!
//! A bus that polls opens its port exclusively ([`SerialSettings::exclusive`]):
//! a second master on the same line would collide with it (CRC errors,
//! timeouts), so the port is locked with `flock` for as long as it is open
//! and a second master is refused. The lock is advisory, which is the
//! point: a listen-only bus takes no lock and shares the line with the
//! master it listens to. (`TIOCEXCL` would refuse listeners too, and does
//! not hold against root.) The port is opened without touching DTR/RTS,
//! which pseudo-terminals reject.

use std::fmt;
use std::fs::{File, TryLockError};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};

use serial2_tokio::{CharSize, FlowControl, SerialPort};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::TransportError;

/// Line settings of a serial port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialSettings {
    /// Device path, such as `/dev/ttyUSB0`.
    pub path: PathBuf,
    /// Baud rate, 300 to 115200.
    pub baud: u32,
    /// Data bits.
    pub data_bits: DataBits,
    /// Parity.
    pub parity: Parity,
    /// Stop bits.
    pub stop_bits: StopBits,
    /// Lock the port against other masters while it is open: for a bus
    /// that polls. A listener leaves it `false`.
    pub exclusive: bool,
}

impl SerialSettings {
    /// The KMP default: 1200 baud, 8N2, shared.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SerialSettings {
            path: path.into(),
            baud: 1200,
            data_bits: DataBits::Eight,
            parity: Parity::None,
            stop_bits: StopBits::Two,
            exclusive: false,
        }
    }

    /// Bits on the line per byte: start bit, data, parity, stop bits.
    pub fn bits_per_byte(&self) -> u32 {
        let parity = u32::from(self.parity != Parity::None);
        1 + self.data_bits.count() + parity + self.stop_bits.count()
    }
}

impl fmt::Display for SerialSettings {
    /// `/dev/ttyUSB0 1200 8N2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}{}{}",
            self.path.display(),
            self.baud,
            self.data_bits.count(),
            self.parity.letter(),
            self.stop_bits.count()
        )
    }
}

/// Data bits per byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataBits {
    /// 7 data bits.
    Seven,
    /// 8 data bits.
    Eight,
}

impl DataBits {
    fn count(self) -> u32 {
        match self {
            DataBits::Seven => 7,
            DataBits::Eight => 8,
        }
    }
}

/// Parity bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    /// No parity bit.
    None,
    /// Even parity.
    Even,
    /// Odd parity.
    Odd,
}

impl Parity {
    fn letter(self) -> char {
        match self {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
        }
    }
}

/// Stop bits per byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopBits {
    /// One stop bit.
    One,
    /// Two stop bits.
    Two,
}

impl StopBits {
    fn count(self) -> u32 {
        match self {
            StopBits::One => 1,
            StopBits::Two => 2,
        }
    }
}

/// The data bits, parity and stop bits in the usual short form, such as `8N2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// Data bits.
    pub data_bits: DataBits,
    /// Parity.
    pub parity: Parity,
    /// Stop bits.
    pub stop_bits: StopBits,
}

impl FromStr for Framing {
    type Err = String;

    /// `8N2`, `8N1`, `7E1`, `8O1`, ... (case-insensitive).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let upper = text.to_ascii_uppercase();
        let invalid = || {
            format!(
                "invalid framing '{text}': expected data bits, parity and stop bits such as 8N2, 8N1 or 7E1"
            )
        };
        let &[data, parity, stop] = upper.as_bytes() else {
            return Err(invalid());
        };
        Ok(Framing {
            data_bits: match data {
                b'7' => DataBits::Seven,
                b'8' => DataBits::Eight,
                _ => return Err(invalid()),
            },
            parity: match parity {
                b'N' => Parity::None,
                b'E' => Parity::Even,
                b'O' => Parity::Odd,
                _ => return Err(invalid()),
            },
            stop_bits: match stop {
                b'1' => StopBits::One,
                b'2' => StopBits::Two,
                _ => return Err(invalid()),
            },
        })
    }
}

/// An open serial port, with the lock that keeps other masters off it
/// when it was opened exclusively.
#[derive(Debug)]
pub struct Port {
    port: SerialPort,
    /// Held, not used: the lock lasts as long as this descriptor.
    _lock: Option<File>,
}

/// Opens and configures the port; with `exclusive`, locks it first, so that
/// a port another master holds is not even reconfigured.
pub fn open(settings: &SerialSettings) -> Result<Port, TransportError> {
    let path = settings.path.display().to_string();
    let fail = |source| TransportError::OpenSerial {
        path: path.clone(),
        source,
    };
    let lock = if settings.exclusive {
        Some(lock(settings).map_err(|error| match error {
            TryLockError::WouldBlock => TransportError::SerialInUse {
                path: path.clone(),
                holder: lock_holder(settings).unwrap_or_else(|| "another process".to_owned()),
            },
            TryLockError::Error(source) => fail(source),
        })?)
    } else {
        None
    };
    let configure = |mut port: serial2_tokio::Settings| {
        port.set_raw();
        port.set_baud_rate(settings.baud)?;
        port.set_char_size(match settings.data_bits {
            DataBits::Seven => CharSize::Bits7,
            DataBits::Eight => CharSize::Bits8,
        });
        port.set_parity(match settings.parity {
            Parity::None => serial2_tokio::Parity::None,
            Parity::Even => serial2_tokio::Parity::Even,
            Parity::Odd => serial2_tokio::Parity::Odd,
        });
        port.set_stop_bits(match settings.stop_bits {
            StopBits::One => serial2_tokio::StopBits::One,
            StopBits::Two => serial2_tokio::StopBits::Two,
        });
        port.set_flow_control(FlowControl::None);
        Ok(port)
    };
    let port = SerialPort::open(&settings.path, configure).map_err(fail)?;
    // Bytes that arrived while nobody had the port open (a late reply to an
    // earlier session) answer no request of ours.
    port.discard_input_buffer().map_err(fail)?;
    Ok(Port { port, _lock: lock })
}

/// Takes the port's lock through a descriptor of its own (serial2-tokio
/// does not lend its own). Non-blocking and without becoming the
/// controlling terminal, as the port itself is opened.
fn lock(settings: &SerialSettings) -> Result<File, TryLockError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_NOCTTY.bits() | nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(&settings.path)
        .map_err(TryLockError::Error)?;
    file.try_lock()?;
    Ok(file)
}

/// Who holds the lock on the port, `pid 4242 (kmplog run kmplog.toml)`,
/// from Linux's `/proc/locks`, which names each `flock` holder by the
/// device and inode of the file.
fn lock_holder(settings: &SerialSettings) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(&settings.path).ok()?;
    let (major, minor) = (
        nix::sys::stat::major(metadata.dev()),
        nix::sys::stat::minor(metadata.dev()),
    );
    let file = format!("{major:02x}:{minor:02x}:{}", metadata.ino());
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, "FLOCK", _, "WRITE", pid, held, ..] if *held == file => pid.parse::<u32>().ok(),
            _ => None,
        }
    })?;
    let command = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            String::from_utf8_lossy(&bytes)
                .replace('\0', " ")
                .trim()
                .to_owned()
        })
        .unwrap_or_default();
    Some(match command.as_str() {
        "" => format!("pid {pid}"),
        command => format!("pid {pid}: {command}"),
    })
}

impl AsyncRead for Port {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.port).poll_read(cx, buf)
    }
}

impl AsyncWrite for Port {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.port).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.port).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.port).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_parses_the_short_form() {
        let framing: Framing = "8n2".parse().unwrap();
        assert_eq!(
            (framing.data_bits, framing.parity, framing.stop_bits),
            (DataBits::Eight, Parity::None, StopBits::Two)
        );
        assert_eq!("7E1".parse::<Framing>().unwrap().parity, Parity::Even);
        for bad in ["", "8N", "9N1", "8X1", "8N3", "8N21"] {
            assert!(bad.parse::<Framing>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_master_holds_its_port_against_another_master_but_not_a_listener() {
        let pty = crate::sim::pty::Pty::open().unwrap();
        let master = SerialSettings {
            exclusive: true,
            ..SerialSettings::new(pty.path())
        };
        let held = open(&master).unwrap();
        let refused = open(&master).unwrap_err().to_string();
        assert!(
            refused.contains(&format!(
                "is held by another master (pid {}",
                std::process::id()
            )),
            "{refused}"
        );
        open(&SerialSettings::new(pty.path())).expect("a listener shares the line");
        drop(held);
        open(&master).expect("free once the first master closes it");
    }

    #[test]
    fn default_is_1200_8n2_with_11_bits_a_byte() {
        let settings = SerialSettings::new("/dev/ttyUSB0");
        assert_eq!(settings.to_string(), "/dev/ttyUSB0 1200 8N2");
        assert_eq!(settings.bits_per_byte(), 11);
    }
}
