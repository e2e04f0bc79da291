//! Options shared by the commands that use a line: which line and its
//! settings ([`LineArgs`], also for `sniff`), and for the commands that talk
//! to meters the transaction's timeout, retries and echo handling
//! ([`MeterArgs`]).

use std::path::PathBuf;
use std::time::Duration;

use kmp::message::Request;

use crate::bus::{EchoMode, Exchange, Master, MasterSettings, Outcome};
use crate::transport::serial::Framing;
use crate::transport::{BoxedLine, Endpoint, SerialSettings, TcpSettings};

use super::Failure;

/// How to reach the meters.
#[derive(Debug, Clone, clap::Args)]
pub struct LineArgs {
    /// Serial port of the line, such as /dev/ttyUSB0.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["tcp", "udp"])]
    serial: Option<PathBuf>,
    /// TCP serial-to-Ethernet gateway, such as 192.168.1.50:4001.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port, conflicts_with = "udp")]
    tcp: Option<String>,
    /// UDP gateway that carries one frame per datagram, such as 192.168.1.51:4001.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port)]
    udp: Option<String>,
    /// Baud rate of the serial port.
    #[arg(long, value_name = "N", default_value_t = 1200, value_parser = clap::value_parser!(u32).range(300..=115_200))]
    baud: u32,
    /// Data bits, parity and stop bits of the serial port, such as 8N2 or 8N1.
    #[arg(long, value_name = "BITS", default_value = "8N2")]
    framing: Framing,
}

/// A line, and how to hold a conversation with the meters on it.
#[derive(Debug, Clone, clap::Args)]
pub struct MeterArgs {
    #[command(flatten)]
    line: LineArgs,
    /// Echo of our own request by an optical head: drop it when recognised
    /// (auto), always expect it (on), or never (off).
    #[arg(long, value_enum, default_value_t = EchoMode::Auto)]
    echo: EchoMode,
    /// How long to wait for a meter's reply to start, in milliseconds (a
    /// reply that keeps coming is read on).
    #[arg(long, value_name = "MS", default_value_t = 1600, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    timeout: u64,
    /// Further attempts when a meter does not answer (the first retry wakes a
    /// sleeping optical port).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=10))]
    retries: u32,
}

fn parse_host_port(text: &str) -> Result<String, String> {
    crate::transport::tcp::check_address(text)
        .map(|()| text.to_owned())
        .map_err(|problem| {
            format!("{problem}; expected HOST:PORT, such as 192.168.1.50:4001 or localhost:7063")
        })
}

impl LineArgs {
    /// The line these options name.
    pub fn endpoint(&self) -> Result<Endpoint, Failure> {
        match (&self.serial, &self.tcp, &self.udp) {
            (Some(path), _, _) => Ok(Endpoint::Serial(SerialSettings {
                baud: self.baud,
                data_bits: self.framing.data_bits,
                parity: self.framing.parity,
                stop_bits: self.framing.stop_bits,
                ..SerialSettings::new(path)
            })),
            (None, Some(address), _) => Ok(Endpoint::Tcp(TcpSettings::new(address.clone()))),
            (None, None, Some(address)) => Ok(Endpoint::Udp(address.clone())),
            (None, None, None) => Err(Failure::usage(
                "name the line: --serial PATH (such as /dev/ttyUSB0), --tcp HOST:PORT (such as 192.168.1.50:4001) or --udp HOST:PORT",
            )),
        }
    }
}

impl LineArgs {
    /// Opens the line and puts a master on it that waits `timeout` for a
    /// reply and tries `retries` more times.
    pub async fn connect(
        &self,
        timeout: Duration,
        retries: u32,
        echo: EchoMode,
    ) -> Result<MeterLine, Failure> {
        let endpoint = self.endpoint()?;
        let settings = MasterSettings {
            timeout,
            retries,
            echo,
            ..MasterSettings::default()
        };
        MeterLine::open(endpoint, settings).await
    }
}

impl MeterArgs {
    /// The line these options name.
    pub fn endpoint(&self) -> Result<Endpoint, Failure> {
        self.line.endpoint()
    }

    /// The timeout as given, for messages.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout)
    }

    /// How a master talks to the meters by these options.
    pub fn master_settings(&self) -> MasterSettings {
        MasterSettings {
            timeout: self.timeout(),
            retries: self.retries,
            echo: self.echo,
            ..MasterSettings::default()
        }
    }

    /// Opens the line and puts a master on it.
    pub async fn connect(&self) -> Result<MeterLine, Failure> {
        self.line
            .connect(self.timeout(), self.retries, self.echo)
            .await
    }
}

/// An open line with its master, for one-shot commands.
pub struct MeterLine {
    name: String,
    master: Master<BoxedLine>,
    timeout: Duration,
    /// The line's time per byte, kept when the settings change.
    byte_time: Duration,
}

impl MeterLine {
    /// Opens `endpoint` and puts a master with `settings` on it (the byte
    /// time is the line's own). A serial port is opened as a master's:
    /// refused when another master holds it, rather than colliding with it
    /// on the line.
    pub async fn open(
        mut endpoint: Endpoint,
        settings: MasterSettings,
    ) -> Result<MeterLine, Failure> {
        if let Endpoint::Serial(settings) = &mut endpoint {
            settings.exclusive = true;
        }
        let settings = MasterSettings {
            byte_time: endpoint.byte_time(),
            ..settings
        };
        let line = endpoint
            .open()
            .await
            .map_err(|error| Failure::failed(error.to_string()))?;
        Ok(MeterLine {
            name: endpoint.to_string(),
            timeout: settings.timeout,
            byte_time: settings.byte_time,
            master: Master::new(line, endpoint.to_string(), settings),
        })
    }

    /// Waits, retries and handles echoes as `settings` say from now on (the
    /// byte time stays the line's).
    pub fn set_settings(&mut self, settings: MasterSettings) {
        self.timeout = settings.timeout;
        self.master.set_settings(MasterSettings {
            byte_time: self.byte_time,
            ..settings
        });
    }

    /// The line, as messages name it (`tcp 127.0.0.1:7063`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs one transaction; a failing line is a [`Failure`].
    pub async fn transact(&mut self, address: u8, request: &Request) -> Result<Exchange, Failure> {
        self.master
            .transact(address, request)
            .await
            .map_err(|error| Failure::failed(error.to_string()))
    }

    /// The master on the line, for readers that run their own transactions
    /// (the logger pages of `kmplog log`).
    pub fn master(&mut self) -> &mut Master<BoxedLine> {
        &mut self.master
    }

    /// Why a transaction gave no usable reply, for a person.
    pub fn explain(&self, address: u8, exchange: &Exchange) -> String {
        let attempts = match exchange.attempts {
            1 => "1 attempt".to_owned(),
            count => format!("{count} attempts"),
        };
        match &exchange.outcome {
            Outcome::NoReply => format!(
                "meter {address} did not answer within {} ms ({attempts}); check the address, the line settings and the cabling",
                self.timeout.as_millis()
            ),
            other => format!("meter {address}: {other} ({attempts})"),
        }
    }
}
