//! Helpers shared by the reader tests: fixture paths, scratch folders,
//! error-message checks and `.npy` file bytes.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use causalrec_datasets::DataError;

/// The real data folder `../shared/data/{name}` next to the workspace.
pub fn shared(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(name)
}

/// `datasets/tests/fixtures/{rel}`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A fresh, empty scratch folder under the system temp folder.
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

/// Copies the folder `src` into `dst` recursively.
pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// A scratch copy of fixture folder `good` with `file` (relative) replaced
/// by fixture `bad`.
pub fn with_bad_file(good: &str, file: &str, bad: &str) -> PathBuf {
    let dir = scratch("bad");
    copy_dir(&fixture(good), &dir);
    fs::copy(fixture(bad), dir.join(file)).unwrap();
    dir
}

/// A scratch copy of fixture folder `name` with `file` replaced by `text`.
pub fn with_file(name: &str, file: &str, text: &str) -> PathBuf {
    let dir = scratch(name);
    copy_dir(&fixture(name), &dir);
    fs::write(dir.join(file), text).unwrap();
    dir
}

/// Asserts that `e` is a parse error naming `file`, `line` and `column`,
/// and that its message contains `needle`.
pub fn assert_parse_err(e: &DataError, file: &str, line: usize, column: &str, needle: &str) {
    let text = e.to_string();
    match e {
        DataError::Parse {
            file: f,
            line: l,
            column: c,
            ..
        } => {
            assert!(f.ends_with(file), "file {f} != {file}: {text}");
            assert_eq!(*l, line, "{text}");
            assert_eq!(c, column, "{text}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    assert!(text.contains(file), "{text}");
    assert!(text.contains(&format!(":{line}:")), "{text}");
    assert!(text.contains(&format!("'{column}'")), "{text}");
    assert!(text.contains(needle), "'{needle}' not in: {text}");
}

/// A version-1 `.npy` file: magic, version, header length, padded dict
/// header ending in a newline, then the data.
pub fn npy(descr: &str, shape: &str, fortran: bool, data: &[u8]) -> Vec<u8> {
    let fo = if fortran { "True" } else { "False" };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': {fo}, 'shape': {shape}, }}");
    let pad = (64 - (10 + h.len() + 1) % 64) % 64;
    h.push_str(&" ".repeat(pad));
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}
