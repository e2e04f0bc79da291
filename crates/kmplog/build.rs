//! Names the commit and the build date in `kmplog --version`, such as
//! `0.1.0 (1326b9d 2026-12-01)`, through the `KMPLOG_VERSION` variable.
//!
//! The commit is "unknown" outside a git checkout of kmplog (a crate from a
//! registry); the date is SOURCE_DATE_EPOCH's when set, for reproducible
//! builds, and today's otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    // A crate unpacked inside some other repository is not that
    // repository's commit: only a checkout that tracks this file names one.
    let commit = git(&["ls-files", "build.rs"])
        .and_then(|_| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!(
        "cargo:rustc-env=KMPLOG_VERSION={version} ({commit} {})",
        build_date()
    );
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // A commit moves the branch's ref (a file, or a line of packed-refs), a
    // checkout moves HEAD: either makes the version stale. `--git-path`
    // finds them in a worktree too. Only files that exist: cargo would run
    // this script again on every build for one that does not.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]).map(|path| absolute(&path))
            && path.exists()
        {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// What `git ARGS` prints, trimmed; `None` when git is missing or fails.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_owned())
}

/// `path` as git printed it, relative to the crate's directory, made absolute.
fn absolute(path: &str) -> PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    Path::new(&manifest).join(path)
}

/// The build date, `YYYY-MM-DD` in UTC.
fn build_date() -> String {
    let at = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok())
        .and_then(|seconds| jiff::Timestamp::from_second(seconds).ok())
        .unwrap_or_else(jiff::Timestamp::now);
    at.strftime("%Y-%m-%d").to_string()
}
