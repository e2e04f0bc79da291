//! The KMP commands, in both directions: a [`Request`] is what the master
//! sends, a [`Response`] what a meter answers. Both encode to and decode from
//! a [`Frame`], so the logger and the simulator share this code.
//!
//! GetType, GetSerialNo and GetRegister have public layouts and are decoded
//! fully, and so is the logger command 0xB8 (its layouts live in
//! [`crate::logger`]). SetClock, PutRegister, the event-status and the older
//! log commands (0xA0..0xA3) have no
//! public layout (kmp-protocol.md §3, open questions): they are recognised by
//! CID and their data is kept byte for byte as [`Request::Raw`] and
//! [`Response::Raw`], so nothing is lost or guessed.

use std::fmt;

use crate::frame::{Direction, Frame};
use crate::logger::{LoggerError, LoggerRequest, LoggerResponse};
use crate::unit::Unit;
use crate::value::{RegisterValue, Value, ValueError};

/// Most registers one GetRegister request may ask for.
pub const MAX_REGISTERS: usize = 8;

/// A KMP command identifier (CID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// 0x01: meter type and software revision.
    GetType,
    /// 0x02: serial number.
    GetSerialNo,
    /// 0x09: set the meter's clock (answered by an ACK).
    SetClock,
    /// 0x10: read 1 to 8 registers.
    GetRegister,
    /// 0x11: write registers.
    PutRegister,
    /// 0x9B: read the event status.
    GetEventStatus,
    /// 0x9C: clear the event status.
    ClearEventStatus,
    /// 0xA0: logged values from a time on, up to the present.
    GetLogTimePresent,
    /// 0xA1: the last logged values up to the present.
    GetLogLastPresent,
    /// 0xA2: logged values from a log ID on, up to the present.
    GetLogIdPresent,
    /// 0xA3: logged values from a time backwards.
    GetLogTimePast,
    /// 0xB8: the loggers of newer meters (MULTICAL 603/303, flowIQ): §3.1,
    /// in [`crate::logger`].
    Logger,
}

impl Command {
    /// Every known command.
    pub const ALL: [Command; 12] = [
        Command::GetType,
        Command::GetSerialNo,
        Command::SetClock,
        Command::GetRegister,
        Command::PutRegister,
        Command::GetEventStatus,
        Command::ClearEventStatus,
        Command::GetLogTimePresent,
        Command::GetLogLastPresent,
        Command::GetLogIdPresent,
        Command::GetLogTimePast,
        Command::Logger,
    ];

    /// The CID byte.
    pub fn cid(self) -> u8 {
        match self {
            Command::GetType => 0x01,
            Command::GetSerialNo => 0x02,
            Command::SetClock => 0x09,
            Command::GetRegister => 0x10,
            Command::PutRegister => 0x11,
            Command::GetEventStatus => 0x9B,
            Command::ClearEventStatus => 0x9C,
            Command::GetLogTimePresent => 0xA0,
            Command::GetLogLastPresent => 0xA1,
            Command::GetLogIdPresent => 0xA2,
            Command::GetLogTimePast => 0xA3,
            Command::Logger => 0xB8,
        }
    }

    /// The command a CID stands for, if it is known.
    pub fn from_cid(cid: u8) -> Option<Command> {
        Command::ALL
            .into_iter()
            .find(|command| command.cid() == cid)
    }

