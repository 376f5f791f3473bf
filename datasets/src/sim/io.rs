//! Writing what a scenario produces: text files, RecBole atomic data sets
//! built from scenario tables, and the `scenario.ron` record.

use std::path::Path;

use super::api::ParamValue;
use super::value::{TCol, Table};
use crate::table::{Column, Dataset, FieldKind, FieldMeta, Role, Table as DTable};

/// Writes `text` to `path`, creating parent directories.
pub fn write_text(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The role of a scenario column written to an atomic file, by name.
fn role_of(name: &str) -> Role {
    match name {
        "rating" => Role::Rating,
        "label" | "click" | "like" => Role::Label,
        "timestamp" => Role::Timestamp,
        "position" => Role::Position,
        "propensity" => Role::Propensity,
        "group" => Role::Group,
        "query" => Role::Query,
        n if n.starts_with("proxy_") => Role::Proxy,
        n if n.starts_with("exposure_") => Role::Exposure,
        _ => Role::Feature,
    }
}

fn ints(t: &Table, name: &str) -> Result<Vec<i64>, String> {
    match t.get(name)? {
        TCol::Int(v) => Ok(v.clone()),
        _ => Err(format!("column '{name}' must hold integer ids")),
    }
}

/// Builds a [`Dataset`] from an interaction table with integer `user_id`
/// and `item_id` columns (other columns become float fields, their role
/// chosen by name: `rating`, `label`/`click`/`like`, `timestamp`,
/// `position`, `propensity`, `group`, `query`, `proxy_*`, `exposure_*`,
/// else feature) and an optional item table keyed by `item_id` (integer
/// columns there become token fields, e.g. a `group`; text columns of
/// space-separated numbers, as `vectors` writes them, become float_seq
/// fields: dense features such as a modality).
pub fn to_dataset(name: &str, inter: &Table, items: Option<&Table>) -> Result<Dataset, String> {
    let users = ints(inter, "user_id")?;
    let its = ints(inter, "item_id")?;
    let dense = |raw: &[i64]| {
        let mut ids: Vec<String> = Vec::new();
        let mut pos = std::collections::HashMap::new();
        let col: Vec<u32> = raw
            .iter()
            .map(|r| {
                *pos.entry(*r).or_insert_with(|| {
                    ids.push(r.to_string());
                    (ids.len() - 1) as u32
                })
            })
            .collect();
        (col, ids, pos)
    };
    let (ucol, user_ids, _) = dense(&users);
    let (icol, item_ids, ipos) = dense(&its);
    let mut t = DTable::new();
    let mut um = FieldMeta::new("user_id", FieldKind::Token, Role::User);
    um.vocab = user_ids.clone();
    let mut im = FieldMeta::new("item_id", FieldKind::Token, Role::Item);
    im.vocab = item_ids.clone();
    t.push(um, Column::Token(ucol)).map_err(|e| e.to_string())?;
    t.push(im, Column::Token(icol)).map_err(|e| e.to_string())?;
    for (n, c) in inter.names.iter().zip(&inter.cols) {
        if n == "user_id" || n == "item_id" {
            continue;
        }
        if let TCol::Str(v) = c {
            if v.iter().any(|s| s.trim().parse::<f64>().is_err()) {
                // text interaction columns (e.g. a part name) become token fields
                let mut meta = FieldMeta::new(n.clone(), FieldKind::Token, role_of(n));
                let mut distinct = v.clone();
                distinct.sort_unstable();
                distinct.dedup();
                meta.vocab.extend(distinct.iter().cloned());
                let col = v
                    .iter()
                    .map(|s| distinct.binary_search(s).map_or(0, |p| p as u32 + 1))
                    .collect();
                t.push(meta, Column::Token(col))
                    .map_err(|e| e.to_string())?;
                continue;
            }
        }
        let v = c.as_f64().map_err(|e| format!("column '{n}': {e}"))?;
        t.push(
            FieldMeta::new(n.clone(), FieldKind::Float, role_of(n)),
            Column::Float(v.into_iter().map(|x| x as f32).collect()),
        )
        .map_err(|e| e.to_string())?;
    }
    let items_table = match items {
        None => None,
        Some(it) => {
            let keys = ints(it, "item_id")?;
            // row of each dense item in the item table
            let mut row_of = vec![None; item_ids.len()];
            for (r, k) in keys.iter().enumerate() {
                if let Some(&d) = ipos.get(k) {
                    row_of[d as usize] = Some(r);
                }
            }
            let mut ft = DTable::new();
            for (n, c) in it.names.iter().zip(&it.cols) {
                if n == "item_id" {
                    continue;
                }
                if let TCol::Int(v) = c {
                    // integer item columns (e.g. a group) become token fields
                    let mut meta = FieldMeta::new(n.clone(), FieldKind::Token, role_of(n));
                    let mut distinct: Vec<i64> = v.clone();
                    distinct.sort_unstable();
                    distinct.dedup();
                    meta.vocab.extend(distinct.iter().map(i64::to_string));
                    let id = |x: i64| distinct.binary_search(&x).map_or(0, |p| p as u32 + 1);
                    let col = row_of.iter().map(|r| r.map_or(0, |r| id(v[r]))).collect();
                    ft.push(meta, Column::Token(col))
                        .map_err(|e| e.to_string())?;
                    continue;
                }
                if let TCol::Str(v) = c {
                    // text item columns hold dense vectors ("x1 x2 ..", see
                    // `vectors`) and become float_seq fields
                    ft.push(vector_field(n, v, &row_of)?, vector_column(n, v, &row_of)?)
                        .map_err(|e| e.to_string())?;
                    continue;
                }
                let v = c.as_f64().map_err(|e| format!("item column '{n}': {e}"))?;
                let col = row_of
                    .iter()
                    .map(|r| r.map_or(0.0, |r| v[r] as f32))
                    .collect();
                ft.push(
                    FieldMeta::new(n.clone(), FieldKind::Float, role_of(n)),
                    Column::Float(col),
                )
                .map_err(|e| e.to_string())?;
            }
            Some(ft)
        }
    };
    Ok(Dataset {
        name: name.to_string(),
        inter: t,
        users: None,
        items: items_table,
        n_users: user_ids.len(),
        n_items: item_ids.len(),
        user_ids,
        item_ids,
        parts: Default::default(),
    })
}

/// The float_seq field of text item column `n` (cells of space-separated numbers).
fn vector_field(n: &str, cells: &[String], row_of: &[Option<usize>]) -> Result<FieldMeta, String> {
    let width = row_of
        .iter()
        .flatten()
        .map(|&r| cells[r].split_whitespace().count())
        .max()
        .unwrap_or(0);
    let mut meta = FieldMeta::new(n, FieldKind::FloatSeq, role_of(n));
    meta.max_len = width;
    Ok(meta)
}

/// The values of text item column `n` per dense item (an item missing
/// from the item table gets zeros); every cell must hold the same number
/// of numbers.
fn vector_column(n: &str, cells: &[String], row_of: &[Option<usize>]) -> Result<Column, String> {
    let parse = |r: usize| -> Result<Vec<f32>, String> {
        cells[r]
            .split_whitespace()
            .map(|x| {
                x.parse::<f32>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                    format!("item column '{n}', row {r}: '{x}' is not a number (text item columns hold dense vectors \"x1 x2 ..\")")
                })
            })
            .collect()
    };
    let width = vector_field(n, cells, row_of)?.max_len;
    let (mut offsets, mut values) = (vec![0u32], Vec::new());
    for r in row_of {
        match r {
            Some(r) => {
                let v = parse(*r)?;
                if v.len() != width {
                    return Err(format!(
                        "item column '{n}', row {r}: {} numbers, other rows have {width}",
                        v.len()
                    ));
                }
                values.extend(v);
            }
            None => values.extend(std::iter::repeat_n(0.0, width)),
        }
        offsets.push(values.len() as u32);
    }
    Ok(Column::FloatSeq { offsets, values })
}

/// The record written to `out/scenario.ron`.
#[derive(Debug, serde::Serialize)]
pub struct ScenarioRecord {
    /// The scenario file.
    pub scenario: String,
    /// The seed of the random number generator.
    pub seed: u64,
    /// The resolved parameters, in declaration order.
    pub params: Vec<(String, ParamValue)>,
}

/// Writes `out/scenario.ron`.
pub fn write_record(out: &Path, rec: &ScenarioRecord) -> Result<(), String> {
    let text = ron::ser::to_string_pretty(rec, ron::ser::PrettyConfig::default())
        .map_err(|e| format!("scenario.ron: {e}"))?;
    write_text(&out.join("scenario.ron"), &text)
}
