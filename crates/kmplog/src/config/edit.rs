//! Editing the request queue of a configuration file in place: add, rename,
//! remove and move requests, keeping every other byte of the file.
//!
//! `toml_edit` parses the file with the span of every table header and
//! value. Each request is a block of text: its `[[bus.request]]` header with
//! the comment lines right above it, its keys and its sub-tables
//! (`[[bus.request.threshold]]`), up to the next header that is not its own
//! (whose comments go with that header). An edit moves, deletes or inserts
//! whole blocks, or replaces one value, and leaves the blank lines between
//! blocks where they are, so comments and layout survive byte for byte.
//! Rebuilding the document with `DocumentMut` would keep comments too, but
//! moving an array-of-tables entry there also means renumbering the
//! positions of its sub-tables, and blank lines travel with the wrong table.
//!
//! Every edit ends with the new text validated by [`super::parse`]: an edit
//! that would leave an invalid file is refused with the diagnostics. The
//! web console's editor makes several edits in a row and validates once at
//! the end ([`QueueFile::lenient`]), so that it can show each mistake at its
//! field ([`field_at`]).

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use toml_edit::{Array, Document, Item, Table, Value};

use super::Diagnostics;

/// A request of a bus, as the command line names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestRef {
    /// 1-based position in the bus queue.
    Position(usize),
    /// Exact description.
    Description(String),
}

impl FromStr for RequestRef {
    type Err = String;

    /// Digits are a position; anything else a description.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(
                "give a request's position (1, 2, ...) or its exact description".to_owned(),
            );
        }
        Ok(match text.parse::<usize>() {
            Ok(position) => RequestRef::Position(position),
            Err(_) => RequestRef::Description(text.to_owned()),
        })
    }
}

impl fmt::Display for RequestRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestRef::Position(position) => write!(f, "{position}"),
            RequestRef::Description(description) => write!(f, "'{description}'"),
        }
    }
}

/// A request to add, as text that [`super::parse`] will check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// The description.
    pub description: String,
    /// Addresses as written in the file: `1;2;17`.
    pub addresses: String,
    /// Items: catalogue names or register numbers (`E1`, `86`).
    pub items: Vec<String>,
    /// The method key and its value: `("polling", "30s")`; `("once", "")`
    /// for once.
    pub method: (&'static str, String),
}

impl NewRequest {
    /// The request as a `[[bus.request]]` block, ending in a newline.
    fn to_toml(&self) -> String {
        let mut items = Array::new();
        for item in &self.items {
            match item.parse::<i64>() {
                Ok(number) => items.push(number),
                Err(_) => items.push(item.as_str()),
            }
        }
        let (key, value) = &self.method;
        let method = match *key {
            "once" => Value::from(true),
            _ => Value::from(value.as_str()),
        };
        format!(
            "[[bus.request]]\ndescription = {}\naddresses = {}\nitems = {items}\n{key} = {method}\n",
            Value::from(self.description.as_str()),
            Value::from(self.addresses.as_str()),
        )
    }
}

/// Which way a request moves in its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Toward the front: runs earlier.
    Up,
    /// Toward the back.
    Down,
}

/// Why an edit was not made.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The file is not TOML; `kmplog check` says where.
    #[error("{file_name} is not valid TOML ({message}); `kmplog check {file_name}` shows where")]
    Syntax {
        /// The file.
        file_name: String,
        /// The parser's message.
        message: String,
    },
    /// No bus has that name.
    #[error("no bus '{bus}'; buses: {known}")]
    NoBus {
        /// The name asked for.
        bus: String,
        /// The buses of the file, listed.
        known: String,
    },
    /// The bus has no such request.
    #[error("no request {request} on bus '{bus}'; requests: {known}")]
    NoRequest {
        /// The request asked for.
        request: RequestRef,
        /// The bus.
        bus: String,
        /// The bus's requests, listed.
        known: String,
    },
    /// A position to add at is past the end of the queue.
    #[error("position {position} is out of range: bus '{bus}' has {count} requests, so give 1 to {}", count + 1)]
    Position {
        /// The position asked for.
        position: usize,
        /// The bus.
        bus: String,
        /// Its number of requests.
        count: usize,
    },
    /// The request is first (moving up) or last (moving down) already.
    #[error("request {position} '{description}' is already {edge} on bus '{bus}'")]
    AtEdge {
        /// Its position.
        position: usize,
        /// Its description.
        description: String,
        /// `first` or `last`.
        edge: &'static str,
        /// The bus.
        bus: String,
    },
    /// The requests are written in a form the editor does not change.
    #[error(
        "bus '{bus}' writes its requests as an inline array; edit them by hand, or write each as a [[bus.request]] table"
    )]
    Inline {
        /// The bus.
        bus: String,
    },
    /// The edited file would not be valid.
    #[error("the edit would leave the file invalid, so it was not made:\n{0}")]
    Invalid(Diagnostics),
}

