//! Helpers shared by the reader tests: fixture paths, scratch copies with
//! one file replaced, and error assertions.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use causalrec_datasets::DataError;

/// `datasets/tests/fixtures/{name}`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fresh, empty scratch directory under the system temp dir.
pub fn scratch(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "causalrec-readers-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A scratch copy of fixture folder `name` with `file` replaced by `text`.
pub fn with_file(name: &str, file: &str, text: &str) -> PathBuf {
    let dir = scratch(name);
    for e in fs::read_dir(fixture(name)).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    fs::write(dir.join(file), text).unwrap();
    dir
}

/// Asserts that `err` is a parse error in `file` at `line`, column
/// `column`, whose message contains all three and `needle`.
pub fn assert_parse_err(err: &DataError, file: &str, line: usize, column: &str, needle: &str) {
    let msg = err.to_string();
    match err {
        DataError::Parse {
            file: f,
            line: l,
            column: c,
            ..
        } => {
            assert!(f.ends_with(file), "file {f} in {msg}");
            assert_eq!(*l, line, "{msg}");
            assert_eq!(c, column, "{msg}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    assert!(msg.contains(file), "{msg}");
    assert!(msg.contains(&format!(":{line}:")), "{msg}");
    assert!(msg.contains(&format!("'{column}'")), "{msg}");
    assert!(msg.contains(needle), "'{needle}' not in: {msg}");
}
