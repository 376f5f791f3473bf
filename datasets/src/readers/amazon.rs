//! Amazon product reviews: a "ratings only" CSV (`user,item,rating,timestamp`
//! lines, no header, as in the 5-core / 20-core and `ratings_*.csv` files;
//! the 2018 release puts the item first, see [`AmazonOptions::item_first`])
//! with optional product metadata in JSON lines.
//!
//! A metadata line is a JSON object with `asin` and the category lists
//! under `categories` (2014: a list of category paths, flattened) or
//! `category` (2018: one list); they become the token_seq item field
//! `category` ([`Role::Group`]), each category once. Metadata lines of
//! unrated items are skipped, and a repeated `asin` (the 2018 files hold
//! some) keeps its first line. The 2014 metadata is Python literals rather
//! than JSON and must be converted first (`json.dumps(ast.literal_eval(l))`).

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::Result;
use crate::kcore::k_core;
use crate::readers::columns::{FeatureTable, InterBuilder, Sources};
use crate::readers::delimited::{Delim, DelimitedReader, Header, Record};
use crate::table::{Column, Dataset, FieldKind, FieldMeta, Role};

/// How to read Amazon reviews.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AmazonOptions {
    /// The ratings lines are `item,user,rating,timestamp` (the 2018
    /// "ratings only" files) instead of `user,item,rating,timestamp`
    /// (default false).
    pub item_first: bool,
    /// Keep only the `(user_k, item_k)`-core ([`k_core`]) after reading
    /// (default none).
    pub k_core: Option<(usize, usize)>,
    /// Every rated item must have a metadata line (default false: the
    /// metadata files miss some items); an unknown item is an error naming
    /// the ratings line where it first occurs.
    pub require_known_ids: bool,
}

/// Reads Amazon ratings (and `meta` if given) into a data set named after
/// the ratings file's stem. `inter` has `user_id`, `item_id`, `rating`
/// ([`Role::Rating`]) and `timestamp` ([`Role::Timestamp`], exact). Errors
/// name the file, 1-based line and column: a wrong delimiter or a missing
/// column, a bad number, a metadata line that is not a JSON object with a
/// string `asin` and category lists, or (with
/// [`AmazonOptions::require_known_ids`]) a rated item without metadata.
pub fn load_amazon(ratings: &Path, meta: Option<&Path>, opts: &AmazonOptions) -> Result<Dataset> {
    let cols = if opts.item_first {
        ["item_id", "user_id", "rating", "timestamp"]
    } else {
        ["user_id", "item_id", "rating", "timestamp"]
    };
    let (u, i) = if opts.item_first { (1, 0) } else { (0, 1) };
    let reader = DelimitedReader::open(ratings, Delim::Csv, Header::Fixed(&cols))?;
    let sources = Sources(vec![(
        reader.file().to_string(),
        "user_id".into(),
        "item_id".into(),
    )]);
    let mut inter = InterBuilder::default();
    let (mut rating, mut time) = (Vec::new(), Vec::new());
    reader.for_each(|rec| {
        inter.push(rec, u, i, 0)?;
        rating.push(rec.f32(2)?);
        time.push(rec.f64(3)?);
        Ok(())
    })?;
    let items = match meta {
        Some(path) => {
            let t = read_meta(path, &inter)?;
            if opts.require_known_ids {
                t.require_all(&inter.items, &sources, Role::Item)?;
            }
            t.finish()
        }
        None => None,
    };
    let name = ratings
        .file_stem()
        .map_or_else(|| "amazon".into(), |s| s.to_string_lossy().into_owned());
    let ds = inter.finish(
        &name,
        "user_id",
        "item_id",
        vec![
            (
                FieldMeta::new("rating", FieldKind::Float, Role::Rating),
                Column::Float(rating),
            ),
            (
                FieldMeta::new("timestamp", FieldKind::Float, Role::Timestamp),
                Column::Float64(time),
            ),
        ],
        None,
        items,
        Default::default(),
    )?;
    Ok(match opts.k_core {
        Some((uk, ik)) => k_core(&ds, uk, ik),
        None => ds,
    })
}

/// The metadata keys this reader uses; all others are skipped unparsed.
#[derive(Deserialize)]
struct MetaLine {
    asin: Option<Value>,
    categories: Option<Value>,
    category: Option<Value>,
}

/// The category strings of a `categories` / `category` value: a list of
/// strings, or a list of such lists.
fn categories<'v>(v: &'v Value, out: &mut Vec<&'v str>) -> bool {
    match v {
        Value::Array(xs) => xs.iter().all(|x| match x {
            Value::String(s) => {
                out.push(s);
                true
            }
            Value::Array(_) => categories(x, out),
            _ => false,
        }),
        Value::Null => true,
        _ => false,
    }
}

fn read_meta(path: &Path, inter: &InterBuilder) -> Result<FeatureTable> {
    // One cell per line: the line itself.
    let reader = DelimitedReader::open(path, Delim::Char('\n'), Header::Fixed(&["json"]))?;
    let fields = vec![FieldMeta::new("category", FieldKind::TokenSeq, Role::Group)];
    let mut t = FeatureTable::new(reader.file(), "asin", inter.items.len(), fields);
    reader.for_each(|rec: &Record<'_>| {
        let line: MetaLine = serde_json::from_str(rec.get(0)).map_err(|e| {
            let mut msg = format!("not a JSON object: {e}");
            if rec.get(0).trim_start().starts_with("{'") {
                msg.push_str(" (Python literal? convert with json.dumps(ast.literal_eval(line)))");
            }
            rec.error(0, msg)
        })?;
        let asin = match &line.asin {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim(),
            Some(other) => return Err(rec.error_in("asin", format!("not an id: {other}"))),
            None => return Err(rec.error_in("asin", "missing")),
        };
        let Some(dense) = inter.items.get(asin) else {
            return Ok(()); // unrated
        };
        if t.has_row(dense) {
            return Ok(()); // repeated asin: the first line wins
        }
        let mut cats = Vec::new();
        for (key, v) in [
            ("categories", &line.categories),
            ("category", &line.category),
        ] {
            if let Some(v) = v {
                if !categories(v, &mut cats) {
                    return Err(rec.error_in(key, format!("not a list of strings: {v}")));
                }
            }
        }
        t.start_row(dense, rec.line());
        t.seq(0, cats);
        Ok(())
    })?;
    Ok(t)
}
