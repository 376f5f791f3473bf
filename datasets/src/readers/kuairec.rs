//! KuaiRec: the biased interaction log `big_matrix.csv` and the fully
//! observed `small_matrix.csv` (both `user_id,video_id,play_duration,
//! video_duration,time,date,timestamp,watch_ratio`), with optional
//! `item_categories.csv` (`video_id,feat`, feat a Python list such as
//! `[8]` or `"[27, 9]"`) and `user_features.csv` (`user_id` and categorical
//! columns).
//!
//! The interactions of both matrices go into one `inter` table, the big
//! matrix's rows first: [`Dataset::parts`] names them `train` and `test`
//! (the biased-train / unbiased-test protocol of the KuaiRec papers; see
//! [`crate::split::given`]). `inter` fields: `user_id`, `video_id`,
//! `play_duration`, `video_duration` (milliseconds), `timestamp`
//! ([`Role::Timestamp`], exact; NaN where the file has none), `watch_ratio`
//! and the label `like` ([`Role::Label`], 1.0 where
//! `watch_ratio >= like_threshold`, else 0.0). `time` and `date` repeat
//! the timestamp and are not kept. Item field `feat` (token_seq,
//! [`Role::Group`]); user fields: every column of `user_features.csv` but
//! `user_id`, as tokens.

use std::path::Path;

use crate::error::{DataError, Result};
use crate::readers::columns::{FeatureTable, InterBuilder, Sources};
use crate::readers::delimited::{Delim, DelimitedReader, Header, Record};
use crate::table::{Column, Dataset, FieldKind, FieldMeta, Role};

/// How to read KuaiRec.
#[derive(Debug, Clone, PartialEq)]
pub struct KuaiRecOptions {
    /// `like = watch_ratio >= like_threshold` (default 2.0, as in the
    /// KuaiRec papers).
    pub like_threshold: f32,
    /// Read `item_categories.csv` when present (default true).
    pub item_features: bool,
    /// Read `user_features.csv` when present (default true).
    pub user_features: bool,
    /// Every video (user) of the matrices must have a line in
    /// `item_categories.csv` (`user_features.csv`) when that file is read
    /// (default true: KuaiRec's files are complete); an unknown id is an
    /// error naming the matrix line where it first occurs.
    pub require_known_ids: bool,
}

impl Default for KuaiRecOptions {
    fn default() -> Self {
        KuaiRecOptions {
            like_threshold: 2.0,
            item_features: true,
            user_features: true,
            require_known_ids: true,
        }
    }
}

/// The interaction columns read from each matrix.
const INTER_COLS: [&str; 6] = [
    "user_id",
    "video_id",
    "play_duration",
    "video_duration",
    "timestamp",
    "watch_ratio",
];

