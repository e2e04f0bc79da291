//! The raw layer: the TOML text parsed into a tree that keeps the span of
//! every key and value (`toml::de::DeTable`), and a [`Context`] that reads
//! the tree through typed accessors.
//!
//! An accessor that meets a mistake (a wrong type, a number out of range, an
//! unknown key) records a diagnostic pointing at it and returns `None`, and
//! the caller goes on: one pass over the file finds every mistake, not only
//! the first, which a serde derive would stop at.

use std::ops::{Range, RangeInclusive};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, Location, Severity};

/// A value of the tree, with its span.
pub(super) type Node<'i> = Spanned<DeValue<'i>>;

/// Collects diagnostics about one text.
pub(super) struct Context<'s> {
    text: &'s str,
    found: Vec<Diagnostic>,
}

impl<'s> Context<'s> {
    /// A context for `text`, with nothing found yet.
    pub fn new(text: &'s str) -> Self {
        Context {
            text,
            found: Vec::new(),
        }
    }

    /// Records a diagnostic at `span`.
    pub fn report(
        &mut self,
        severity: Severity,
        span: Range<usize>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.found.push(Diagnostic {
            severity,
            location: Some(Location::of(self.text, span)),
            message: message.into(),
            hint: hint.into(),
        });
    }

    /// Records an error at `span`.
    pub fn error(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.report(Severity::Error, span, message, hint);
    }

    /// Everything recorded, in the order of the file (errors first at one place).
    pub fn into_diagnostics(mut self) -> Vec<Diagnostic> {
        self.found.sort_by_key(|diagnostic| {
            (
                diagnostic
                    .location
                    .as_ref()
                    .map(|location| location.span.start),
                diagnostic.severity,
            )
        });
        self.found
    }

    /// Opens `node` as a table named `name` in messages (`[[bus.request]]`) and
    /// reports each of its keys that is not among `known`.
    pub fn table<'t, 'i>(
        &mut self,
        key: &str,
        node: &'t Node<'i>,
        name: &'static str,
        known: &[&str],
        example: &str,
    ) -> Option<Table<'t, 'i>> {
        let DeValue::Table(entries) = node.get_ref() else {
            self.wrong_type(key, node, "a table", example);
            return None;
        };
        Some(self.open(entries, node.span(), name, known))
    }

    /// The top level of the document, with its keys checked against `known`.
    pub fn root<'t, 'i>(
        &mut self,
        document: &'t Spanned<DeTable<'i>>,
        known: &[&str],
    ) -> Table<'t, 'i> {
        self.open(document.get_ref(), 0..0, "the top level", known)
    }

    /// `entries` as a [`Table`], after reporting each key not among `known`.
    fn open<'t, 'i>(
        &mut self,
        entries: &'t DeTable<'i>,
        span: Range<usize>,
        name: &'static str,
        known: &[&str],
    ) -> Table<'t, 'i> {
        for (entry, _) in entries.iter() {
            if !known.contains(&entry.get_ref().as_ref()) {
                let hint = match did_you_mean(entry.get_ref(), known.iter().copied()) {
                    Some(suggestion) => format!(
                        "did you mean `{suggestion}`? The keys of {name} are: {}",
                        known.join(", ")
                    ),
                    None => format!("the keys of {name} are: {}", known.join(", ")),
                };
                self.error(
                    entry.span(),
                    format!("unknown key `{}` in {name}", entry.get_ref()),
                    hint,
                );
            }
        }
        Table {
            name,
            span,
            entries,
        }
    }

    /// The elements of `field`, an array of tables (`[[bus]]`), each opened
    /// with [`Context::table`].
    pub fn tables<'t, 'i>(
        &mut self,
        field: &Field<'t, 'i>,
        name: &'static str,
        known: &[&str],
        example: &str,
    ) -> Vec<Table<'t, 'i>> {
        let DeValue::Array(elements) = field.node.get_ref() else {
            self.error(
                field.node.span(),
                format!("`{}` must be an array of tables, written {name}", field.key),
                format!("write the header with double brackets, for example:\n{example}"),
            );
            return Vec::new();
        };
        elements
            .iter()
            .filter_map(|element| self.table(field.key, element, name, known, example))
            .collect()
    }

    /// Reports that `key` holds a value of the wrong type.
    pub fn wrong_type(&mut self, key: &str, node: &Node<'_>, expected: &str, example: &str) {
        let found = type_name(node.get_ref());
        self.error(
            node.span(),
            format!("`{key}` must be {expected}, not {found}"),
            format!("for example: {example}"),
        );
    }

    /// The string in `field`.
    pub fn string<'t>(&mut self, field: &Field<'t, '_>, example: &str) -> Option<&'t str> {
        match field.node.get_ref() {
            DeValue::String(text) => Some(text.as_ref()),
            _ => {
                self.wrong_type(field.key, field.node, "a string", example);
                None
            }
        }
    }

    /// The boolean in `field`.
    pub fn boolean(&mut self, field: &Field<'_, '_>, example: &str) -> Option<bool> {
        match field.node.get_ref() {
            DeValue::Boolean(value) => Some(*value),
            _ => {
                self.wrong_type(field.key, field.node, "true or false", example);
                None
            }
        }
    }

