//! The CTAR release (Causal Tag And Rating; Lyu, Dai et al.): `train/`
//! (`movie.csv`, `rating.csv`, `obstag.csv`, `rcttag.csv`), `test/`
//! (`test.csv`, `test_1.csv`..`test_3.csv`) and, when present, `valid/`
//! (`validation.csv`, `val_1.csv`..`val_3.csv`).
//!
//! Two tasks ([`CtarTask`]):
//! - [`CtarTask::UserTag`], the paper's user-tag preference task (items are
//!   tags). The training pairs are extracted as the authors' baseline
//!   script (`baselines/extract_data.py`) does:
//!   - `obstag.csv` (observational, biased): a row with `tagid != -1` gives
//!     `(user, tag, 1)`; a row with `tagid == -1` gives `(user, t, 0)` for
//!     every tag `t` of the movie (`movie.csv` `taglist`).
//!   - `rcttag.csv` (randomised; users label *all* liked tags): the same two
//!     rules, then, for every row with a tag, every other tag of that movie
//!     that has no label yet for that user (over both sources, `obstag`
//!     processed first, including zeros added by this rule) gives
//!     `(user, t, 0)`.
//!   - Within each source, identical `(user, tag, islike)` triples are kept
//!     once, and the rows are sorted by `(user, tag, islike)` (numerically),
//!     as `np.unique` leaves them.
//!
//!   `inter` holds `user`, `item` (the tag id), `islike` ([`Role::Label`])
//!   and `source` (`obs`, `rct`, `test_1`, ... naming the file a row comes
//!   from), with rows in the order obs, rct, test_1, test_2, test_3, test,
//!   val_1..val_3, valid. Parts: `train_obs`, `train_rct`, `train` (their
//!   union, one row per distinct `(user, tag, islike)` triple, as the
//!   authors' `extract_alldata.csv`: a pair labelled 1 in one source and 0
//!   in the other keeps both rows), `test_1`,
//!   `test_2`, `test_3`, `test` (each test file's rows as they are; `test`
//!   is the whole test set, the union of the other three), and `val_1`..
//!   `val_3`, `valid` when `valid/` exists.
//! - [`CtarTask::Rating`]: the user x movie ratings of `rating.csv`
//!   ([`Role::Rating`]) with each movie's tag list as the item field
//!   `tags` ([`Role::Group`]); every row is in part `train`.
//!
//! Raw user, movie and tag ids are kept as their decimal strings. Errors
//! (a missing file or column, a bad number, a movie id absent from
//! `movie.csv`, a tag that is not a tag of its movie, a test tag that no
//! movie has, a label other than 0/1) name the file, the 1-based line and
//! the column; nothing is returned half-loaded.
//!
//! [`ctar_file_stats`] and [`ctar_table4`] give the paper's Table 4 (records
//! per file).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use super::columns::{dataset, float_field, id_field, table, IdIndex, SeqCol, TokenCol};
use super::delimited::{io_err, Delim, DelimitedReader, Header};
use crate::error::Result;
use crate::table::{Dataset, Role};

/// Which CTAR task to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CtarTask {
    /// User-tag preference (items are tags, label `islike`).
    #[default]
    UserTag,
    /// User-movie ratings with the movies' tags as item groups.
    Rating,
}

/// How to read CTAR.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CtarOptions {
    /// The task (default [`CtarTask::UserTag`]).
    pub task: CtarTask,
}

/// The test files and the part/source name of each, in row order.
const TEST_FILES: [(&str, &str); 4] = [
    ("test_1.csv", "test_1"),
    ("test_2.csv", "test_2"),
    ("test_3.csv", "test_3"),
    ("test.csv", "test"),
];
/// The validation files of `valid/` (each optional).
const VALID_FILES: [(&str, &str); 4] = [
    ("val_1.csv", "val_1"),
    ("val_2.csv", "val_2"),
    ("val_3.csv", "val_3"),
    ("validation.csv", "valid"),
];