/// A configuration file's text, with the place of each bus and request.
pub struct QueueFile<'a> {
    text: &'a str,
    file_name: &'a str,
    buses: Vec<BusPlace>,
    /// Whether each edit validates the new file.
    validate: bool,
}

/// A bus to add, as text that [`super::parse`] will check.
#[derive(Debug, Clone)]
pub struct NewBus {
    /// Its name.
    pub name: String,
    /// Its line's key and value: `("tcp", "10.0.0.5:4001")`, `("serial",
    /// "/dev/ttyUSB0")`, `("udp", "10.0.0.6:4001")`.
    pub line: (&'static str, String),
    /// Further keys with their values as TOML (`baud`, `1200`).
    pub options: Vec<(String, Value)>,
}

/// Where a bus and its requests are in the text.
struct BusPlace {
    name: String,
    /// The bus's header, its keys and all its requests.
    block: Range<usize>,
    /// Its own keys (not those of its requests).
    keys: KeysPlace,
    /// `None` when the requests are an inline array.
    requests: Option<Vec<RequestPlace>>,
}

/// Where a request is in the text.
struct RequestPlace {
    description: String,
    /// The span of the description's value.
    description_span: Option<Range<usize>>,
    /// Its block: leading comments, header, keys and sub-tables.
    block: Range<usize>,
    /// Its own keys (not those of its sub-tables).
    keys: KeysPlace,
    /// Where its sub-tables (`[[bus.request.threshold]]`) begin, with the
    /// comments above the first; `None` without any.
    sub_tables: Option<usize>,
}

/// The keys of one table: a bus's or a request's own.
struct KeysPlace {
    /// The start of the line after the table's header.
    body: usize,
    keys: Vec<KeyPlace>,
}

/// A threshold to write, as text that [`super::parse`] will check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewThreshold {
    /// The export name of the watched item.
    pub item: String,
    /// The limits as typed (`"90.00"`); empty: none.
    pub above: String,
    /// See `above`.
    pub below: String,
    /// The event it fires.
    pub event: String,
}

impl NewThreshold {
    /// The threshold as a `[[bus.request.threshold]]` block, ending in a
    /// newline.
    fn to_toml(&self) -> String {
        let mut block = format!(
            "[[bus.request.threshold]]\nitem = {}\n",
            Value::from(self.item.as_str())
        );
        for (key, limit) in [("above", &self.above), ("below", &self.below)] {
            if !limit.trim().is_empty() {
                block.push_str(&format!("{key} = {}\n", Value::from(limit.trim())));
            }
        }
        block.push_str(&format!("event = {}\n", Value::from(self.event.as_str())));
        block
    }
}

/// Where a key of a request is.
struct KeyPlace {
    key: String,
    /// The span of its value.
    value: Range<usize>,
    /// Its whole line, newline included.
    line: Range<usize>,
}

impl<'a> QueueFile<'a> {
    /// Reads the places of buses and requests in `text`.
    pub fn new(text: &'a str, file_name: &'a str) -> Result<Self, EditError> {
        let document = Document::parse(text).map_err(|error| EditError::Syntax {
            file_name: file_name.to_owned(),
            message: error.message().trim().replace('\n', "; "),
        })?;
        let mut headers = Vec::new();
        collect_headers(document.as_table(), &mut headers);
        headers.sort_unstable();
        let buses = document
            .get("bus")
            .and_then(Item::as_array_of_tables)
            .map(|buses| {
                buses
                    .iter()
                    .map(|bus| BusPlace::new(text, bus, &headers))
                    .collect()
            })
            .unwrap_or_default();
        Ok(QueueFile {
            text,
            file_name,
            buses,
            validate: true,
        })
    }

