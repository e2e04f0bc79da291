//! `kmplog cron`: the next fire times of a cron expression, to check a
//! schedule before putting it in the configuration.

use jiff::ZonedDateTime;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use kmp_schedule::{Cron, Method, Schedule};

use super::output::print_line;
use super::{Failure, Outcome};

/// Options of `kmplog cron`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "A request runs at start-up only when the start time matches, to the second;\nwith a `?` and no second field, anywhere in the matching minute.\n\nExamples:\n  kmplog cron '0 */15 * * * *' --count 4\n  kmplog cron '0 9 1-7 * Mon' --start 2026-11-01T00:00:00 --tz Europe/Copenhagen\n  kmplog cron '? ? * * *' --start 2026-11-25T08:25:00 --count 2\n  kmplog cron '* 0-11 * *' --start 2026-11-25T11:58:00 --count 3\n  kmplog cron @weekly --count 2"
)]
pub struct Args {
    /// The expression: `second minute hour day-of-month month weekday`; five
    /// fields leave out the second (0), four also the weekday (any); or one of
    /// @yearly @monthly @weekly @daily @hourly. Quote it.
    #[arg(value_name = "EXPR")]
    expression: String,
    /// Start time: RFC 3339 with offset (2026-03-29T01:00:00+01:00) or a
    /// local date and time in --tz (2026-03-29T01:00:00); default now.
    #[arg(long, value_name = "DATETIME")]
    start: Option<String>,
    /// How many fire times to print.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    count: u32,
    /// Time zone (IANA name such as Europe/Copenhagen); default the system's.
    #[arg(long, value_name = "ZONE")]
    tz: Option<String>,
}

/// Runs `kmplog cron`.
pub fn run(args: Args) -> Outcome {
    let cron = Cron::parse(&args.expression).map_err(|error| {
        let caret = format!("{}^", " ".repeat(error.position));
        Failure::usage(format!(
            "invalid cron expression: {error}\n  {}\n  {caret}",
            args.expression
        ))
    })?;
    let zone = match &args.tz {
        Some(name) => {
            TimeZone::get(name).map_err(|error| Failure::usage(format!("--tz {name}: {error}")))?
        }
        None => TimeZone::system(),
    };
    let start = match &args.start {
        Some(text) => parse_start(text, &zone).map_err(Failure::usage)?,
        None => jiff::Timestamp::now().to_zoned_datetime(zone),
    };
    let lines: Vec<String> = fire_times(cron, &start, args.count as usize)
        .iter()
        .map(|fire| fire.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
        .collect();
    if lines.is_empty() {
        return Err(Failure::failed(format!(
            "'{}' never fires within {} years of {}",
            args.expression,
            kmp_schedule::SEARCH_YEARS,
            start.strftime("%Y-%m-%dT%H:%M:%S%:z")
        )));
    }
    print_line(lines.join("\n"));
    Ok(())
}

/// The first `count` fire times of `cron` from `start` on (fewer when it
/// stops firing within [`kmp_schedule::SEARCH_YEARS`]); also the preview
/// of the web console's editor.
pub fn fire_times(cron: Cron, start: &ZonedDateTime, count: usize) -> Vec<ZonedDateTime> {
    let schedule = Schedule::new(Method::Cron(cron), start);
    let mut fires = Vec::with_capacity(count);
    let mut next = schedule.first();
    while fires.len() < count {
        let Some(fire) = next else { break };
        next = schedule.next_after(&fire);
        fires.push(fire);
    }
    fires
}

/// RFC 3339 with an offset (its instant, shown in `zone`), or a civil date
/// and time taken in `zone`.
fn parse_start(text: &str, zone: &TimeZone) -> Result<ZonedDateTime, String> {
    if let Ok(instant) = text.parse::<jiff::Timestamp>() {
        return Ok(instant.to_zoned_datetime(zone.clone()));
    }
    let civil: DateTime = text.parse().map_err(|_| {
        format!("--start '{text}' is not a date and time; examples: 2026-03-29T01:00:00+01:00 or 2026-03-29T01:00:00")
    })?;
    civil
        .to_zoned_datetime(zone.clone())
        .map_err(|error| format!("--start '{text}': {error}"))
}