    /// The command's name, as in the KMP documentation (`GetRegister`).
    pub fn name(self) -> &'static str {
        match self {
            Command::GetType => "GetType",
            Command::GetSerialNo => "GetSerialNo",
            Command::SetClock => "SetClock",
            Command::GetRegister => "GetRegister",
            Command::PutRegister => "PutRegister",
            Command::GetEventStatus => "GetEventStatus",
            Command::ClearEventStatus => "ClearEventStatus",
            Command::GetLogTimePresent => "GetLogTimePresent",
            Command::GetLogLastPresent => "GetLogLastPresent",
            Command::GetLogIdPresent => "GetLogIDPresent",
            Command::GetLogTimePast => "GetLogTimePast",
            Command::Logger => "Logger",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name of a CID: the command's name, or `CID 0xNN` if unknown.
pub fn cid_name(cid: u8) -> String {
    Command::from_cid(cid).map_or_else(
        || format!("CID 0x{cid:02X}"),
        |command| command.name().to_owned(),
    )
}

/// A frame's data that does not fit its command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// A GetRegister request for no or too many registers.
    #[error("GetRegister asks for {count} registers; 1 to {MAX_REGISTERS} are allowed per request")]
    RegisterCount {
        /// How many were asked for.
        count: usize,
    },
    /// Register 0 does not exist.
    #[error("register 0 does not exist; registers are numbered 1 to 65535")]
    RegisterZero,
    /// The data is not as long as the command's layout says.
    #[error("{command} {direction} has {found} data bytes, expected {expected}")]
    Length {
        /// The command.
        command: Command,
        /// `request` or `response`.
        direction: &'static str,
        /// Bytes the layout calls for.
        expected: usize,
        /// Bytes there are.
        found: usize,
    },
    /// A register entry of a GetRegister response is cut short.
    #[error(
        "GetRegister response: register entry at data byte {offset} is cut short: {available} bytes left, where register ID, unit and a value field must follow"
    )]
    RegisterEntryTruncated {
        /// Where the entry starts in the data.
        offset: usize,
        /// Bytes left from there.
        available: usize,
    },
    /// A register's value field is invalid.
    #[error("GetRegister response: register {register} at data byte {offset}: {source}")]
    Value {
        /// The register ID.
        register: u16,
        /// Where the value field starts in the data.
        offset: usize,
        /// What is wrong with it.
        source: ValueError,
    },
    /// A logger (0xB8) request or reply that does not fit its layout.
    #[error(transparent)]
    Logger(#[from] LoggerError),
}

/// What the master asks a meter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Request {
    /// Meter type and software revision.
    GetType,
    /// Serial number.
    GetSerialNo,
    /// Read registers.
    GetRegister(RegisterList),
    /// Ask a logger (0xB8).
    Logger(LoggerRequest),
    /// Any other command, with its data as sent (layout not public).
    Raw {
        /// The command identifier.
        cid: u8,
        /// The data, unstuffed.
        data: Vec<u8>,
    },
}

/// The registers of one GetRegister request: 1 to 8 IDs, none of them 0.
/// The checks are made on construction, so every list can be sent.
/// Kept inline (no allocation): a sniffer decodes one per request frame.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegisterList {
    /// The IDs, then zeros.
    ids: [u16; MAX_REGISTERS],
    len: u8,
}

impl RegisterList {
    /// Checks and wraps `registers`.
    pub fn new(registers: &[u16]) -> Result<RegisterList, MessageError> {
        if !(1..=MAX_REGISTERS).contains(&registers.len()) {
            return Err(MessageError::RegisterCount {
                count: registers.len(),
            });
        }
        if registers.contains(&0) {
            return Err(MessageError::RegisterZero);
        }
        let mut ids = [0; MAX_REGISTERS];
        for (slot, &id) in ids.iter_mut().zip(registers) {
            *slot = id;
        }
        Ok(RegisterList {
            ids,
            len: u8::try_from(registers.len()).unwrap_or(u8::MAX),
        })
    }
}

impl std::ops::Deref for RegisterList {
    type Target = [u16];

    fn deref(&self) -> &[u16] {
        self.ids.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl std::fmt::Debug for RegisterList {
    /// `RegisterList([60, 68])`, the IDs alone.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RegisterList").field(&&**self).finish()
    }
}

impl Request {
    /// A GetRegister request, checked: 1 to 8 registers, none of them 0.
    pub fn get_register(registers: &[u16]) -> Result<Request, MessageError> {
        RegisterList::new(registers).map(Request::GetRegister)
    }

    /// The CID this request is sent with.
    pub fn cid(&self) -> u8 {
        match self {
            Request::GetType => Command::GetType.cid(),
            Request::GetSerialNo => Command::GetSerialNo.cid(),
            Request::GetRegister(_) => Command::GetRegister.cid(),
            Request::Logger(_) => Command::Logger.cid(),
            Request::Raw { cid, .. } => *cid,
        }
    }