    /// As [`QueueFile::new`], but its edits do not validate the new file:
    /// for a series of edits validated once at the end.
    pub fn lenient(text: &'a str, file_name: &'a str) -> Result<Self, EditError> {
        let mut file = Self::new(text, file_name)?;
        file.validate = false;
        Ok(file)
    }

    /// Sets keys of request `which` of `bus`: each `Some` value replaces the
    /// key's value where it is (its comment stays) or is added after the
    /// request's last key; `None` removes the key's line.
    pub fn set(
        &self,
        bus: &str,
        which: &RequestRef,
        keys: &[(String, Option<Value>)],
    ) -> Result<String, EditError> {
        let (_, request) = self.find(bus, which)?;
        self.checked(set_keys(self.text, &request.keys, keys))
    }

    /// Sets keys of bus `bus` itself (its line and options), as
    /// [`QueueFile::set`] does for a request.
    pub fn set_bus(
        &self,
        bus: &str,
        keys: &[(String, Option<Value>)],
    ) -> Result<String, EditError> {
        let (place, _) = self.requests(bus)?;
        self.checked(set_keys(self.text, &place.keys, keys))
    }

    /// Replaces the thresholds of request `which` of `bus` with
    /// `thresholds`, written as `[[bus.request.threshold]]` tables after its
    /// keys. Everything else of the file stays; comments inside the old
    /// threshold tables go with them.
    pub fn set_thresholds(
        &self,
        bus: &str,
        which: &RequestRef,
        thresholds: &[NewThreshold],
    ) -> Result<String, EditError> {
        let (_, request) = self.find(bus, which)?;
        let blocks: Vec<String> = thresholds.iter().map(NewThreshold::to_toml).collect();
        let end = request.block.end;
        let new_text = match (request.sub_tables, blocks.is_empty()) {
            (Some(start), false) => splice(self.text, start..end, &blocks.join("\n")),
            (Some(start), true) => splice(self.text, content_end(self.text, start)..end, ""),
            (None, false) => {
                let newline = if self.text[..end].ends_with('\n') {
                    ""
                } else {
                    "\n"
                };
                splice(
                    self.text,
                    end..end,
                    &format!("{newline}\n{}", blocks.join("\n")),
                )
            }
            (None, true) => self.text.to_owned(),
        };
        self.checked(new_text)
    }

    /// Adds `bus` at the end of the file, a blank line before it.
    pub fn add_bus(&self, bus: &NewBus) -> Result<String, EditError> {
        let mut block = format!(
            "[[bus]]\nname = {}\n{} = {}\n",
            Value::from(bus.name.as_str()),
            bus.line.0,
            Value::from(bus.line.1.as_str())
        );
        for (key, value) in &bus.options {
            let key = toml_edit::Key::new(key.as_str());
            block.push_str(&format!("{key} = {}\n", value.to_string().trim()));
        }
        let content = self.text.trim_end();
        let separator = if content.is_empty() { "" } else { "\n\n" };
        self.checked(format!("{content}{separator}{block}"))
    }

    /// Removes bus `bus` with all its requests and the blank lines before it.
    pub fn remove_bus(&self, bus: &str) -> Result<String, EditError> {
        let (place, _) = self.requests(bus)?;
        let start = content_end(self.text, place.block.start);
        self.checked(splice(self.text, start..place.block.end, ""))
    }

    /// Adds `request` to `bus` at 1-based `position` (default: last).
    pub fn add(
        &self,
        bus: &str,
        request: &NewRequest,
        position: Option<usize>,
    ) -> Result<String, EditError> {
        let (bus_place, requests) = self.requests(bus)?;
        let count = requests.len();
        let block = request.to_toml();
        let new_text = match position.unwrap_or(count + 1) {
            position @ 1.. if position <= count => {
                // Before the request now at `position`, a blank line between.
                let at = requests[position - 1].block.start;
                splice(self.text, at..at, &format!("{block}\n"))
            }
            position if position == count + 1 => {
                // After the bus's last line, a blank line between.
                let end = bus_place.block.end;
                let newline = if self.text[..end].ends_with('\n') {
                    ""
                } else {
                    "\n"
                };
                splice(self.text, end..end, &format!("{newline}\n{block}"))
            }
            position => {
                return Err(EditError::Position {
                    position,
                    bus: bus.to_owned(),
                    count,
                });
            }
        };
        self.checked(new_text)
    }