/// Reads the CTAR release in `dir` (the folder holding `train/` and
/// `test/`) for the task in `opts`. See the module documentation.
pub fn load_ctar(dir: &Path, opts: &CtarOptions) -> Result<Dataset> {
    let movies = read_movies(&dir.join("train").join("movie.csv"))?;
    match opts.task {
        CtarTask::UserTag => load_user_tag(dir, &movies),
        CtarTask::Rating => load_rating(dir, &movies),
    }
}

/// Movie id -> tag ids, in `movie.csv` order within each list.
struct Movies {
    tags: HashMap<i64, Vec<i64>>,
}

/// Opens a CTAR file: comma-separated with quoting, a header line.
fn open(path: &Path) -> Result<DelimitedReader> {
    DelimitedReader::open(path, Delim::Csv, Header::FirstLine)
}

fn read_movies(path: &Path) -> Result<Movies> {
    let csv = open(path)?;
    let (cm, ct) = (csv.column("movieid")?, csv.column("taglist")?);
    let mut movies = Movies {
        tags: HashMap::new(),
    };
    let mut first_line: HashMap<i64, usize> = HashMap::new();
    csv.for_each(|rec| {
        let line = rec.line();
        let m = rec.i64(cm)?;
        let cell = rec.get(ct);
        let list = cell.trim().trim_start_matches('[').trim_end_matches(']');
        let mut tags = Vec::new();
        for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match t.parse::<i64>() {
                Ok(x) if x >= 0 => tags.push(x),
                _ => {
                    return Err(rec.error(
                        ct,
                        format!("'{t}' in tag list '{cell}' is not a tag id (an integer >= 0)"),
                    ))
                }
            }
        }
        if let Some(first) = first_line.insert(m, line) {
            return Err(rec.error(
                cm,
                format!("duplicate movie id {m} (first on line {first})"),
            ));
        }
        movies.tags.insert(m, tags);
        Ok(())
    })?;
    Ok(movies)
}

/// Reads `obstag.csv` / `rcttag.csv` rows `(user, movie, tag)`, checking
/// each movie against `movie.csv` and each tag against its movie.
fn read_tag_file(path: &Path, movies: &Movies) -> Result<Vec<(i64, i64, i64)>> {
    let csv = open(path)?;
    let (cu, cm, ct) = (
        csv.column("userid")?,
        csv.column("movieid")?,
        csv.column("tagid")?,
    );
    let mut out = Vec::new();
    csv.for_each(|rec| {
        let (u, m, t) = (rec.i64(cu)?, rec.i64(cm)?, rec.i64(ct)?);
        let Some(tags) = movies.tags.get(&m) else {
            return Err(rec.error(cm, format!("unknown movie id {m} (not in movie.csv)")));
        };
        if t != -1 && !tags.contains(&t) {
            return Err(rec.error(
                ct,
                format!("tag {t} is not a tag of movie {m} (movie.csv) and is not -1"),
            ));
        }
        out.push((u, m, t));
        Ok(())
    })?;
    Ok(out)
}

/// One user-tag row: `(user, tag, islike)`.
type Pair = (i64, i64, u8);

/// Reads a test/validation file: `(user, tag, islike)`.
fn read_label_file(path: &Path, known_tags: &HashSet<i64>) -> Result<Vec<Pair>> {
    let csv = open(path)?;
    let (cu, ct, cl) = (
        csv.column("userid")?,
        csv.column("tagid")?,
        csv.column("islike")?,
    );
    let mut out = Vec::new();
    csv.for_each(|rec| {
        let (u, t) = (rec.i64(cu)?, rec.i64(ct)?);
        if !known_tags.contains(&t) {
            return Err(rec.error(
                ct,
                format!("unknown tag id {t} (no movie in movie.csv has it)"),
            ));
        }
        let l = match rec.i64(cl)? {
            0 => 0,
            1 => 1,
            other => return Err(rec.error(cl, format!("label {other} is not 0 or 1"))),
        };
        out.push((u, t, l));
        Ok(())
    })?;
    Ok(out)
}

