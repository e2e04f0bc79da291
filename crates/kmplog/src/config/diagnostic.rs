//! What `check` reports: one [`Diagnostic`] per mistake, warning or note,
//! each with its place in the file, and [`Diagnostics`], the whole list with
//! the file's text, rendered like a compiler's messages (through
//! `annotate-snippets`): the line, a caret under the mistake, and a hint.

use std::fmt;
use std::ops::Range;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The file cannot be used.
    Error,
    /// The file can be used, but probably not as meant (a read budget exceeded).
    Warning,
    /// Worth knowing (an event that no request fires).
    Note,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        })
    }
}

/// Where in the file a diagnostic points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Byte range in the file's text.
    pub span: Range<usize>,
    /// Line, 1-based.
    pub line: usize,
    /// Column, 1-based, counted in characters.
    pub column: usize,
}

impl Location {
    /// The location of `span` in `text`.
    pub fn of(text: &str, span: Range<usize>) -> Location {
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let before = &text[..start];
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        Location {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            span: start..floor_char_boundary(text, span.end.clamp(start, text.len())),
        }
    }
}

/// The largest char boundary at or before `index`: spans come from the TOML
/// parser and fall on boundaries, but a location must never split a character.
fn floor_char_boundary(text: &str, index: usize) -> usize {
    (0..=index)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

/// One mistake, warning or note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// How bad it is.
    pub severity: Severity,
    /// Where it is; `None` for the file as a whole (it cannot be read), and
    /// then the message names the file.
    pub location: Option<Location>,
    /// What is wrong, in one sentence.
    pub message: String,
    /// What to write instead, with an example.
    pub hint: String,
}

impl Diagnostic {
    /// `line:column`, or an empty string for the file as a whole.
    pub fn line_column(&self) -> String {
        self.location
            .as_ref()
            .map(|at| format!("{}:{}", at.line, at.column))
            .unwrap_or_default()
    }
}

/// Every diagnostic about one file, with the file's name and text so they
/// can be shown with their source lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    file_name: String,
    text: String,
    list: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Diagnostics about `text`, read from `file_name`.
    pub fn new(
        file_name: impl Into<String>,
        text: impl Into<String>,
        list: Vec<Diagnostic>,
    ) -> Self {
        Diagnostics {
            file_name: file_name.into(),
            text: text.into(),
            list,
        }
    }

    /// The diagnostics, in the order of the file.
    pub fn list(&self) -> &[Diagnostic] {
        &self.list
    }

    /// How many diagnostics of `severity` there are.
    pub fn count(&self, severity: Severity) -> usize {
        self.list
            .iter()
            .filter(|diagnostic| diagnostic.severity == severity)
            .count()
    }
}

impl fmt::Display for Diagnostics {
    /// Each diagnostic as a compiler shows it:
    ///
    /// ```text
    /// error: unknown key `tiemout_ms` in [[bus.request]]
    ///   --> kmplog.toml:14:1
    ///    |
    /// 14 | tiemout_ms = 1600
    ///    | ^^^^^^^^^^
    ///    |
    ///    = help: did you mean `timeout_ms`? ...
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let renderer = Renderer::plain();
        for (index, diagnostic) in self.list.iter().enumerate() {
            if index > 0 {
                f.write_str("\n\n")?;
            }
            let level = match diagnostic.severity {
                Severity::Error => Level::ERROR,
                Severity::Warning => Level::WARNING,
                Severity::Note => Level::NOTE,
            };
            let title = level.primary_title(diagnostic.message.as_str());
            let group = match &diagnostic.location {
                Some(location) => title.element(
                    Snippet::source(self.text.as_str())
                        .path(self.file_name.as_str())
                        .annotation(AnnotationKind::Primary.span(location.span.clone())),
                ),
                None => Group::with_title(title),
            };
            let group = group.element(Level::HELP.message(diagnostic.hint.as_str()));
            f.write_str(&renderer.render(&[group]))?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_count_lines_and_characters_from_one() {
        let text = "a = 1\nnäme = \"x\"\n";
        let at = |offset| {
            let location = Location::of(text, offset..offset + 1);
            (location.line, location.column)
        };
        assert_eq!(at(0), (1, 1));
        assert_eq!(at(6), (2, 1));
        // `=` after the two-byte `ä`: byte 12, character column 6.
        assert_eq!(at(12), (2, 6));
        assert_eq!(at(text.len()), (3, 1));
    }

    #[test]
    fn rendering_shows_the_line_a_caret_and_the_hint() {
        let text = "[[bus]]\nnmae = \"heat\"\n";
        let diagnostic = Diagnostic {
            severity: Severity::Error,
            location: Some(Location::of(text, 8..12)),
            message: "unknown key `nmae` in [[bus]]".to_owned(),
            hint: "did you mean `name`?".to_owned(),
        };
        let shown = Diagnostics::new("kmplog.toml", text, vec![diagnostic]).to_string();
        for expected in [
            "error: unknown key `nmae` in [[bus]]",
            "--> kmplog.toml:2:1",
            "2 | nmae = \"heat\"",
            "^^^^",
            "= help: did you mean `name`?",
        ] {
            assert!(shown.contains(expected), "{expected:?} missing in\n{shown}");
        }
    }

    #[test]
    fn a_diagnostic_without_a_place_has_no_snippet() {
        let diagnostic = Diagnostic {
            severity: Severity::Error,
            location: None,
            message: "cannot read nope.toml: not found".to_owned(),
            hint: "give the path of a configuration file, such as examples/kmplog.toml".to_owned(),
        };
        let shown = Diagnostics::new("nope.toml", "", vec![diagnostic]).to_string();
        assert!(
            shown.starts_with("error: cannot read nope.toml: not found"),
            "{shown}"
        );
        assert!(shown.contains("= help: give the path"), "{shown}");
    }
}