    /// Gives request `which` of `bus` the description `new_description`.
    pub fn rename(
        &self,
        bus: &str,
        which: &RequestRef,
        new_description: &str,
    ) -> Result<String, EditError> {
        let (_, request) = self.find(bus, which)?;
        let value = Value::from(new_description).to_string();
        let new_text = match &request.description_span {
            Some(span) => splice(self.text, span.clone(), &value),
            // A request without a description is invalid; adding one fixes it.
            None => splice(
                self.text,
                request.keys.body..request.keys.body,
                &format!("description = {value}\n"),
            ),
        };
        self.checked(new_text)
    }

    /// Removes request `which` of `bus`, with the blank lines before it.
    pub fn remove(&self, bus: &str, which: &RequestRef) -> Result<String, EditError> {
        let (_, request) = self.find(bus, which)?;
        let start = content_end(self.text, request.block.start);
        self.checked(splice(self.text, start..request.block.end, ""))
    }

    /// Moves request `which` of `bus` one place `direction`.
    pub fn move_request(
        &self,
        bus: &str,
        which: &RequestRef,
        direction: Direction,
    ) -> Result<String, EditError> {
        let (index, request) = self.find(bus, which)?;
        let (_, requests) = self.requests(bus)?;
        let (first, second) = match direction {
            Direction::Up if index > 0 => (&requests[index - 1], request),
            Direction::Down if index + 1 < requests.len() => (request, &requests[index + 1]),
            _ => {
                return Err(EditError::AtEdge {
                    position: index + 1,
                    description: request.description.clone(),
                    edge: if direction == Direction::Up {
                        "first"
                    } else {
                        "last"
                    },
                    bus: bus.to_owned(),
                });
            }
        };
        // Swap the two blocks; the blank lines between them stay.
        let text = self.text;
        let new_text = [
            &text[..first.block.start],
            &text[second.block.clone()],
            &text[first.block.end..second.block.start],
            &text[first.block.clone()],
            &text[second.block.end..],
        ]
        .concat();
        self.checked(new_text)
    }

    /// The bus named `bus` and its requests.
    fn requests(&self, bus: &str) -> Result<(&BusPlace, &[RequestPlace]), EditError> {
        let place = self
            .buses
            .iter()
            .find(|place| place.name == bus)
            .ok_or_else(|| {
                let known: Vec<String> = self
                    .buses
                    .iter()
                    .map(|place| format!("'{}'", place.name))
                    .collect();
                EditError::NoBus {
                    bus: bus.to_owned(),
                    known: if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    },
                }
            })?;
        let requests = place.requests.as_deref().ok_or_else(|| EditError::Inline {
            bus: bus.to_owned(),
        })?;
        Ok((place, requests))
    }

    /// Request `which` of `bus`, with its 0-based index.
    fn find(&self, bus: &str, which: &RequestRef) -> Result<(usize, &RequestPlace), EditError> {
        let (_, requests) = self.requests(bus)?;
        let found = match which {
            RequestRef::Position(position) => position
                .checked_sub(1)
                .filter(|index| *index < requests.len()),
            RequestRef::Description(description) => requests
                .iter()
                .position(|request| &request.description == description),
        };
        found.map(|index| (index, &requests[index])).ok_or_else(|| {
            let known: Vec<String> = requests
                .iter()
                .enumerate()
                .map(|(index, request)| format!("{} '{}'", index + 1, request.description))
                .collect();
            EditError::NoRequest {
                request: which.clone(),
                bus: bus.to_owned(),
                known: if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                },
            }
        })
    }

    /// `new_text` if it is a valid configuration.
    fn checked(&self, new_text: String) -> Result<String, EditError> {
        if !self.validate {
            return Ok(new_text);
        }
        match super::parse(&new_text, self.file_name) {
            Ok(_) => Ok(new_text),
            Err(diagnostics) => Err(EditError::Invalid(diagnostics)),
        }
    }
}

impl BusPlace {
    fn new(text: &str, bus: &Table, headers: &[usize]) -> BusPlace {
        let mut own = Vec::new();
        collect_headers(bus, &mut own);
        let header = bus.span().map_or(0, |span| span.start);
        let requests = match bus.get("request") {
            None => Some(Vec::new()),
            Some(Item::ArrayOfTables(requests)) => Some(
                requests
                    .iter()
                    .map(|request| RequestPlace::new(text, request, headers))
                    .collect(),
            ),
            Some(_) => None,
        };
        BusPlace {
            name: bus
                .get("name")
                .and_then(Item::as_str)
                .unwrap_or_default()
                .to_owned(),
            block: block(text, header, &own, headers),
            keys: KeysPlace::new(text, bus),
            requests,
        }
    }
}

