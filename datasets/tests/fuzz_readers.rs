//! Property tests ("fuzzing" on the stable toolchain) of every reader:
//! small valid inputs are mutated (byte flips, truncations, delimiter swaps,
//! huge numbers, NaN strings, unknown ids, emptied files, dropped and
//! repeated lines) and read back. A reader must never panic, and every
//! error it returns must name a file of the input (and, for parse errors,
//! a line that exists in that file).
//!
//! Case counts are bounded (`CASES` per reader) so that the whole file runs
//! in a few seconds in a debug build; raise `PROPTEST_CASES` to search
//! longer locally.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use causalrec_datasets::{
    load_atomic, load_ctar, load_kuairec, load_mind, load_movielens, load_obd, parse_npy, read_npz,
    AtomicOptions, CtarOptions, CtarTask, DataError, KuaiRecOptions, MindOptions, MovieLensOptions,
    ObdOptions,
};
use common::{copy_dir, fixture, scratch};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Cases per reader property (each a few milliseconds in debug).
const CASES: u32 = 400;

fn config() -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(CASES),
        // No regression files in the source tree; a failure prints its input.
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    }
}

/// Values that readers must reject or read without panicking.
const NASTY: &[&str] = &[
    "NaN",
    "nan",
    "-inf",
    "inf",
    "1e400",
    "-1",
    "99999999999999999999999999",
    "18446744073709551616",
    "-9223372036854775809",
    "",
    "\"",
    "\"\"",
    "zz_unknown_id",
    "[",
    "]",
    "[1,",
    "{",
    "(",
    "\u{0}",
    "\u{feff}",
    "é",
    "2019-13-45 99:99:99",
    "13/45/2019 99:99:99 PM",
    "N999-1",
    "-",
    "::",
];

/// Field and line delimiters the readers use.
const DELIMS: &[u8] = b"\t,|:; \n\r\"[]-";

/// One edit of a file's bytes; positions are taken modulo the length.
#[derive(Clone, Debug)]
enum Mutation {
    FlipByte(usize, u8),
    Truncate(usize),
    SwapDelim(u8, u8),
    Insert(usize, &'static str),
    ReplaceField(usize, &'static str),
    DropLine(usize),
    RepeatLine(usize),
    Empty,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let delim = || prop::sample::select(DELIMS.to_vec());
    let nasty = || prop::sample::select(NASTY.to_vec());
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(p, x)| Mutation::FlipByte(p, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (delim(), delim()).prop_map(|(a, b)| Mutation::SwapDelim(a, b)),
        (any::<usize>(), nasty()).prop_map(|(p, s)| Mutation::Insert(p, s)),
        (any::<usize>(), nasty()).prop_map(|(p, s)| Mutation::ReplaceField(p, s)),
        any::<usize>().prop_map(Mutation::DropLine),
        any::<usize>().prop_map(Mutation::RepeatLine),
        Just(Mutation::Empty),
    ]
}

/// Line start offsets of `b`.
fn line_starts(b: &[u8]) -> Vec<usize> {
    std::iter::once(0)
        .chain(
            b.iter()
                .enumerate()
                .filter(|(_, &c)| c == b'\n')
                .map(|(i, _)| i + 1),
        )
        .filter(|&i| i < b.len())
        .collect()
}

fn apply(b: &mut Vec<u8>, m: &Mutation) {
    match *m {
        Mutation::FlipByte(p, x) if !b.is_empty() => {
            let p = p % b.len();
            b[p] ^= x;
        }
        Mutation::Truncate(p) => b.truncate(p % (b.len() + 1)),
        Mutation::SwapDelim(from, to) => {
            for c in b.iter_mut().filter(|c| **c == from) {
                *c = to;
            }
        }
        Mutation::Insert(p, s) => {
            let p = p % (b.len() + 1);
            b.splice(p..p, s.bytes());
        }
        Mutation::ReplaceField(p, s) if !b.is_empty() => {
            // The run of bytes around `p` up to the nearest delimiters.
            let p = p % b.len();
            let is_delim = |c: &u8| b"\t,|:;\n\r ".contains(c);
            let start = b[..p].iter().rposition(is_delim).map_or(0, |i| i + 1);
            let end = b[p..].iter().position(is_delim).map_or(b.len(), |i| p + i);
            b.splice(start..end.max(start), s.bytes());
        }
        Mutation::DropLine(l) | Mutation::RepeatLine(l) => {
            let starts = line_starts(b);
            if starts.is_empty() {
                return;
            }
            let start = starts[l % starts.len()];
            let end = b[start..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |i| start + i + 1);
            if matches!(m, Mutation::DropLine(_)) {
                b.drain(start..end);
            } else {
                let line = b[start..end].to_vec();
                b.splice(start..start, line);
            }
        }
        Mutation::Empty => b.clear(),
        _ => {}
    }
}

/// Which file of the input to mutate (index modulo the file count) and how.
fn edits() -> impl Strategy<Value = (usize, Vec<Mutation>)> {
    (any::<usize>(), prop::collection::vec(mutation(), 1..4))
}

/// Writes `files` (relative path, bytes) into a fresh folder, applies the
/// mutations to one of them, and returns the folder and that file's path
/// and mutated bytes.
fn mutated_copy(
    tag: &str,
    files: &[(String, Vec<u8>)],
    (which, muts): &(usize, Vec<Mutation>),
) -> (PathBuf, PathBuf, Vec<u8>) {
    let dir = scratch(tag);
    let which = which % files.len();
    let mut target = (PathBuf::new(), Vec::new());
    for (k, (rel, bytes)) in files.iter().enumerate() {
        let mut b = bytes.clone();
        let p = dir.join(rel);
        if k == which {
            for m in muts {
                apply(&mut b, m);
            }
            target = (p.clone(), b.clone());
        }
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, &b).unwrap();
    }
    (dir, target.0, target.1)
}

/// The files of fixture folder `rel`, relative to it.
fn fixture_files(rel: &str) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    let root = fixture(rel);
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out
}

