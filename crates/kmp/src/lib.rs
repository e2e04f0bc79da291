//! Sans-IO codec for KMP, the Kamstrup Meter Protocol.
//!
//! Bytes go in, frames, messages and exact values come out; nothing here does
//! IO, starts a task or reads a clock, so the same code serves the logger, the
//! simulator, the sniffer and the fuzzer.
//!
//! The layers, bottom up:
//! - [`crc`] and [`stuffing`]: the data-link checksum and byte stuffing;
//! - [`frame`]: one frame on the wire (start byte, address, CID, data, CRC, stop);
//! - [`splitter`]: cuts an arbitrary byte stream into frames and ACKs, skipping garbage;
//! - [`message`]: the commands (GetType, GetRegister, ...) in both directions;
//! - [`logger`]: the logger command 0xB8, its requests and its rows;
//! - [`value`](mod@value) and [`unit`](mod@unit): register values kept exactly, with their unit;
//! - [`catalogue`]: the registers each meter model is known to have.
//!
//! ```
//! use kmp::{frame::Frame, message::{Request, Response}};
//!
//! // A GetSerialNo reply from the meter at address 0x3F, as on the line.
//! let wire = [0x40, 0x3F, 0x02, 0x01, 0x23, 0x45, 0x67, 0xE9, 0x56, 0x0D];
//! let frame = Frame::decode(&wire).unwrap();
//! assert_eq!(frame.address, 0x3F);
//! assert_eq!(Response::decode(&frame).unwrap(), Response::SerialNo { serial: 19_088_743 });
//! // And the request that asks for it:
//! assert_eq!(Request::GetSerialNo.to_frame(0x3F).encode(), [0x80, 0x3F, 0x02, 0x35, 0xE9, 0x0D]);
//! ```
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod catalogue;
pub mod crc;
pub mod frame;
pub mod logger;
pub mod message;
pub mod splitter;
pub mod stuffing;
pub mod unit;
pub mod value;

pub use frame::{Direction, Frame, FrameError};
pub use logger::{LogEntries, LogInfo, Logger, LoggerRequest, LoggerResponse};
pub use message::{Command, MessageError, RegisterList, Request, Response};
pub use splitter::{Event, Splitter};
pub use unit::Unit;
pub use value::{DateTime7, Decimal, Natural, ParseValueError, RegisterValue, Value};