impl RequestPlace {
    fn new(text: &str, request: &Table, headers: &[usize]) -> RequestPlace {
        let mut own = Vec::new();
        collect_headers(request, &mut own);
        let description = request.get("description");
        let header = request.span().unwrap_or_default();
        RequestPlace {
            description: description
                .and_then(Item::as_str)
                .unwrap_or_default()
                .to_owned(),
            description_span: description.and_then(Item::span),
            block: block(text, header.start, &own, headers),
            keys: KeysPlace::new(text, request),
            sub_tables: own
                .iter()
                .min()
                .map(|&first| comments_start(text, line_start(text, first))),
        }
    }
}

impl KeysPlace {
    /// The own keys of `table` (values, not sub-tables) in `text`.
    fn new(text: &str, table: &Table) -> KeysPlace {
        let header = table.span().unwrap_or_default();
        KeysPlace {
            body: text[header.end..]
                .find('\n')
                .map_or(text.len(), |newline| header.end + newline + 1),
            keys: table
                .iter()
                .filter(|(_, item)| item.is_value())
                .filter_map(|(key, item)| {
                    let value = item.span()?;
                    let start = line_start(text, value.start);
                    let end = text[value.end..]
                        .find('\n')
                        .map_or(text.len(), |newline| value.end + newline + 1);
                    Some(KeyPlace {
                        key: key.to_owned(),
                        value,
                        line: start..end,
                    })
                })
                .collect(),
        }
    }
}

/// `text` with `keys` set in the table at `place`: each `Some` value
/// replaces the key's value where it is (its comment stays) or is added
/// after the table's last key; `None` removes the key's line.
fn set_keys(text: &str, place: &KeysPlace, keys: &[(String, Option<Value>)]) -> String {
    // Edits from the end of the text backwards keep the earlier spans right.
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let mut added = String::new();
    for (key, value) in keys {
        let found = place.keys.iter().find(|found| &found.key == key);
        match (found, value) {
            (Some(found), Some(value)) => {
                edits.push((found.value.clone(), value.to_string().trim().to_owned()));
            }
            (Some(found), None) => edits.push((found.line.clone(), String::new())),
            (None, Some(value)) => {
                let key = toml_edit::Key::new(key.as_str());
                added.push_str(&format!("{key} = {}\n", value.to_string().trim()));
            }
            (None, None) => {}
        }
    }
    let after_keys = place
        .keys
        .iter()
        .map(|found| found.line.end)
        .max()
        .unwrap_or(place.body);
    edits.push((after_keys..after_keys, added));
    edits.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
    let mut new_text = text.to_owned();
    for (range, replacement) in edits {
        new_text.replace_range(range, &replacement);
    }
    new_text
}

/// Where a mistake is in the editor's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPlace {
    /// The bus's 0-based index.
    pub bus: usize,
    /// The request's 0-based index in its bus; `None` for the bus itself.
    pub request: Option<usize>,
    /// The key whose line holds the mistake; `None` for the table as a whole.
    pub key: Option<String>,
}

/// The bus, request and key of `text` whose lines hold byte `at`; `None`
/// outside every bus or when `text` is not TOML.
pub fn field_at(text: &str, at: usize) -> Option<FieldPlace> {
    let document = Document::parse(text).ok()?;
    let mut headers = Vec::new();
    collect_headers(document.as_table(), &mut headers);
    headers.sort_unstable();
    let buses = document.get("bus")?.as_array_of_tables()?;
    let key_at = |table: &Table| {
        table
            .iter()
            .filter(|(_, item)| item.is_value())
            .find(|(_, item)| {
                item.span().is_some_and(|span| {
                    let end = text[span.end..]
                        .find('\n')
                        .map_or(text.len(), |newline| span.end + newline);
                    line_start(text, span.start) <= at && at <= end
                })
            })
            .map(|(key, _)| key.to_owned())
    };
    buses.iter().enumerate().find_map(|(bus, table)| {
        let place = BusPlace::new(text, table, &headers);
        if !place.block.contains(&at) {
            return None;
        }
        let requests = table.get("request").and_then(Item::as_array_of_tables);
        let request = requests
            .into_iter()
            .flat_map(|requests| requests.iter())
            .enumerate()
            .find_map(|(index, request)| {
                let place = RequestPlace::new(text, request, &headers);
                place.block.contains(&at).then_some((index, request, place))
            });
        Some(match request {
            Some((index, request, place)) => FieldPlace {
                bus,
                request: Some(index),
                // A mistake in a threshold's table is the thresholds'.
                key: key_at(request).or_else(|| {
                    place
                        .sub_tables
                        .filter(|&start| at >= start)
                        .map(|_| "threshold".to_owned())
                }),
            },
            None => FieldPlace {
                bus,
                request: None,
                key: key_at(table),
            },
        })
    })
}