fn owned(files: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    files
        .iter()
        .map(|(n, b)| (n.to_string(), b.to_vec()))
        .collect()
}

/// The error must name one of the input's files (the folder's path is
/// part of each), and a parse error a line that the named file has (or
/// the line after its last, for a missing final record).
fn check_error(
    e: &DataError,
    dir: &Path,
    files: &[(String, Vec<u8>)],
) -> Result<(), TestCaseError> {
    let text = e.to_string();
    let named = files
        .iter()
        .find(|(rel, _)| text.contains(&dir.join(rel).display().to_string()));
    prop_assert!(
        named.is_some(),
        "the error names no input file: {text}\nfiles: {:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    if let DataError::Parse { file, line, .. } = e {
        let bytes = fs::read(file).map_err(|err| TestCaseError::fail(format!("{file}: {err}")))?;
        let lines = bytes.split(|&c| c == b'\n').count();
        prop_assert!(
            *line >= 1 && *line <= lines + 1,
            "line {line} of {file} (which has {lines} lines): {text}"
        );
    }
    Ok(())
}

/// Reads the mutated copy with `read` (run on the folder) and checks the
/// outcome; panics are failures of the property (proptest reports and
/// shrinks them).
fn run_case(
    tag: &str,
    files: &[(String, Vec<u8>)],
    edit: &(usize, Vec<Mutation>),
    read: impl FnOnce(&Path) -> causalrec_datasets::Result<()>,
) -> Result<(), TestCaseError> {
    let (dir, _, _) = mutated_copy(tag, files, edit);
    let on_disk: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(rel, _)| (rel.clone(), fs::read(dir.join(rel)).unwrap_or_default()))
        .collect();
    let r = read(&dir);
    let checked = match &r {
        Ok(()) => Ok(()),
        Err(e) => check_error(e, &dir, &on_disk),
    };
    let _ = fs::remove_dir_all(&dir);
    checked
}

/// RecBole atomic files: token, float, token_seq and float_seq fields.
const ATOMIC: &[(&str, &[u8])] = &[
    (
        "fz.inter",
        b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n\
          u1\ti1\t4\t1000\nu2\ti2\t3.5\t1001\nu1\ti3\t1\t1002\nu3\ti1\t5\t1003\n",
    ),
    (
        "fz.user",
        b"user_id:token\tage:float\tgender:token\nu1\t23\tM\nu2\t31\tF\nu3\t45\tM\n",
    ),
    (
        "fz.item",
        b"item_id:token\tgenre:token_seq\tvec:float_seq\ni1\ta b\t0.5 1\ni2\tb\t1 2\ni3\t\t3 4\n",
    ),
];

/// MovieLens 100k: `u.data` (tabs), `u.item`, `u.user` (pipes).
const ML100K: &[(&str, &[u8])] = &[
    (
        "u.data",
        b"1\t10\t4\t1000000100\n2\t20\t3\t1000000200\n1\t30\t5\t1000000050\n3\t10\t1\t1000000070\n",
    ),
    (
        "u.item",
        b"10|Film A (1995)|01-Jan-1995||http://e.org/10|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n\
          20|Caf\xe9 B (1996)|15-Mar-1996||http://e.org/20|0|0|0|0|0|0|1|0|1|0|1|0|0|0|0|0|0|0|0\n\
          30|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n",
    ),
    (
        "u.user",
        b"1|31|M|technician|10001\n2|53|F|other|20002\n3|23|M|writer|30003\n",
    ),
];

/// MovieLens 1M: `::`-separated `.dat` files.
const ML1M: &[(&str, &[u8])] = &[
    (
        "ratings.dat",
        b"1::5001::5::1000000300\n1::5002::3::1000000400\n2::5001::4::1000000100\n",
    ),
    (
        "movies.dat",
        b"5002::Peach (1996)::Animation|Children's\n5001::Nest (1975)::Drama\n",
    ),
    ("users.dat", b"1::F::1::10::10001\n2::M::56::16::20002\n"),
];

