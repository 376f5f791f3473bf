//! A binary cache of parsed data sets: [`cached`] stores a [`Dataset`] in a
//! compact binary encoding (postcard, through the serde derives) in a
//! `.causalrec-cache/` folder next to its first source file, and reads it
//! back instead of parsing while the sources are unchanged.
//!
//! A cache file is valid for one key (which must encode the reader and its
//! options) and one state of the source files (path, size and modification
//! time of each). It is written atomically (temporary file, then rename);
//! a cache file that is missing, stale, unreadable or corrupt is ignored
//! and rebuilt, and a cache that cannot be written is skipped: the cache
//! never turns a successful load into an error.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::table::Dataset;

/// The name of the cache folder.
pub const CACHE_DIR: &str = ".causalrec-cache";

/// The first bytes of a cache file: magic and format version.
const MAGIC: &[u8; 8] = b"CRCACHE1";

/// What a cache file is valid for.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Fingerprint {
    crate_version: String,
    key: String,
    /// Per source: path, size in bytes, modification time (seconds and
    /// nanoseconds since the Unix epoch).
    files: Vec<(String, u64, u64, u32)>,
}

impl Fingerprint {
    fn of(sources: &[&Path], key: &str) -> Option<Fingerprint> {
        let files = sources
            .iter()
            .map(|p| {
                let m = fs::metadata(p).ok()?;
                let t = m.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
                let path = fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
                Some((
                    path.display().to_string(),
                    m.len(),
                    t.as_secs(),
                    t.subsec_nanos(),
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Fingerprint {
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            key: key.to_string(),
            files,
        })
    }
}

/// 64-bit FNV-1a, stable across builds (unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The cache file [`cached`] uses for these sources and key:
/// `{dir of sources[0]}/.causalrec-cache/{key}-{hash}.bin`, the key
/// shortened to safe characters. `None` without sources.
pub fn cache_file(sources: &[&Path], key: &str) -> Option<PathBuf> {
    let first = sources.first()?;
    let dir = first
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(CACHE_DIR);
    let mut id = key.as_bytes().to_vec();
    for p in sources {
        id.push(0);
        let p = fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        id.extend_from_slice(p.display().to_string().as_bytes());
    }
    let stem: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(48)
        .collect();
    Some(dir.join(format!("{stem}-{:016x}.bin", fnv1a(&id))))
}

/// The data set `load` gives, through the cache: if a cache file for
/// `sources` and `key` exists, matches the sources' current size and
/// modification time and decodes to a valid data set, that is returned
/// without calling `load`; otherwise `load` runs and its data set is
/// written to the cache. `key` must change whenever the result would
/// (reader and options), e.g. `format!("movielens {opts:?}")`. Errors are
/// `load`'s only.
///
/// ```no_run
/// use causalrec_datasets::{cached, load_movielens, MovieLensOptions};
/// let dir = std::path::Path::new("data/ml-1m");
/// let opts = MovieLensOptions::default();
/// let files = ["ratings.dat", "movies.dat", "users.dat"].map(|f| dir.join(f));
/// let sources: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
/// let ds = cached(&sources, &format!("movielens {opts:?}"), || load_movielens(dir, &opts))?;
/// # Ok::<(), causalrec_datasets::DataError>(())
/// ```
pub fn cached(
    sources: &[&Path],
    key: &str,
    load: impl FnOnce() -> Result<Dataset>,
) -> Result<Dataset> {
    let (Some(file), Some(fp)) = (cache_file(sources, key), Fingerprint::of(sources, key)) else {
        return load();
    };
    if let Some(ds) = read_cache(&file, &fp) {
        return Ok(ds);
    }
    let ds = load()?;
    // The sources may have changed while loading: fingerprint them again.
    if Fingerprint::of(sources, key).as_ref() == Some(&fp) {
        let _ = write_cache(&file, &fp, &ds);
    }
    Ok(ds)
}

fn read_cache(file: &Path, fp: &Fingerprint) -> Option<Dataset> {
    let bytes = fs::read(file).ok()?;
    let body = bytes.strip_prefix(MAGIC)?;
    let (stored, rest): (Fingerprint, &[u8]) = postcard::take_from_bytes(body).ok()?;
    if &stored != fp {
        return None;
    }
    let ds: Dataset = postcard::from_bytes(rest).ok()?;
    ds.validate().ok()?;
    Some(ds)
}

fn write_cache(file: &Path, fp: &Fingerprint, ds: &Dataset) -> std::io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut bytes = MAGIC.to_vec();
    bytes = postcard::to_extend(fp, bytes).map_err(std::io::Error::other)?;
    bytes = postcard::to_extend(ds, bytes).map_err(std::io::Error::other)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(
        ".tmp-{}-{nanos}-{}",
        std::process::id(),
        file.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    let written = fs::write(&tmp, &bytes).and_then(|()| fs::rename(&tmp, file));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readers::amazon::{load_amazon, AmazonOptions};
    use std::cell::Cell;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("causalrec-cache-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    const RATINGS: &str = "u1,i1,5.0,1400000000\nu2,i1,3.0,1400000100\nu1,i2,4.0,1400000200\n";

    #[test]
    fn second_load_comes_from_the_cache_until_a_source_changes() {
        let dir = scratch("hit");
        let src = dir.join("r.csv");
        fs::write(&src, RATINGS).unwrap();
        let calls = Cell::new(0);
        let load = |key: &str| {
            cached(&[&src], key, || {
                calls.set(calls.get() + 1);
                load_amazon(&src, None, &AmazonOptions::default())
            })
            .unwrap()
        };
        let a = load("k");
        assert_eq!(calls.get(), 1);
        let file = cache_file(&[&src], "k").unwrap();
        assert!(file.starts_with(dir.join(CACHE_DIR)), "{}", file.display());
        assert!(file.is_file());
        let b = load("k");
        assert_eq!(calls.get(), 1, "served from the cache");
        assert_eq!(a, b);
        // another key (other options): another cache file
        load("k2");
        assert_eq!(calls.get(), 2);
        load("k");
        assert_eq!(calls.get(), 2);
        // a changed source (size and mtime) invalidates
        fs::write(&src, format!("{RATINGS}u3,i2,1.0,1400000300\n")).unwrap();
        let c = load("k");
        assert_eq!(calls.get(), 3);
        assert_eq!(c.n_inter(), 4);
        assert_eq!(load("k").n_inter(), 4);
        assert_eq!(calls.get(), 3);
        // no temporary files left behind
        let names: Vec<String> = fs::read_dir(dir.join(CACHE_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().all(|n| n.ends_with(".bin")), "{names:?}");
    }

    #[test]
    fn corrupt_or_truncated_cache_is_rebuilt_not_an_error() {
        let dir = scratch("corrupt");
        let src = dir.join("r.csv");
        fs::write(&src, RATINGS).unwrap();
        let calls = Cell::new(0);
        let load = || {
            cached(&[&src], "k", || {
                calls.set(calls.get() + 1);
                load_amazon(&src, None, &AmazonOptions::default())
            })
        };
        let good = load().unwrap();
        let file = cache_file(&[&src], "k").unwrap();
        let bytes = fs::read(&file).unwrap();
        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0xff; // inside the data set
        for bad in [
            b"garbage".to_vec(),
            bytes[..bytes.len() / 2].to_vec(),
            flipped,
            Vec::new(),
        ] {
            fs::write(&file, &bad).unwrap();
            let before = calls.get();
            assert_eq!(load().unwrap(), good);
            assert_eq!(calls.get(), before + 1, "rebuilt");
            assert_eq!(fs::read(&file).unwrap(), bytes, "rewritten");
        }
    }

    #[test]
    fn load_errors_pass_through_and_missing_sources_skip_the_cache() {
        let dir = scratch("err");
        let src = dir.join("missing.csv");
        let err = cached(&[&src], "k", || {
            load_amazon(&src, None, &AmazonOptions::default())
        });
        assert!(err.is_err());
        assert!(!dir.join(CACHE_DIR).exists());
        assert!(cache_file(&[], "k").is_none());
    }
}