/// The starts of the headers of `table`'s sub-tables, at every depth.
fn collect_headers(table: &Table, starts: &mut Vec<usize>) {
    for (_, item) in table.iter() {
        let tables: Vec<&Table> = match item {
            Item::Table(table) => vec![table],
            Item::ArrayOfTables(tables) => tables.iter().collect(),
            _ => Vec::new(),
        };
        for table in tables {
            starts.extend(table.span().map(|span| span.start));
            collect_headers(table, starts);
        }
    }
}

/// The block of the table whose header starts at `header` and whose
/// sub-tables' headers start at `own`: from the comment lines right above the
/// header to the last non-blank line before the next header that is not its
/// own (and that header's comments).
fn block(text: &str, header: usize, own: &[usize], headers: &[usize]) -> Range<usize> {
    let next = headers
        .iter()
        .copied()
        .find(|&start| start > header && !own.contains(&start));
    let end = next.map_or(text.len(), |next| {
        comments_start(text, line_start(text, next))
    });
    comments_start(text, line_start(text, header))..content_end(text, end)
}

/// The start of the line holding byte `at`.
fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |newline| newline + 1)
}

/// The start of the run of comment lines right above the line starting at
/// `at` (no blank line between), or `at`.
fn comments_start(text: &str, mut at: usize) -> usize {
    while at > 0 {
        let previous = line_start(text, at - 1);
        if !text[previous..at].trim_start().starts_with('#') {
            break;
        }
        at = previous;
    }
    at
}

/// The end of the last non-blank line before `at`, after its newline.
fn content_end(text: &str, at: usize) -> usize {
    let content = text[..at].trim_end();
    match text[content.len()..at].find('\n') {
        Some(newline) => content.len() + newline + 1,
        None => at,
    }
}

/// `text` with `range` replaced by `replacement`.
fn splice(text: &str, range: Range<usize>, replacement: &str) -> String {
    [&text[..range.start], replacement, &text[range.end..]].concat()
}

