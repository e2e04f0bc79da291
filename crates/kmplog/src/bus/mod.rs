//! A bus is one half-duplex line of meters. The [`master`] runs KMP
//! transactions on it, one at a time: send a request, wait for the reply of
//! the addressed meter or the timeout, and turn what happened into data.

pub mod events;
mod health;
pub mod master;
pub mod meters;
pub mod passive;
pub mod state;
pub mod task;
pub mod wake;

#[cfg(test)]
mod schedule_tests;

#[cfg(test)]
mod master_line_tests;

pub use master::{EchoMode, Exchange, LineFault, Master, MasterSettings, Outcome};
