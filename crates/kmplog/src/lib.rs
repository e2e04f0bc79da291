//! kmplog: a data logger for Kamstrup meters that speak KMP.
//!
//! The pipeline, one folder a stage: [`transport`] opens a line (serial port,
//! TCP gateway), [`bus`] owns it and runs one KMP transaction at a time on it
//! with the codec of the `kmp` crate, and [`cli`] is the command line on top.
//! [`sim`] is the meter simulator, which speaks to the rest only through the
//! wire format.

pub mod api;
pub mod backfill;
pub mod bus;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod live;
pub mod logger;
pub mod logging;
pub mod outbox;
pub mod reading;
pub mod reload;
pub mod service;
pub mod sim;
pub mod sink;
pub mod transport;
pub mod web;