    /// The frame that carries this request to the meter at `address`.
    pub fn to_frame(&self, address: u8) -> Frame {
        let data = match self {
            Request::GetType | Request::GetSerialNo => Vec::new(),
            Request::GetRegister(registers) => {
                let mut data = Vec::with_capacity(1 + 2 * registers.len());
                // At most 8 registers: the count fits its byte.
                data.push(registers.len() as u8);
                for register in registers.iter() {
                    data.extend_from_slice(&register.to_be_bytes());
                }
                data
            }
            Request::Logger(request) => request.encode(),
            Request::Raw { data, .. } => data.clone(),
        };
        Frame::new(Direction::ToMeter, address, self.cid(), data)
    }

    /// Reads the request a frame carries.
    pub fn decode(frame: &Frame) -> Result<Request, MessageError> {
        let data = frame.data.as_slice();
        match Command::from_cid(frame.cid) {
            Some(command @ (Command::GetType | Command::GetSerialNo)) => {
                expect_len(command, "request", data, 0)?;
                Ok(if command == Command::GetType {
                    Request::GetType
                } else {
                    Request::GetSerialNo
                })
            }
            Some(Command::GetRegister) => {
                let Some((&count, ids)) = data.split_first() else {
                    return Err(MessageError::Length {
                        command: Command::GetRegister,
                        direction: "request",
                        expected: 1,
                        found: 0,
                    });
                };
                let count = usize::from(count);
                if !(1..=MAX_REGISTERS).contains(&count) {
                    return Err(MessageError::RegisterCount { count });
                }
                expect_len(Command::GetRegister, "request", data, 1 + 2 * count)?;
                let mut registers = [0u16; MAX_REGISTERS];
                for (slot, pair) in registers.iter_mut().zip(ids.chunks_exact(2)) {
                    if let &[hi, lo] = pair {
                        *slot = u16::from_be_bytes([hi, lo]);
                    }
                }
                Request::get_register(registers.get(..count).unwrap_or_default())
            }
            Some(Command::Logger) => Ok(Request::Logger(LoggerRequest::decode(data)?)),
            _ => Ok(Request::Raw {
                cid: frame.cid,
                data: data.to_vec(),
            }),
        }
    }
}

fn expect_len(
    command: Command,
    direction: &'static str,
    data: &[u8],
    expected: usize,
) -> Result<(), MessageError> {
    if data.len() == expected {
        Ok(())
    } else {
        Err(MessageError::Length {
            command,
            direction,
            expected,
            found: data.len(),
        })
    }
}

/// A meter's software revision: a letter and a number, such as `A1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SoftwareRevision {
    /// 1..=26 for A..Z; 0 when the meter gives none.
    pub letter: u8,
    /// The number after the letter.
    pub number: u8,
}

impl fmt::Display for SoftwareRevision {
    /// `F1`; `not given` for `00 00`; a letter outside A..Z as `?NN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.letter {
            0 if self.number == 0 => f.write_str("not given"),
            1..=26 => write!(f, "{}{}", char::from(b'A' + self.letter - 1), self.number),
            letter => write!(f, "?{letter}.{}", self.number),
        }
    }
}

/// What a meter answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Response {
    /// Answer to GetType.
    Type {
        /// The meter type code.
        meter_type: u16,
        /// The software revision.
        revision: SoftwareRevision,
    },
    /// Answer to GetSerialNo.
    SerialNo {
        /// The serial number.
        serial: u32,
    },
    /// Answer to GetRegister: the registers the meter knows, in its order.
    /// Registers it does not know are left out, so match by ID.
    Registers(Vec<RegisterValue>),
    /// Answer of a logger (0xB8).
    Logger(LoggerResponse),
    /// Any other command's answer, with its data as sent (layout not public).
    Raw {
        /// The command identifier.
        cid: u8,
        /// The data, unstuffed.
        data: Vec<u8>,
    },
}

