//! A binary cache of parsed data sets: [`cached`] stores a [`Dataset`] in a
//! compact binary encoding (postcard, through serde) in a
//! `.causalrec-cache/` folder next to its first source file, and reads it
//! back instead of parsing while the sources are unchanged.
//!
//! Numeric columns are stored as little-endian byte blocks, so that reading
//! them back is a copy rather than a per-value decode.
//!
//! A cache file is valid for one key (which must encode the reader and its
//! options) and one state of the source files (path, size and modification
//! time of each). It starts with a header (magic and format version, the
//! body's length and its FNV-1a checksum), so a truncated or altered file
//! is detected before it is decoded. It is written atomically (temporary
//! file, then rename); a cache file that is missing, stale, unreadable or
//! corrupt is ignored and rebuilt, and a cache that cannot be written is
//! skipped: the cache never turns a successful load into an error.
//!
//! Runs in parallel (threads or processes, e.g. two `host run`s into
//! different run folders) may share one cache: the one that misses takes
//! an exclusive lock on `{cache file}.lock` (std's `File::lock`, an
//! advisory `flock` on Unix) while it parses and writes, and the others
//! wait for it, then read its file instead of parsing again. Readers of a
//! complete file take no lock (the rename makes a file appear whole).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Result;
use crate::table::{Column, Dataset, FieldMeta, Role, Table};

/// The name of the cache folder.
pub const CACHE_DIR: &str = ".causalrec-cache";

/// The first bytes of a cache file: magic and format version. The body's
/// length (u64) and FNV-1a checksum (u64), little-endian, follow.
const MAGIC: &[u8; 8] = b"CRCACHE3";

/// Magic, length and checksum.
const HEADER_LEN: usize = MAGIC.len() + 16;

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
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
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
    cached_with_status(sources, key, load).map(|(ds, _)| ds)
}

/// Where a data set from [`cached_with_status`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CacheUse {
    /// Read from a valid cache file (`load` did not run).
    Hit,
    /// Loaded, and written to the cache.
    Built,
    /// Loaded, not cached (no sources, or the cache could not be written).
    Uncached,
}

impl CacheUse {
    /// `hit`, `built` or `uncached`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheUse::Hit => "hit",
            CacheUse::Built => "built",
            CacheUse::Uncached => "uncached",
        }
    }
}

/// [`cached`], also saying whether the data came from the cache.
pub fn cached_with_status(
    sources: &[&Path],
    key: &str,
    load: impl FnOnce() -> Result<Dataset>,
) -> Result<(Dataset, CacheUse)> {
    let (Some(file), Some(fp)) = (cache_file(sources, key), Fingerprint::of(sources, key)) else {
        return Ok((load()?, CacheUse::Uncached));
    };
    if let Some(ds) = read_cache(&file, &fp) {
        return Ok((ds, CacheUse::Hit));
    }
    // Build under the lock; whoever held it before us may have built it.
    let _lock = lock_for(&file);
    if let Some(ds) = read_cache(&file, &fp) {
        return Ok((ds, CacheUse::Hit));
    }
    let ds = load()?;
    // The sources may have changed while loading: fingerprint them again.
    let written =
        Fingerprint::of(sources, key).as_ref() == Some(&fp) && write_cache(&file, &fp, &ds).is_ok();
    let used = if written {
        CacheUse::Built
    } else {
        CacheUse::Uncached
    };
    Ok((ds, used))
}

/// The exclusive lock on `{file}.lock`, held until the returned file is
/// dropped; `None` (build unlocked) where the folder or the lock cannot be
/// had, e.g. a read-only data folder, where nothing is written either.
fn lock_for(file: &Path) -> Option<fs::File> {
    let dir = file.parent()?;
    fs::create_dir_all(dir).ok()?;
    let mut name = file.file_name()?.to_os_string();
    name.push(".lock");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(name))
        .ok()?;
    f.lock().ok()?;
    Some(f)
}

/// The body of a cache file whose header (magic, length, checksum) holds.
fn checked_body(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let (sum, body) = rest.split_first_chunk::<8>()?;
    (u64::from_le_bytes(*len) == body.len() as u64 && u64::from_le_bytes(*sum) == fnv1a(body))
        .then_some(body)
}

fn read_cache(file: &Path, fp: &Fingerprint) -> Option<Dataset> {
    let bytes = fs::read(file).ok()?;
    let body = checked_body(&bytes)?;
    let (stored, rest): (Fingerprint, &[u8]) = postcard::take_from_bytes(body).ok()?;
    if &stored != fp {
        return None;
    }
    let packed: Packed = postcard::from_bytes(rest).ok()?;
    let ds = packed.unpack()?;
    ds.validate().ok()?;
    Some(ds)
}