    /// The integer in `node` (the value of `key`), which must lie in `range`.
    pub fn integer(
        &mut self,
        key: &str,
        node: &Node<'_>,
        range: RangeInclusive<i64>,
        example: &str,
    ) -> Option<i64> {
        let DeValue::Integer(integer) = node.get_ref() else {
            self.wrong_type(key, node, "an integer", example);
            return None;
        };
        match i64::from_str_radix(integer.as_str(), integer.radix()) {
            Ok(value) if range.contains(&value) => Some(value),
            _ => {
                let written = &self.text[node.span()];
                self.error(
                    node.span(),
                    format!(
                        "`{key}` must be {} to {}, not {written}",
                        range.start(),
                        range.end()
                    ),
                    format!("for example: {example}"),
                );
                None
            }
        }
    }

    /// The integer in `field`, which must lie in `range`.
    pub fn integer_field(
        &mut self,
        field: &Field<'_, '_>,
        range: RangeInclusive<i64>,
        example: &str,
    ) -> Option<i64> {
        self.integer(field.key, field.node, range, example)
    }

    /// The text of `node` as written in the file (a float's digits).
    pub fn source_of(&self, node: &Node<'_>) -> &'s str {
        self.text.get(node.span()).unwrap_or_default()
    }

    /// The span in the file of the characters `chars` (0-based, counted in
    /// `char`s) of the string `value` held by `node`.
    ///
    /// The file holds the string between its quotes; when it holds it as is
    /// (no escapes), character `i` of the value is character `i` after the
    /// opening quote. With escapes the two differ, and the whole string is
    /// the best place to point at.
    pub fn string_part(&self, node: &Node<'_>, value: &str, chars: Range<usize>) -> Range<usize> {
        let span = node.span();
        let raw = self.text.get(span.clone()).unwrap_or_default();
        let quote_len = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            3
        } else {
            1
        };
        let Some(inside) = raw.get(quote_len..raw.len().saturating_sub(quote_len)) else {
            return span;
        };
        // A newline right after the opening delimiter of a multi-line
        // string is not part of the value.
        let (inside, skipped) = match quote_len {
            3 if inside.starts_with("\r\n") => (&inside[2..], 2),
            3 if inside.starts_with('\n') => (&inside[1..], 1),
            _ => (inside, 0),
        };
        if inside != value {
            return span;
        }
        let byte = |char_index: usize| {
            value
                .char_indices()
                .nth(char_index)
                .map_or(value.len(), |(index, _)| index)
        };
        let start = span.start + quote_len + skipped;
        start + byte(chars.start)..start + byte(chars.end.max(chars.start + 1))
    }
}

/// A table of the tree, with the name messages give it.
pub(super) struct Table<'t, 'i> {
    /// How messages name it: `[[bus.request]]`.
    pub name: &'static str,
    /// Its header (or the whole inline table).
    pub span: Range<usize>,
    entries: &'t DeTable<'i>,
}

impl<'t, 'i> Table<'t, 'i> {
    /// The entry `key`, if present.
    pub fn get(&self, key: &'t str) -> Option<Field<'t, 'i>> {
        self.entries.get_key_value(key).map(|(name, node)| Field {
            key,
            key_span: name.span(),
            node,
        })
    }
}

/// A key of a table and its value.
pub(super) struct Field<'t, 'i> {
    /// The key.
    pub key: &'t str,
    /// Where the key is written.
    pub key_span: Range<usize>,
    /// The value.
    pub node: &'t Node<'i>,
}

impl Field<'_, '_> {
    /// Where the value is written.
    pub fn span(&self) -> Range<usize> {
        self.node.span()
    }
}

/// The type of a value with its article, for messages: `a string`.
pub(super) fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The candidate closest to `word`, if it is close enough to be a likely
/// typo (case does not count).
pub(super) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let word = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|candidate| {
            (
                strsim::jaro_winkler(&word, &candidate.to_ascii_lowercase()),
                candidate,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|(left, _), (right, _)| left.total_cmp(right))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_key() {
        let keys = ["name", "serial", "tcp", "udp", "timeout_ms"];
        assert_eq!(did_you_mean("nmae", keys), Some("name"));
        assert_eq!(did_you_mean("tiemout_ms", keys), Some("timeout_ms"));
        assert_eq!(did_you_mean("Serial", keys), Some("serial"));
        assert_eq!(did_you_mean("colour", keys), None);
    }

    /// Character offsets inside a string value land on the right bytes of
    /// the file, whatever the quotes; with escapes, the whole string.
    #[test]
    fn string_parts_map_into_the_file() {
        for (text, value, part, expected) in [
            ("a = \"1;2;17\"", "1;2;17", 2..3, "2"),
            ("a = '1;2;17'", "1;2;17", 4..6, "17"),
            ("a = \"é;x\"", "é;x", 2..3, "x"),
            ("a = \"\"\"\n1;x\"\"\"", "1;x", 2..3, "x"),
            ("a = \"\\u0031;x\"", "1;x", 2..3, "\"\\u0031;x\""),
        ] {
            let document = DeTable::parse(text).expect("valid TOML");
            let node = document.get_ref().get("a").expect("key a");
            let context = Context::new(text);
            assert_eq!(
                &text[context.string_part(node, value, part)],
                expected,
                "{text}"
            );
        }
    }
}