/// A version-1 `.npy` file of `<f4` values with the given shape text.
fn npy(shape: &str, values: &[f32]) -> Vec<u8> {
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    common::npy("<f4", shape, false, &data)
}

fn npz(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (n, bytes) in members {
        w.start_file(format!("{n}.npy"), opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn atomic_never_panics(edit in edits()) {
        let files = owned(ATOMIC);
        run_case("atomic", &files, &edit, |d| {
            load_atomic(d, "fz", &AtomicOptions::default()).map(drop)
        })?;
    }

    #[test]
    fn movielens_100k_never_panics(edit in edits()) {
        let files = owned(ML100K);
        run_case("ml100k", &files, &edit, |d| {
            load_movielens(d, &MovieLensOptions::default()).map(drop)
        })?;
    }

    #[test]
    fn movielens_1m_never_panics(edit in edits()) {
        let files = owned(ML1M);
        run_case("ml1m", &files, &edit, |d| {
            load_movielens(d, &MovieLensOptions::default()).map(drop)
        })?;
    }

    #[test]
    fn kuairec_never_panics(edit in edits()) {
        let files = fixture_files("kuairec");
        run_case("kuairec", &files, &edit, |d| {
            load_kuairec(d, &KuaiRecOptions::default()).map(drop)
        })?;
    }

    #[test]
    fn mind_never_panics(edit in edits()) {
        let files = fixture_files("mind/good");
        run_case("mind", &files, &edit, |d| load_mind(d, &MindOptions::default()).map(drop))?;
    }

    #[test]
    fn obd_never_panics(edit in edits()) {
        let files = fixture_files("obd/good");
        run_case("obd", &files, &edit, |d| load_obd(d, &ObdOptions::default()).map(drop))?;
    }

    #[test]
    fn ctar_never_panics(edit in edits(), rating in any::<bool>()) {
        let files = fixture_files("ctar/good");
        let task = if rating { CtarTask::Rating } else { CtarOptions::default().task };
        run_case("ctar", &files, &edit, |d| load_ctar(d, &CtarOptions { task }).map(drop))?;
    }

    #[test]
    fn npy_never_panics(edit in edits(), shape in prop::sample::select(vec![
        "(2, 3)", "(6,)", "(2, 3, 1)", "(18446744073709551615, 2)", "(4611686018427387904, 1)",
        "(2305843009213693952, 2)", "()", "(0, 3)",
    ])) {
        let files = vec![("f.npy".to_string(), npy(shape, &[0.5, 1.0, -2.0, 3.0, 4.0, f32::MIN]))];
        run_case("npy", &files, &edit, |d| {
            let p = d.join("f.npy");
            parse_npy(&fs::read(&p).unwrap(), &p.display().to_string()).map(drop)
        })?;
    }

    #[test]
    fn npz_never_panics(edit in edits()) {
        let bytes = npz(&[("a", npy("(2, 2)", &[1.0, 2.0, 3.0, 4.0])), ("b", npy("(1, 3)", &[0.0; 3]))]);
        let files = vec![("f.npz".to_string(), bytes)];
        run_case("npz", &files, &edit, |d| read_npz(&d.join("f.npz")).map(drop))?;
    }
}

/// The unmutated inputs load: the properties above start from valid data.
#[test]
fn the_seed_inputs_are_valid() {
    for (tag, files) in [
        ("atomic", owned(ATOMIC)),
        ("ml100k", owned(ML100K)),
        ("ml1m", owned(ML1M)),
    ] {
        let (dir, _, _) = mutated_copy(tag, &files, &(0, Vec::new()));
        let r = match tag {
            "atomic" => load_atomic(&dir, "fz", &AtomicOptions::default()),
            _ => load_movielens(&dir, &MovieLensOptions::default()),
        };
        assert!(r.is_ok(), "{tag}: {:?}", r.err());
    }
    let dir = scratch("seed-ctar");
    copy_dir(&fixture("ctar/good"), &dir);
    load_ctar(&dir, &CtarOptions::default()).unwrap();
    load_kuairec(&fixture("kuairec"), &KuaiRecOptions::default()).unwrap();
    load_mind(&fixture("mind/good"), &MindOptions::default()).unwrap();
    load_obd(&fixture("obd/good"), &ObdOptions::default()).unwrap();
    let m = parse_npy(&npy("(2, 3)", &[0.0; 6]), "f.npy").unwrap();
    assert_eq!((m.rows, m.cols), (2, 3));
    let z = npz(&[("a", npy("(2, 2)", &[1.0, 2.0, 3.0, 4.0]))]);
    let p = dir.join("f.npz");
    fs::write(&p, z).unwrap();
    assert_eq!(read_npz(&p).unwrap().len(), 1);
}