impl Response {
    /// The CID this response is sent with.
    pub fn cid(&self) -> u8 {
        match self {
            Response::Type { .. } => Command::GetType.cid(),
            Response::SerialNo { .. } => Command::GetSerialNo.cid(),
            Response::Registers(_) => Command::GetRegister.cid(),
            Response::Logger(_) => Command::Logger.cid(),
            Response::Raw { cid, .. } => *cid,
        }
    }

    /// The frame that carries this response from the meter at `address`.
    pub fn to_frame(&self, address: u8) -> Frame {
        let data = match self {
            Response::Type {
                meter_type,
                revision,
            } => {
                let [type_hi, type_lo] = meter_type.to_be_bytes();
                vec![type_hi, type_lo, revision.letter, revision.number]
            }
            Response::SerialNo { serial } => serial.to_be_bytes().to_vec(),
            Response::Registers(registers) => {
                let mut data = Vec::with_capacity(registers.len() * 9);
                for entry in registers {
                    data.extend_from_slice(&entry.register.to_be_bytes());
                    data.push(entry.unit.code());
                    entry.value.encode_field(&mut data);
                }
                data
            }
            Response::Logger(response) => response.encode(),
            Response::Raw { data, .. } => data.clone(),
        };
        Frame::new(Direction::FromMeter, address, self.cid(), data)
    }

    /// Reads the response a frame carries.
    pub fn decode(frame: &Frame) -> Result<Response, MessageError> {
        let data = frame.data.as_slice();
        match Command::from_cid(frame.cid) {
            Some(Command::GetType) => match data {
                &[type_hi, type_lo, letter, number] => Ok(Response::Type {
                    meter_type: u16::from_be_bytes([type_hi, type_lo]),
                    revision: SoftwareRevision { letter, number },
                }),
                _ => Err(MessageError::Length {
                    command: Command::GetType,
                    direction: "response",
                    expected: 4,
                    found: data.len(),
                }),
            },
            Some(Command::GetSerialNo) => match data {
                &[a, b, c, d] => Ok(Response::SerialNo {
                    serial: u32::from_be_bytes([a, b, c, d]),
                }),
                _ => Err(MessageError::Length {
                    command: Command::GetSerialNo,
                    direction: "response",
                    expected: 4,
                    found: data.len(),
                }),
            },
            Some(Command::GetRegister) => decode_registers(data).map(Response::Registers),
            Some(Command::Logger) => Ok(Response::Logger(LoggerResponse::decode(data)?)),
            _ => Ok(Response::Raw {
                cid: frame.cid,
                data: data.to_vec(),
            }),
        }
    }
}

fn decode_registers(data: &[u8]) -> Result<Vec<RegisterValue>, MessageError> {
    // An entry takes at least 6 bytes (ID, unit, length, sigEx, a mantissa
    // byte): room for all of them at once.
    let mut registers = Vec::with_capacity(data.len() / 6);
    let mut offset = 0;
    while let Some(entry) = data.get(offset..).filter(|rest| !rest.is_empty()) {
        let &[id_hi, id_lo, unit, ..] = entry else {
            return Err(MessageError::RegisterEntryTruncated {
                offset,
                available: entry.len(),
            });
        };
        let register = u16::from_be_bytes([id_hi, id_lo]);
        let field = entry.get(3..).unwrap_or_default();
        let (value, used) = Value::decode_field(field).map_err(|source| MessageError::Value {
            register,
            offset: offset + 3,
            source,
        })?;
        registers.push(RegisterValue {
            register,
            unit: Unit(unit),
            value,
        });
        offset += 3 + used;
    }
    Ok(registers)
}

/// A decoded frame of either direction, as a sniffer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// A frame to a meter.
    Request(Request),
    /// A frame from a meter.
    Response(Response),
}