fn write_cache(file: &Path, fp: &Fingerprint, ds: &Dataset) -> std::io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut bytes = vec![0; HEADER_LEN];
    bytes = postcard::to_extend(fp, bytes).map_err(std::io::Error::other)?;
    bytes = postcard::to_extend(&Packed::pack(ds), bytes).map_err(std::io::Error::other)?;
    let body = &bytes[HEADER_LEN..];
    let (len, sum) = ((body.len() as u64).to_le_bytes(), fnv1a(body).to_le_bytes());
    bytes[..MAGIC.len()].copy_from_slice(MAGIC);
    bytes[MAGIC.len()..MAGIC.len() + 8].copy_from_slice(&len);
    bytes[MAGIC.len() + 8..HEADER_LEN].copy_from_slice(&sum);
    let nanos = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    // Unique per process and write: threads of one process may race here
    // where no lock could be had.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".tmp-{}-{n}-{nanos}-{}",
        std::process::id(),
        file.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    let written = fs::write(&tmp, &bytes).and_then(|()| fs::rename(&tmp, file));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// A byte block, serialized as one length-prefixed run of bytes and
/// borrowed from the file's bytes when decoded.
struct Bytes<'a>(Cow<'a, [u8]>);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Bytes<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Bytes<'a>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Cow<'de, [u8]>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> std::result::Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> std::result::Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_vec()))
            }
        }
        d.deserialize_bytes(V).map(Bytes)
    }
}

/// Fixed-width numbers stored little-endian in a [`Bytes`] block.
trait Le: Copy + Sized {
    const N: usize;
    fn put(self, out: &mut Vec<u8>);
    fn get(b: &[u8]) -> Self;
}

macro_rules! le {
    ($($t:ty),*) => {$(
        impl Le for $t {
            const N: usize = std::mem::size_of::<$t>();
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(b);
                <$t>::from_le_bytes(a)
            }
        }
    )*};
}
le!(u32, u64, f32, f64);

fn pack<T: Le>(v: &[T]) -> Bytes<'static> {
    let mut out = Vec::with_capacity(v.len() * T::N);
    for &x in v {
        x.put(&mut out);
    }
    Bytes(Cow::Owned(out))
}

fn unpack<T: Le>(b: &Bytes<'_>) -> Option<Vec<T>> {
    let chunks = b.0.chunks_exact(T::N);
    if !chunks.remainder().is_empty() {
        return None;
    }
    Some(chunks.map(T::get).collect())
}

/// The cached form of a [`Column`].
#[derive(Serialize, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
enum PackedColumn<'a> {
    Token(Bytes<'a>),
    TokenSeq(Bytes<'a>, Bytes<'a>),
    Float(Bytes<'a>),
    Float64(Bytes<'a>),
    FloatSeq(Bytes<'a>, Bytes<'a>),
}

/// The cached form of a [`Table`]. The vocabularies of the `inter` user
/// and item fields (copies of `user_ids` / `item_ids`) are left out.
#[derive(Serialize, Deserialize)]
struct PackedTable<'a> {
    fields: Vec<FieldMeta>,
    #[serde(borrow)]
    columns: Vec<PackedColumn<'a>>,
}

/// The cached form of a [`Dataset`].
#[derive(Serialize, Deserialize)]
struct Packed<'a> {
    name: String,
    #[serde(borrow)]
    inter: PackedTable<'a>,
    #[serde(borrow)]
    users: Option<PackedTable<'a>>,
    #[serde(borrow)]
    items: Option<PackedTable<'a>>,
    n_users: u64,
    n_items: u64,
    user_ids: Vec<String>,
    item_ids: Vec<String>,
    #[serde(borrow)]
    parts: BTreeMap<String, Bytes<'a>>,
}

impl PackedTable<'_> {
    fn pack(t: &Table, drop_id_vocab: bool) -> PackedTable<'static> {
        let fields = t
            .fields
            .iter()
            .map(|f| {
                let mut f = f.clone();
                if drop_id_vocab && matches!(f.role, Role::User | Role::Item) {
                    f.vocab = Vec::new();
                }
                f
            })
            .collect();
        let columns = t
            .columns
            .iter()
            .map(|c| match c {
                Column::Token(v) => PackedColumn::Token(pack(v)),
                Column::TokenSeq { offsets, values } => {
                    PackedColumn::TokenSeq(pack(offsets), pack(values))
                }
                Column::Float(v) => PackedColumn::Float(pack(v)),
                Column::Float64(v) => PackedColumn::Float64(pack(v)),
                Column::FloatSeq { offsets, values } => {
                    PackedColumn::FloatSeq(pack(offsets), pack(values))
                }
            })
            .collect();
        PackedTable { fields, columns }
    }

    fn unpack(self) -> Option<Table> {
        let columns = self
            .columns
            .iter()
            .map(|c| {
                Some(match c {
                    PackedColumn::Token(v) => Column::Token(unpack(v)?),
                    PackedColumn::TokenSeq(o, v) => Column::TokenSeq {
                        offsets: unpack(o)?,
                        values: unpack(v)?,
                    },
                    PackedColumn::Float(v) => Column::Float(unpack(v)?),
                    PackedColumn::Float64(v) => Column::Float64(unpack(v)?),
                    PackedColumn::FloatSeq(o, v) => Column::FloatSeq {
                        offsets: unpack(o)?,
                        values: unpack(v)?,
                    },
                })
            })
            .collect::<Option<Vec<Column>>>()?;
        Some(Table {
            fields: self.fields,
            columns,
        })
    }
}

