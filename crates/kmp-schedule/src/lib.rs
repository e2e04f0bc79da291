//! When kmplog's requests fire: polling intervals, times of day and cron
//! expressions (SPEC §3), with the daylight-saving rules and the merging of
//! missed ticks (SPEC §2).
//!
//! Pure: nothing here does IO, starts a task or reads a clock. The start
//! instant and `now` are passed in as [`jiff::ZonedDateTime`]s, and answers are
//! instants in the same zone, so tests can play any date, zone and DST day.
//!
//! - [`interval`]: [`Interval`], `500ms`, `30s`, `5min`, `1h`;
//! - [`times`]: [`TimesOfDay`], `11:00:00;11:20:00`;
//! - [`cron`](mod@cron): [`Cron`] and [`BoundCron`], our own cron dialect (`?`,
//!   day-of-month AND weekday, names, 0/7 = Sunday);
//! - [`walk`]: from wall-clock patterns to instants, across DST gaps and folds;
//! - [`schedule`]: [`Method`] and [`Schedule`], the fire times of one request.
//!
//! ```
//! use kmp_schedule::{Cron, Method, Schedule};
//! use jiff::ZonedDateTime;
//!
//! // Started at 08:25: `? ? * * *` runs at start-up, then every day at 08:25.
//! let start: ZonedDateTime = "2026-05-12T08:25:00[UTC]".parse()?;
//! let schedule = Schedule::new(Method::Cron(Cron::parse("? ? * * *")?), &start);
//! assert_eq!(schedule.first(), Some(start.clone()));
//! let next = schedule.next_after(&start).unwrap();
//! assert_eq!(next.to_string(), "2026-05-13T08:25:00+00:00[UTC]");
//! # Ok::<(), Box<dyn std::error::Error>>(())
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

pub mod cron;
pub mod error;
pub mod interval;
pub mod schedule;
pub mod times;
pub mod walk;

pub use cron::{BoundCron, Cron, DEFAULT_CRON};
pub use error::{CronError, CronErrorKind, CronField, ScheduleError, TimeProblem};
pub use interval::Interval;
pub use schedule::{Merged, Method, Schedule};
pub use times::TimesOfDay;
pub use walk::SEARCH_YEARS;
