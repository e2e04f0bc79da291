//! A meter's own history: reading the rows of its loggers (CID 0xB8,
//! kmp-protocol.md §3.1) over a line, for `kmplog log` and for backfilling
//! readings a logger missed.
//!
//! - [`paging`]: reads a span of a logger (the newest N rows, log ids, or a
//!   time range) page by page over a [`Master`](crate::bus::Master): asks
//!   for what fits, shrinks the page when the meter cuts an answer short,
//!   retries a page once after a CRC error and stops at the logger's tail.
//! - [`registers`]: which registers a logger keeps (GetConfiguration),
//!   read when no register is named.
//! - [`readings`]: the rows as readings with status `logged`, at the meter's
//!   time, each under a key of its own so that backfilling twice adds
//!   nothing (`kmplog backfill` writes them to the outbox, which takes the
//!   key as given).
//! - [`auto`]: backfill by itself: after an outage of a meter whose request
//!   says `backfill = "hourly"` (or daily), the bus reads the missed rows
//!   between its due requests, one exchange at a time.

pub mod auto;
pub mod paging;
pub mod readings;
pub mod registers;