impl Packed<'_> {
    fn pack(ds: &Dataset) -> Packed<'static> {
        Packed {
            name: ds.name.clone(),
            inter: PackedTable::pack(&ds.inter, true),
            users: ds.users.as_ref().map(|t| PackedTable::pack(t, false)),
            items: ds.items.as_ref().map(|t| PackedTable::pack(t, false)),
            n_users: ds.n_users as u64,
            n_items: ds.n_items as u64,
            user_ids: ds.user_ids.clone(),
            item_ids: ds.item_ids.clone(),
            parts: ds
                .parts
                .iter()
                .map(|(k, rows)| {
                    let rows: Vec<u64> = rows.iter().map(|&r| r as u64).collect();
                    (k.clone(), pack(&rows))
                })
                .collect(),
        }
    }

    fn unpack(self) -> Option<Dataset> {
        let mut inter = self.inter.unpack()?;
        for f in inter.fields.iter_mut() {
            match f.role {
                Role::User => f.vocab = self.user_ids.clone(),
                Role::Item => f.vocab = self.item_ids.clone(),
                _ => {}
            }
        }
        // `None`: corrupt; `Some(None)`: no table.
        let table = |t: Option<PackedTable>| match t {
            None => Some(None),
            Some(t) => t.unpack().map(Some),
        };
        let parts = self
            .parts
            .iter()
            .map(|(k, b)| {
                let rows = unpack::<u64>(b)?;
                Some((k.clone(), rows.into_iter().map(|r| r as usize).collect()))
            })
            .collect::<Option<BTreeMap<String, Vec<usize>>>>()?;
        Some(Dataset {
            name: self.name,
            inter,
            users: table(self.users)?,
            items: table(self.items)?,
            n_users: usize::try_from(self.n_users).ok()?,
            n_items: usize::try_from(self.n_items).ok()?,
            user_ids: self.user_ids,
            item_ids: self.item_ids,
            parts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readers::amazon::{load_amazon, AmazonOptions};
    use std::cell::Cell;

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("causalrec-cache-{}-{tag}", std::process::id()));
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
        let bins = names.iter().filter(|n| n.ends_with(".bin")).count();
        let locks = names.iter().filter(|n| n.ends_with(".bin.lock")).count();
        assert_eq!((bins, locks, names.len()), (2, 2, 4), "{names:?}");
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
        // A flipped bit anywhere (header, fingerprint, columns, parts),
        // a truncation at any length, an appended byte, an old version.
        let mut bad_files = vec![b"garbage".to_vec(), Vec::new(), [&bytes[..], &[0]].concat()];
        let mut old_version = bytes.clone();
        old_version[7] = b'2';
        bad_files.push(old_version);
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1 << (at % 8);
            bad_files.push(flipped);
            bad_files.push(bytes[..at].to_vec());
        }
        for bad in bad_files {
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

    #[test]
    fn parallel_loads_of_one_uncached_file_parse_once_and_leave_a_valid_cache() {
        let dir = scratch("parallel");
        let src = dir.join("r.csv");
        let mut text = String::new();
        for k in 0..2000 {
            text.push_str(&format!(
                "u{},i{},{}.0,{}\n",
                k % 97,
                k % 89,
                k % 5 + 1,
                1_400_000_000 + k
            ));
        }
        fs::write(&src, &text).unwrap();
        let parses = std::sync::atomic::AtomicUsize::new(0);
        let barrier = std::sync::Barrier::new(8);
        let results: Vec<Dataset> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        cached(&[&src], "k", || {
                            parses.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            // Long enough for the others to arrive and wait.
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            load_amazon(&src, None, &AmazonOptions::default())
                        })
                        .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            parses.into_inner(),
            1,
            "one parse, the others read its cache"
        );
        let direct = load_amazon(&src, None, &AmazonOptions::default()).unwrap();
        assert!(results.iter().all(|d| *d == direct));
        let file = cache_file(&[&src], "k").unwrap();
        let fp = Fingerprint::of(&[&src], "k").unwrap();
        assert_eq!(
            read_cache(&file, &fp).unwrap(),
            direct,
            "the cache file is valid"
        );
        let tmp: Vec<_> = fs::read_dir(dir.join(CACHE_DIR))
            .unwrap()
            .filter_map(|e| {
                let n = e.unwrap().file_name().to_string_lossy().into_owned();
                n.starts_with(".tmp").then_some(n)
            })
            .collect();
        assert!(tmp.is_empty(), "{tmp:?}");
    }
}
