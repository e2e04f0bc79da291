//! Serial ports, through `serial2-tokio`. KMP meters talk 1200 baud, 8 data
//! bits, no parity, 2 stop bits on their optical port; data modules and
//! electricity meters may use other settings, so all of them can be set.
//!
//! The port is opened without exclusive locking, so a passive listener can
//! share it, and without touching DTR/RTS, which pseudo-terminals reject.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serial2_tokio::{CharSize, FlowControl, SerialPort};

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
}

impl SerialSettings {
    /// The KMP default: 1200 baud, 8N2.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SerialSettings {
            path: path.into(),
            baud: 1200,
            data_bits: DataBits::Eight,
            parity: Parity::None,
            stop_bits: StopBits::Two,
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

/// Opens and configures the port.
pub fn open(settings: &SerialSettings) -> Result<SerialPort, TransportError> {
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
    let fail = |source| TransportError::OpenSerial {
        path: settings.path.display().to_string(),
        source,
    };
    let port = SerialPort::open(&settings.path, configure).map_err(fail)?;
    // Bytes that arrived while nobody had the port open (a late reply to an
    // earlier session) answer no request of ours.
    port.discard_input_buffer().map_err(fail)?;
    Ok(port)
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

    #[test]
    fn default_is_1200_8n2_with_11_bits_a_byte() {
        let settings = SerialSettings::new("/dev/ttyUSB0");
        assert_eq!(settings.to_string(), "/dev/ttyUSB0 1200 8N2");
        assert_eq!(settings.bits_per_byte(), 11);
    }
}