/// The training triples `(user, tag, islike)` of `obstag` and `rcttag`,
/// extracted, de-duplicated and sorted as the authors' script does.
fn extract(
    obs: &[(i64, i64, i64)],
    rct: &[(i64, i64, i64)],
    movies: &Movies,
) -> (Vec<Pair>, Vec<Pair>) {
    // (user, tag) pairs that have a label so far, over both sources.
    let mut labelled: HashSet<(i64, i64)> = HashSet::new();
    let tags_of = |m: i64| movies.tags.get(&m).map_or(&[][..], Vec::as_slice);
    let mut direct = |rows: &[(i64, i64, i64)], out: &mut Vec<Pair>| {
        for &(u, m, t) in rows {
            if t != -1 {
                labelled.insert((u, t));
                out.push((u, t, 1));
            } else {
                for &x in tags_of(m) {
                    labelled.insert((u, x));
                    out.push((u, x, 0));
                }
            }
        }
    };
    let mut obs_out = Vec::new();
    let mut rct_out = Vec::new();
    direct(obs, &mut obs_out);
    direct(rct, &mut rct_out);
    for &(u, m, t) in rct {
        if t == -1 {
            continue;
        }
        for &x in tags_of(m) {
            if labelled.insert((u, x)) {
                rct_out.push((u, x, 0));
            }
        }
    }
    for v in [&mut obs_out, &mut rct_out] {
        v.sort_unstable();
        v.dedup();
    }
    (obs_out, rct_out)
}

fn load_user_tag(dir: &Path, movies: &Movies) -> Result<Dataset> {
    let obs = read_tag_file(&dir.join("train").join("obstag.csv"), movies)?;
    let rct = read_tag_file(&dir.join("train").join("rcttag.csv"), movies)?;
    let (obs_rows, rct_rows) = extract(&obs, &rct, movies);
    let known_tags: HashSet<i64> = movies.tags.values().flatten().copied().collect();

    // Every block of rows with its source/part name, in row order.
    let mut blocks: Vec<(String, Vec<Pair>)> =
        vec![("obs".into(), obs_rows), ("rct".into(), rct_rows)];
    for (file, name) in TEST_FILES {
        let rows = read_label_file(&dir.join("test").join(file), &known_tags)?;
        blocks.push((name.into(), rows));
    }
    let valid_dir = dir.join("valid");
    if valid_dir.is_dir() {
        for (file, name) in VALID_FILES {
            let path = valid_dir.join(file);
            if path.is_file() {
                blocks.push((name.into(), read_label_file(&path, &known_tags)?));
            }
        }
    }

    let (mut users, mut items) = (IdIndex::default(), IdIndex::default());
    let (mut ucol, mut icol, mut label) = (Vec::new(), Vec::new(), Vec::new());
    let mut source = TokenCol::new("source", Role::Feature);
    let mut parts: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut train = Vec::new();
    let mut train_triples: HashSet<(i64, i64, u8)> = HashSet::new();
    let mut row = 0usize;
    for (name, rows) in &blocks {
        let part = match name.as_str() {
            "obs" => "train_obs",
            "rct" => "train_rct",
            other => other,
        };
        let mut idx = Vec::with_capacity(rows.len());
        for &(u, t, l) in rows {
            ucol.push(users.id(&u.to_string()));
            icol.push(items.id(&t.to_string()));
            label.push(l as f32);
            source.push(name);
            if (name == "obs" || name == "rct") && train_triples.insert((u, t, l)) {
                train.push(row);
            }
            idx.push(row);
            row += 1;
        }
        parts.insert(part.to_string(), idx);
    }
    parts.insert("train".into(), train);

    let inter = table(vec![
        id_field("user", Role::User, ucol, &users.raw),
        id_field("item", Role::Item, icol, &items.raw),
        float_field("islike", Role::Label, label),
        source.finish(),
    ])?;
    dataset("ctar", inter, None, None, users.raw, items.raw, parts)
}