impl Message {
    /// Decodes a frame by its direction.
    pub fn decode(frame: &Frame) -> Result<Message, MessageError> {
        match frame.direction {
            Direction::ToMeter => Request::decode(frame).map(Message::Request),
            Direction::FromMeter => Response::decode(frame).map(Message::Response),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response_frame(cid: u8, data: &[u8]) -> Frame {
        Frame::new(Direction::FromMeter, 0x3F, cid, data.to_vec())
    }

    #[test]
    fn get_register_requests_are_checked() {
        assert_eq!(
            Request::get_register(&[]),
            Err(MessageError::RegisterCount { count: 0 })
        );
        assert_eq!(
            Request::get_register(&[1; 9]),
            Err(MessageError::RegisterCount { count: 9 })
        );
        assert_eq!(
            Request::get_register(&[60, 0]),
            Err(MessageError::RegisterZero)
        );
        let frame = Request::get_register(&[60, 1004]).unwrap().to_frame(63);
        assert_eq!(frame.data, [2, 0x00, 0x3C, 0x03, 0xEC]);
        assert_eq!(Request::decode(&frame), Request::get_register(&[60, 1004]));
    }

    #[test]
    fn bad_request_frames_are_errors() {
        let request =
            |data: &[u8]| Request::decode(&Frame::new(Direction::ToMeter, 1, 0x10, data.to_vec()));
        assert_eq!(
            request(&[]),
            Err(MessageError::Length {
                command: Command::GetRegister,
                direction: "request",
                expected: 1,
                found: 0
            })
        );
        assert_eq!(request(&[0]), Err(MessageError::RegisterCount { count: 0 }));
        assert_eq!(request(&[9]), Err(MessageError::RegisterCount { count: 9 }));
        assert_eq!(
            request(&[2, 0, 60]),
            Err(MessageError::Length {
                command: Command::GetRegister,
                direction: "request",
                expected: 5,
                found: 3
            })
        );
        assert_eq!(request(&[1, 0, 0]), Err(MessageError::RegisterZero));
    }

    #[test]
    fn empty_register_response_is_valid() {
        assert_eq!(
            Response::decode(&response_frame(0x10, &[])),
            Ok(Response::Registers(vec![]))
        );
    }

    #[test]
    fn bad_register_responses_say_where() {
        assert_eq!(
            Response::decode(&response_frame(0x10, &[0x00, 0x3C])),
            Err(MessageError::RegisterEntryTruncated {
                offset: 0,
                available: 2
            })
        );
        assert_eq!(
            Response::decode(&response_frame(0x10, &[0x00, 0x3C, 0x08, 0x04, 0x43, 0x00])),
            Err(MessageError::Value {
                register: 60,
                offset: 3,
                source: ValueError::Truncated {
                    needed: 6,
                    available: 3
                }
            })
        );
        assert_eq!(
            Response::decode(&response_frame(0x02, &[1, 2, 3])),
            Err(MessageError::Length {
                command: Command::GetSerialNo,
                direction: "response",
                expected: 4,
                found: 3
            })
        );
    }

    #[test]
    fn commands_without_public_layout_keep_their_bytes() {
        for command in [
            Command::SetClock,
            Command::PutRegister,
            Command::GetEventStatus,
            Command::GetLogLastPresent,
        ] {
            let frame = Frame::new(Direction::ToMeter, 63, command.cid(), vec![1, 2, 3]);
            let request = Request::decode(&frame).unwrap();
            assert_eq!(
                request,
                Request::Raw {
                    cid: command.cid(),
                    data: vec![1, 2, 3]
                }
            );
            assert_eq!(request.to_frame(63), frame);
        }
        assert_eq!(cid_name(0xA2), "GetLogIDPresent");
        assert_eq!(cid_name(0x55), "CID 0x55");
    }

    #[test]
    fn software_revision_text() {
        assert_eq!(
            SoftwareRevision {
                letter: 6,
                number: 1
            }
            .to_string(),
            "F1"
        );
        assert_eq!(
            SoftwareRevision {
                letter: 0,
                number: 0
            }
            .to_string(),
            "not given"
        );
        assert_eq!(
            SoftwareRevision {
                letter: 27,
                number: 3
            }
            .to_string(),
            "?27.3"
        );
    }
}