/// Reads the KuaiRec `data` folder `dir` (see the module documentation).
/// Errors name the file, 1-based line and column: a missing column in a
/// header or a line (a wrong delimiter shows as one), a bad number or
/// category list, a duplicate feature line, or (with
/// [`KuaiRecOptions::require_known_ids`]) an id without features.
pub fn load_kuairec(dir: &Path, opts: &KuaiRecOptions) -> Result<Dataset> {
    if !opts.like_threshold.is_finite() {
        return Err(DataError::Config(format!(
            "like_threshold must be finite, is {}",
            opts.like_threshold
        )));
    }
    let mut inter = InterBuilder::default();
    let mut sources = Sources(Vec::new());
    let mut cols: [Vec<f32>; 3] = Default::default(); // play, video duration, watch ratio
    let mut time = Vec::new();
    let mut like = Vec::new();
    let mut ends = Vec::new();
    for (s, file) in ["big_matrix.csv", "small_matrix.csv"]
        .into_iter()
        .enumerate()
    {
        let reader = DelimitedReader::open(&dir.join(file), Delim::Csv, Header::FirstLine)?;
        let c = INTER_COLS
            .iter()
            .map(|n| reader.column(n))
            .collect::<Result<Vec<usize>>>()?;
        sources.0.push((
            reader.file().to_string(),
            "user_id".into(),
            "video_id".into(),
        ));
        reader.for_each(|rec| {
            inter.push(rec, c[0], c[1], s as u16)?;
            cols[0].push(rec.f32(c[2])?);
            cols[1].push(rec.f32(c[3])?);
            time.push(rec.opt_f64(c[4])?.unwrap_or(f64::NAN));
            let ratio = rec.f32(c[5])?;
            cols[2].push(ratio);
            like.push(if ratio >= opts.like_threshold {
                1.0
            } else {
                0.0
            });
            Ok(())
        })?;
        ends.push(inter.len());
    }

    let items = match dir.join("item_categories.csv") {
        p if opts.item_features && p.is_file() => {
            let t = read_item_categories(&p, &inter)?;
            if opts.require_known_ids {
                t.require_all(&inter.items, &sources, Role::Item)?;
            }
            t.finish()
        }
        _ => None,
    };
    let users = match dir.join("user_features.csv") {
        p if opts.user_features && p.is_file() => {
            let t = read_user_features(&p, &inter)?;
            if opts.require_known_ids {
                t.require_all(&inter.users, &sources, Role::User)?;
            }
            t.finish()
        }
        _ => None,
    };
    let [play, video, ratio] = cols;
    let float = |name: &str, role: Role, v: Vec<f32>| {
        (
            FieldMeta::new(name, FieldKind::Float, role),
            Column::Float(v),
        )
    };
    inter.finish(
        "kuairec",
        "user_id",
        "video_id",
        vec![
            float("play_duration", Role::Feature, play),
            float("video_duration", Role::Feature, video),
            (
                FieldMeta::new("timestamp", FieldKind::Float, Role::Timestamp),
                Column::Float64(time),
            ),
            float("watch_ratio", Role::Feature, ratio),
            float("like", Role::Label, like),
        ],
        users,
        items,
        [
            ("train".to_string(), (0..ends[0]).collect()),
            ("test".to_string(), (ends[0]..ends[1]).collect()),
        ]
        .into(),
    )
}

/// The elements of a Python list of integers, `[27, 9]` -> `["27", "9"]`.
fn python_int_list<'r>(rec: &'r Record<'_>, c: usize) -> Result<Vec<&'r str>> {
    let cell = rec.get(c).trim();
    let inner = cell
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(|| rec.error(c, format!("'{cell}' is not a list like [27, 9]")))?;
    let mut out = Vec::new();
    for x in inner.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        if x.parse::<i64>().is_err() {
            return Err(rec.error(c, format!("'{x}' in '{cell}' is not a whole number")));
        }
        out.push(x);
    }
    Ok(out)
}

fn read_item_categories(path: &Path, inter: &InterBuilder) -> Result<FeatureTable> {
    let reader = DelimitedReader::open(path, Delim::Csv, Header::FirstLine)?;
    let (id, feat) = (reader.column("video_id")?, reader.column("feat")?);
    let fields = vec![FieldMeta::new("feat", FieldKind::TokenSeq, Role::Group)];
    let mut t = FeatureTable::new(reader.file(), "video_id", inter.items.len(), fields);
    reader.for_each(|rec| {
        let cats = python_int_list(rec, feat)?;
        if t.row(rec, id, &inter.items)? {
            t.seq(0, cats);
        }
        Ok(())
    })?;
    Ok(t)
}

fn read_user_features(path: &Path, inter: &InterBuilder) -> Result<FeatureTable> {
    let reader = DelimitedReader::open(path, Delim::Csv, Header::FirstLine)?;
    let id = reader.column("user_id")?;
    let others: Vec<usize> = (0..reader.names().len()).filter(|&c| c != id).collect();
    let fields = others
        .iter()
        .map(|&c| FieldMeta::new(reader.names()[c].as_str(), FieldKind::Token, Role::Feature))
        .collect();
    let mut t = FeatureTable::new(reader.file(), "user_id", inter.users.len(), fields);
    reader.for_each(|rec| {
        if t.row(rec, id, &inter.users)? {
            for (f, &c) in others.iter().enumerate() {
                t.token(f, rec.get(c));
            }
        }
        Ok(())
    })?;
    Ok(t)
}