fn load_rating(dir: &Path, movies: &Movies) -> Result<Dataset> {
    let csv = open(&dir.join("train").join("rating.csv"))?;
    let (cu, cm, cr) = (
        csv.column("userid")?,
        csv.column("movieid")?,
        csv.column("rating")?,
    );
    let (mut users, mut items) = (IdIndex::default(), IdIndex::default());
    let (mut ucol, mut icol, mut rating) = (Vec::new(), Vec::new(), Vec::new());
    let mut item_movie: Vec<i64> = Vec::new();
    csv.for_each(|rec| {
        let (u, m, r) = (rec.i64(cu)?, rec.i64(cm)?, rec.f32(cr)?);
        if !movies.tags.contains_key(&m) {
            return Err(rec.error(cm, format!("unknown movie id {m} (not in movie.csv)")));
        }
        ucol.push(users.id(&u.to_string()));
        let before = items.raw.len();
        icol.push(items.id(&m.to_string()));
        if items.raw.len() > before {
            item_movie.push(m);
        }
        rating.push(r);
        Ok(())
    })?;
    let n = ucol.len();
    let inter = table(vec![
        id_field("user", Role::User, ucol, &users.raw),
        id_field("item", Role::Item, icol, &items.raw),
        float_field("rating", Role::Rating, rating),
    ])?;
    let mut tags = SeqCol::new("tags", Role::Group);
    for m in &item_movie {
        let list: Vec<String> = movies.tags[m].iter().map(i64::to_string).collect();
        tags.push(list.iter().map(String::as_str));
    }
    let items_table = table(vec![tags.finish()])?;
    let mut parts = BTreeMap::new();
    parts.insert("train".to_string(), (0..n).collect());
    dataset(
        "ctar-rating",
        inter,
        None,
        Some(items_table),
        users.raw,
        items.raw,
        parts,
    )
}

/// One file of the CTAR release, as a row of the paper's Table 4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtarFileStat {
    /// The path relative to the release folder, e.g. `train/movie.csv`.
    pub file: String,
    /// The file size in bytes.
    pub bytes: u64,
    /// The number of data records (header excluded).
    pub records: usize,
    /// The header's column names.
    pub columns: Vec<String>,
}

/// Records per file of the release in `dir`: the four train files, the
/// four test files and the `valid/` files that exist, in Table 4 order.
pub fn ctar_file_stats(dir: &Path) -> Result<Vec<CtarFileStat>> {
    let mut files: Vec<String> = ["movie.csv", "rating.csv", "obstag.csv", "rcttag.csv"]
        .iter()
        .map(|f| format!("train/{f}"))
        .collect();
    files.extend(TEST_FILES.iter().map(|(f, _)| format!("test/{f}")));
    files.extend(
        VALID_FILES
            .iter()
            .map(|(f, _)| format!("valid/{f}"))
            .filter(|f| dir.join(f).is_file()),
    );
    files
        .into_iter()
        .map(|f| {
            let path = dir.join(&f);
            let bytes = std::fs::metadata(&path)
                .map_err(|e| io_err(&path.display().to_string(), e))?
                .len();
            let csv = open(&path)?;
            let columns = csv.names().to_vec();
            let mut records = 0;
            csv.for_each(|_| {
                records += 1;
                Ok(())
            })?;
            Ok(CtarFileStat {
                file: f,
                bytes,
                records,
                columns,
            })
        })
        .collect()
}

/// A Markdown table of `stats` in the layout of the paper's Table 4:
/// `| Filename | Size | Records | Data in each record |`, sizes in KB.
pub fn ctar_table4(stats: &[CtarFileStat]) -> String {
    let mut s =
        String::from("| Filename | Size | Records | Data in each record |\n|---|---:|---:|---|\n");
    for st in stats {
        let _ = writeln!(
            s,
            "| {} | {}KB | {} | {} |",
            st.file,
            (st.bytes as f64 / 1024.0).round() as u64,
            st.records,
            st.columns.join(", ")
        );
    }
    s
}
