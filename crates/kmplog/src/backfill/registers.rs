//! Which registers a logger keeps, from its GetConfiguration (`05`) answer:
//! what `kmplog backfill` reads when it is not told which registers. The
//! time stamps (348, 1002, 1003) are left out: every read asks for them
//! anyway, and they are the rows' times rather than readings.

use kmp::logger::{
    DATE_REGISTER, DATE_TIME_REGISTER, Logger, LoggerRequest, LoggerResponse, TIME_REGISTER,
};
use kmp::message::{Request, Response};

use super::paging::no_reply;
use crate::bus::{Master, Outcome};
use crate::transport::{Line, TransportError};

/// Why the meter did not say which registers its logger keeps.
#[derive(Debug, thiserror::Error)]
pub enum KeptRegistersError {
    /// No answer, or not a configuration.
    #[error(
        "meter {address} did not say which registers its {logger} logger keeps: {what} (asked with GetConfiguration, 0xB8 05)"
    )]
    Unanswered {
        /// The meter.
        address: u8,
        /// The logger asked about.
        logger: Logger,
        /// What it did instead.
        what: String,
    },
    /// The line failed.
    #[error(transparent)]
    Line(#[from] TransportError),
}

/// The registers of `logger`'s rows in the meter at `address`, in the
/// meter's order, without the time stamps; asked again once after a CRC
/// error or an invalid answer.
pub async fn kept_registers<L: Line>(
    master: &mut Master<L>,
    address: u8,
    logger: Logger,
) -> Result<Vec<u16>, KeptRegistersError> {
    let request = Request::Logger(LoggerRequest::GetConfiguration { logger });
    let unanswered = |what: String| KeptRegistersError::Unanswered {
        address,
        logger,
        what,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let exchange = master.transact(address, &request).await?;
        match exchange.outcome {
            Outcome::Response(Response::Logger(LoggerResponse::Configuration(configuration))) => {
                let stamps = [DATE_TIME_REGISTER, DATE_REGISTER, TIME_REGISTER];
                return Ok(configuration
                    .registers
                    .iter()
                    .copied()
                    .filter(|id| !stamps.contains(id))
                    .collect());
            }
            Outcome::BadFrame(_) | Outcome::BadMessage(_) if attempt == 1 => {}
            Outcome::NoReply => return Err(unanswered(no_reply(exchange.attempts))),
            Outcome::Response(Response::Logger(other)) => {
                return Err(unanswered(format!(
                    "an answer to subcommand 0x{:02X}",
                    other.subcommand()
                )));
            }
            Outcome::Response(_) => return Err(unanswered("a reply of another kind".to_owned())),
            other => return Err(unanswered(other.to_string())),
        }
    }
}