/// Writes `text` to a temporary file beside `file`, with `file`'s
/// permissions, and renames it over `file`: a reader sees the old file or
/// the new one, never half of it. `kmplog queue` and the web console's
/// editor save through it.
pub fn replace(file: &std::path::Path, text: &str) -> std::io::Result<()> {
    let name = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = file.with_file_name(format!(".{name}.kmplog-edit"));
    let written = std::fs::write(&temporary, text)
        .and_then(|()| std::fs::set_permissions(&temporary, std::fs::metadata(file)?.permissions()))
        .and_then(|()| std::fs::rename(&temporary, file));
    if written.is_err() {
        // Leave no temporary file behind; the original is untouched.
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "# Top comment\n[[bus]]\nname = \"heat\"   # the heat line\ntcp = \"h:1\"\n\n";
    const MAIN: &str = "# First request\n[[bus.request]]\ndescription = \"Main values\"  # keep\naddresses = \"1;2\"\nitems = [\"E1\", \"V1\"]\npolling = \"30s\"\n\n  # Its threshold\n  [[bus.request.threshold]]\n  item = \"E1\"\n  above = \"5\"\n  event = \"hot\"\n";
    const DAILY: &str = "# Second request\n[[bus.request]]\ndescription = \"Daily\"\naddresses = 1\nitems = [\"E1\"]\nat = \"00:00:05\"   # just after midnight\n";
    const TAIL: &str = "\n# The other line\n[[bus]]\nname = \"other\"\nudp = \"h:2\"\n";

    fn file() -> String {
        [HEAD, MAIN, "\n", DAILY, TAIL].concat()
    }

    fn edit(
        operation: impl FnOnce(&QueueFile<'_>) -> Result<String, EditError>,
    ) -> Result<String, EditError> {
        let text = file();
        let queue = QueueFile::new(&text, "kmplog.toml").expect("parsable");
        operation(&queue)
    }

    fn position(position: usize) -> RequestRef {
        RequestRef::Position(position)
    }

    #[test]
    fn moving_swaps_whole_blocks_with_their_comments() {
        let expected = [HEAD, DAILY, "\n", MAIN, TAIL].concat();
        assert_eq!(
            edit(|queue| queue.move_request("heat", &position(1), Direction::Down)).unwrap(),
            expected
        );
        let daily = RequestRef::Description("Daily".to_owned());
        assert_eq!(
            edit(|queue| queue.move_request("heat", &daily, Direction::Up)).unwrap(),
            expected
        );
    }

    #[test]
    fn removing_takes_the_block_and_the_blank_lines_before_it() {
        assert_eq!(
            edit(|queue| queue.remove("heat", &position(2))).unwrap(),
            [HEAD, MAIN, TAIL].concat()
        );
        assert_eq!(
            edit(|queue| queue.remove("heat", &position(1))).unwrap(),
            [HEAD.trim_end_matches('\n'), "\n\n", DAILY, TAIL].concat()
        );
    }

    #[test]
    fn renaming_changes_only_the_value() {
        let renamed = edit(|queue| queue.rename("heat", &position(1), "Main \"values\"")).unwrap();
        assert_eq!(
            renamed,
            file().replace("\"Main values\"", "'Main \"values\"'")
        );
    }

    #[test]
    fn adding_inserts_a_block_at_the_end_or_before_a_position() {
        let request = NewRequest {
            description: "Temperatures".to_owned(),
            addresses: "1;2".to_owned(),
            items: vec!["T1".to_owned(), "87".to_owned()],
            method: ("cron", "0 */5 * * * *".to_owned()),
        };
        let block = "[[bus.request]]\ndescription = \"Temperatures\"\naddresses = \"1;2\"\nitems = [\"T1\", 87]\ncron = \"0 */5 * * * *\"\n";
        assert_eq!(
            edit(|queue| queue.add("heat", &request, None)).unwrap(),
            [HEAD, MAIN, "\n", DAILY, "\n", block, TAIL].concat()
        );
        assert_eq!(
            edit(|queue| queue.add("heat", &request, Some(3))).unwrap(),
            [HEAD, MAIN, "\n", DAILY, "\n", block, TAIL].concat()
        );
        assert_eq!(
            edit(|queue| queue.add("heat", &request, Some(1))).unwrap(),
            [HEAD, block, "\n", MAIN, "\n", DAILY, TAIL].concat()
        );
        let once = NewRequest {
            method: ("once", String::new()),
            ..request
        };
        let added = edit(|queue| queue.add("other", &once, None)).unwrap();
        assert!(
            added.starts_with(&[HEAD, MAIN, "\n", DAILY, TAIL].concat()),
            "{added}"
        );
        assert!(added.ends_with("udp = \"h:2\"\n\n[[bus.request]]\ndescription = \"Temperatures\"\naddresses = \"1;2\"\nitems = [\"T1\", 87]\nonce = true\n"), "{added}");
    }

    #[test]
    fn a_bus_line_changes_in_place_and_its_options_follow_it() {
        let keys = [
            ("tcp".to_owned(), None),
            ("serial".to_owned(), Some(Value::from("/dev/ttyUSB1"))),
            ("baud".to_owned(), Some(Value::from(2400))),
        ];
        let serial = edit(|queue| queue.set_bus("heat", &keys)).unwrap();
        assert_eq!(
            serial,
            file().replace(
                "tcp = \"h:1\"\n",
                "serial = \"/dev/ttyUSB1\"\nbaud = 2400\n"
            )
        );
        let moved =
            edit(|queue| queue.set_bus("other", &[("udp".to_owned(), Some(Value::from("h:3")))]))
                .unwrap();
        assert_eq!(moved, file().replace("udp = \"h:2\"", "udp = \"h:3\""));
        let wrong = [("baud".to_owned(), Some(Value::from(2400)))];
        let refused = edit(|queue| queue.set_bus("heat", &wrong)).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("`baud` applies to serial buses only, and this bus uses tcp"),
            "{refused}"
        );
    }

    #[test]
    fn thresholds_are_replaced_added_and_removed_as_tables() {
        let hot = NewThreshold {
            item: "V1".to_owned(),
            above: String::new(),
            below: "0.5".to_owned(),
            event: "low".to_owned(),
        };
        let main = MAIN.replace(
            "\n  # Its threshold\n  [[bus.request.threshold]]\n  item = \"E1\"\n  above = \"5\"\n  event = \"hot\"\n",
            "\n[[bus.request.threshold]]\nitem = \"V1\"\nbelow = \"0.5\"\nevent = \"low\"\n",
        );
        assert_eq!(
            edit(|queue| queue.set_thresholds("heat", &position(1), std::slice::from_ref(&hot)))
                .unwrap(),
            [HEAD, &main, "\n", DAILY, TAIL].concat()
        );
        let bare = MAIN.split("\n  # Its threshold").next().unwrap();
        assert_eq!(
            edit(|queue| queue.set_thresholds("heat", &position(1), &[])).unwrap(),
            [HEAD, bare, "\n", DAILY, TAIL].concat()
        );
        let watched = NewThreshold {
            item: "E1".to_owned(),
            ..hot
        };
        assert_eq!(
            edit(|queue| queue.set_thresholds("heat", &position(2), &[watched])).unwrap(),
            [
                HEAD,
                MAIN,
                "\n",
                DAILY,
                "\n[[bus.request.threshold]]\nitem = \"E1\"\nbelow = \"0.5\"\nevent = \"low\"\n",
                TAIL
            ]
            .concat()
        );
    }

    #[test]
    fn a_mistake_in_a_threshold_is_at_the_thresholds() {
        let text = file();
        let at = text.find("above = \"5\"").unwrap();
        assert_eq!(
            field_at(&text, at),
            Some(FieldPlace {
                bus: 0,
                request: Some(0),
                key: Some("threshold".to_owned())
            })
        );
        let at = text.find("tcp = ").unwrap();
        assert_eq!(
            field_at(&text, at),
            Some(FieldPlace {
                bus: 0,
                request: None,
                key: Some("tcp".to_owned())
            })
        );
    }

    #[test]
    fn edits_that_break_the_file_are_refused() {
        let duplicate =
            edit(|queue| queue.rename("heat", &position(2), "Main values")).unwrap_err();
        let EditError::Invalid(diagnostics) = &duplicate else {
            panic!("{duplicate}")
        };
        assert!(
            diagnostics
                .to_string()
                .contains("description `Main values` is already used by request 1"),
            "{duplicate}"
        );
        let request = NewRequest {
            description: "Bad".to_owned(),
            addresses: "1".to_owned(),
            items: vec!["E1".to_owned()],
            method: ("polling", "fast".to_owned()),
        };
        let bad = edit(|queue| queue.add("heat", &request, None)).unwrap_err();
        assert!(bad.to_string().contains("invalid `polling`"), "{bad}");
    }

    #[test]
    fn unknown_names_list_what_there_is() {
        for (result, message) in [
            (
                edit(|queue| queue.remove("cold", &position(1))),
                "no bus 'cold'; buses: 'heat', 'other'",
            ),
            (
                edit(|queue| queue.remove("heat", &position(3))),
                "no request 3 on bus 'heat'; requests: 1 'Main values', 2 'Daily'",
            ),
            (
                edit(|queue| queue.remove("heat", &RequestRef::Description("x".to_owned()))),
                "no request 'x' on bus 'heat'; requests: 1 'Main values', 2 'Daily'",
            ),
            (
                edit(|queue| queue.remove("other", &position(1))),
                "no request 1 on bus 'other'; requests: none",
            ),
            (
                edit(|queue| queue.move_request("heat", &position(1), Direction::Up)),
                "request 1 'Main values' is already first on bus 'heat'",
            ),
            (
                edit(|queue| queue.move_request("heat", &position(2), Direction::Down)),
                "request 2 'Daily' is already last on bus 'heat'",
            ),
        ] {
            assert_eq!(result.unwrap_err().to_string(), message);
        }
        assert!(QueueFile::new("a = \n", "x.toml").is_err());
    }
}
