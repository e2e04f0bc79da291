//! End-to-end tests: the real `kmplog` binary against `kmplog simulate`,
//! over TCP and over pseudo-terminals (the real serial code path).
//!
//! Every test starts its own simulator on port 0 or a fresh pty, so tests
//! run in parallel without sharing state.

mod api;
mod autofill;
mod backfill;
mod cli;
mod cluster;
mod config;
mod harness;
mod identify;
mod live;
mod logger;
mod memory;
mod mqtt;
mod offline;
mod one_shot;
mod outbox;
mod postgres;
mod reload;
mod web;
