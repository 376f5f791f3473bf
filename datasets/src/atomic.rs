//! RecBole atomic files: reading (`.inter`, `.user`, `.item`) into a
//! [`Dataset`] and writing a [`Dataset`] back out.
//!
//! An atomic file is tab-separated text. Its first line is a header of
//! `name:type` cells, with type one of `token`, `token_seq`, `float`,
//! `float_seq`; every further line has one cell per header cell. Sequence
//! cells hold space-separated values. `\r\n` line endings, a UTF-8 byte
//! order mark and blank lines (e.g. a trailing empty line) are accepted.
//!
//! Empty cells: an empty token (or the literal `[PAD]`) reads as the
//! padding token 0; an empty float cell reads as 0.0 in feature fields but
//! is an error in the id, rating and timestamp fields; an empty sequence
//! cell is an empty list.
//!
//! Users and items are numbered densely in order of first appearance in the
//! `.inter` file (as RecBole does); feature tokens are numbered from 1 in
//! order of first appearance in their file, 0 being [`PAD`].

use std::collections::HashMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{DataError, Result};
use crate::readers::columns::dataset;
use crate::table::{Column, Dataset, FieldKind, FieldMeta, Role, Table, PAD};

/// How to read a RecBole atomic data set.
#[derive(Debug, Clone, PartialEq)]
pub struct AtomicOptions {
    /// The user id field (default `user_id`); required in `.inter` and
    /// `.user`.
    pub user_field: String,
    /// The item id field (default `item_id`); required in `.inter` and
    /// `.item`.
    pub item_field: String,
    /// The rating field of `.inter`, used if present (default `rating`).
    /// It must be a `float` field.
    pub rating_field: Option<String>,
    /// The timestamp field of `.inter`, used if present (default
    /// `timestamp`). It must be a `float` field.
    pub time_field: Option<String>,
    /// Extra role assignments, e.g. `("class", Role::Group)`; they apply to
    /// fields of that name in every file. Fields not named anywhere get
    /// [`Role::Feature`]. [`Role::User`] and [`Role::Item`] cannot be
    /// assigned here (use `user_field` / `item_field`).
    pub roles: Vec<(String, Role)>,
    /// Fields to skip in every file.
    pub drop_fields: Vec<String>,
}

impl Default for AtomicOptions {
    fn default() -> Self {
        AtomicOptions {
            user_field: "user_id".into(),
            item_field: "item_id".into(),
            rating_field: Some("rating".into()),
            time_field: Some("timestamp".into()),
            roles: Vec::new(),
            drop_fields: Vec::new(),
        }
    }
}

impl AtomicOptions {
    /// Adds a role assignment (builder style).
    pub fn with_role(mut self, field: impl Into<String>, role: Role) -> Self {
        self.roles.push((field.into(), role));
        self
    }

    /// Adds a field to drop (builder style).
    pub fn drop_field(mut self, field: impl Into<String>) -> Self {
        self.drop_fields.push(field.into());
        self
    }

    fn role_of(&self, field: &str) -> Option<Role> {
        self.roles
            .iter()
            .rev()
            .find(|(n, _)| n == field)
            .map(|(_, r)| *r)
    }
}

/// Reads `{dir}/{name}.inter` (required) and `{dir}/{name}.user`,
/// `{dir}/{name}.item` (optional) into a [`Dataset`] named `name`.
///
/// Feature lines for users/items that never occur in `.inter` are dropped;
/// users/items without a feature line get padding. The id column is removed
/// from the feature tables. On any error nothing is returned but the error:
/// a missing file ([`DataError::Io`]), a malformed header, cell count or
/// value ([`DataError::Parse`], with file, 1-based line and column), or a
/// missing or mistyped required column ([`DataError::Schema`]).
pub fn load_atomic(dir: &Path, name: &str, opts: &AtomicOptions) -> Result<Dataset> {
    for (field, role) in &opts.roles {
        if matches!(role, Role::User | Role::Item) {
            return Err(DataError::Config(format!(
                "cannot assign role '{role}' to field '{field}' through `roles`; \
                 set user_field / item_field instead"
            )));
        }
    }
    if opts.user_field == opts.item_field {
        return Err(DataError::Config(format!(
            "user_field and item_field are both '{}'",
            opts.user_field
        )));
    }
    let inter_path = dir.join(format!("{name}.inter"));
    let rating = opts.rating_field.as_deref();
    let time = opts.time_field.as_deref();
    let required = |f: &str| {
        f == opts.user_field || f == opts.item_field || Some(f) == rating || Some(f) == time
    };
    let raw =
        parse_file(&inter_path, opts, &required, time)?.ok_or_else(|| not_found(&inter_path))?;
    let file = raw.file.clone();
    let mut inter = raw.table;

    // Roles of the interaction fields.
    for meta in inter.fields.iter_mut() {
        meta.role = opts.role_of(&meta.name).unwrap_or(Role::Feature);
    }
    for (field, role) in [(rating, Role::Rating), (time, Role::Timestamp)] {
        let Some(field) = field else { continue };
        if let Some((i, meta)) = inter.field(field) {
            if meta.kind != FieldKind::Float {
                return Err(DataError::Schema {
                    file,
                    msg: format!("the {role} field '{field}' must be float, is {}", meta.kind),
                });
            }
            inter.fields[i].role = role;
        }
    }
    let (user_ids, user_index) = densify(&mut inter, &opts.user_field, Role::User, &file)?;
    let (item_ids, item_index) = densify(&mut inter, &opts.item_field, Role::Item, &file)?;

    let users = load_features(dir, name, "user", &opts.user_field, &user_index, opts)?;
    let items = load_features(dir, name, "item", &opts.item_field, &item_index, opts)?;

    dataset(
        name,
        inter,
        users,
        items,
        user_ids,
        item_ids,
        Default::default(),
    )
}

fn not_found(path: &Path) -> DataError {
    DataError::Io {
        file: path.display().to_string(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
    }
}

fn missing_column(file: &str, field: &str, table: &Table) -> DataError {
    let found: Vec<&str> = table.fields.iter().map(|f| f.name.as_str()).collect();
    DataError::Schema {
        file: file.to_string(),
        msg: format!(
            "missing required column '{field}' (columns found: {})",
            found.join(", ")
        ),
    }
}

/// Turns the padded token ids of the id field into dense ids `0..n` and
/// returns the raw ids with a raw id -> dense id index.
fn densify(
    inter: &mut Table,
    field: &str,
    role: Role,
    file: &str,
) -> Result<(Vec<String>, HashMap<String, u32>)> {
    let (i, meta) = inter
        .field(field)
        .ok_or_else(|| missing_column(file, field, inter))?;
    if meta.kind != FieldKind::Token {
        return Err(DataError::Schema {
            file: file.to_string(),
            msg: format!(
                "the {role} id field '{field}' must be token, is {}",
                meta.kind
            ),
        });
    }
    let meta = &mut inter.fields[i];
    meta.role = role;
    // Required fields never hold the padding id 0 (checked while parsing).
    if let Column::Token(ids) = &mut inter.columns[i] {
        for id in ids.iter_mut() {
            *id -= 1;
        }
    }
    meta.vocab.remove(0);
    let index = meta
        .vocab
        .iter()
        .enumerate()
        .map(|(d, s)| (s.clone(), d as u32))
        .collect();
    Ok((meta.vocab.clone(), index))
}

/// Reads `{name}.{ext}` if it exists and aligns its rows with the dense ids.
fn load_features(
    dir: &Path,
    name: &str,
    ext: &str,
    id_field: &str,
    index: &HashMap<String, u32>,
    opts: &AtomicOptions,
) -> Result<Option<Table>> {
    let path = dir.join(format!("{name}.{ext}"));
    let Some(raw) = parse_file(&path, opts, &|f: &str| f == id_field, None)? else {
        return Ok(None);
    };
    let mut table = raw.table;
    let (id_meta, id_col) = table
        .remove(id_field)
        .ok_or_else(|| missing_column(&raw.file, id_field, &raw.table_names))?;
    if id_meta.kind != FieldKind::Token {
        return Err(DataError::Schema {
            file: raw.file,
            msg: format!(
                "the id field '{id_field}' must be token, is {}",
                id_meta.kind
            ),
        });
    }
    let mut source: Vec<Option<usize>> = vec![None; index.len()];
    for (row, &tok) in id_col.as_tokens().unwrap_or_default().iter().enumerate() {
        let raw_id = &id_meta.vocab[tok as usize];
        let Some(&dense) = index.get(raw_id) else {
            continue; // no interaction: dropped
        };
        let slot = &mut source[dense as usize];
        if let Some(first) = *slot {
            return Err(DataError::Parse {
                file: raw.file,
                line: raw.lines[row],
                column: id_field.to_string(),
                msg: format!(
                    "duplicate id '{raw_id}' (first on line {})",
                    raw.lines[first]
                ),
            });
        }
        *slot = Some(row);
    }
    if table.fields.is_empty() {
        return Ok(None);
    }
    for meta in table.fields.iter_mut() {
        meta.role = opts.role_of(&meta.name).unwrap_or(Role::Feature);
    }
    let columns: Vec<Column> = table
        .columns
        .iter()
        .map(|c| c.take_or_pad(&source))
        .collect();
    for (meta, col) in table.fields.iter_mut().zip(&columns) {
        if meta.kind.is_seq() {
            meta.max_len = col.max_seq_len();
        }
    }
    table.columns = columns;
    Ok(Some(table))
}

/// One parsed atomic file.
struct RawFile {
    /// The path, for messages.
    file: String,
    /// The kept columns, token ids padded (0 = empty / `[PAD]`).
    table: Table,
    /// The header's fields before dropping, for "columns found" messages.
    table_names: Table,
    /// The 1-based line number of each row.
    lines: Vec<usize>,
}

/// Builds one column while reading.
enum Builder {
    Token {
        index: HashMap<String, u32>,
        ids: Vec<u32>,
    },
    TokenSeq {
        index: HashMap<String, u32>,
        offsets: Vec<u32>,
        values: Vec<u32>,
    },
    Float(Vec<f32>),
    Float64(Vec<f64>),
    FloatSeq {
        offsets: Vec<u32>,
        values: Vec<f32>,
    },
}

pub(crate) fn intern(index: &mut HashMap<String, u32>, vocab: &mut Vec<String>, tok: &str) -> u32 {
    if tok.is_empty() || tok == PAD {
        return 0;
    }
    if let Some(&id) = index.get(tok) {
        return id;
    }
    let id = vocab.len() as u32;
    vocab.push(tok.to_string());
    index.insert(tok.to_string(), id);
    id
}

pub(crate) fn parse_float(cell: &str) -> std::result::Result<f32, String> {
    match cell.trim().parse::<f32>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err(format!("'{cell}' is not a finite number")),
        Err(_) => Err(format!("'{cell}' is not a number")),
    }
}

/// [`parse_float`] at double precision.
pub(crate) fn parse_float64(cell: &str) -> std::result::Result<f64, String> {
    match cell.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err(format!("'{cell}' is not a finite number")),
        Err(_) => Err(format!("'{cell}' is not a number")),
    }
}

/// Parses one atomic file; `Ok(None)` if it does not exist. `required`
/// names the fields whose cells may not be empty; the `float` field called
/// `wide` (the timestamp) is read at double precision.
fn parse_file(
    path: &Path,
    opts: &AtomicOptions,
    required: &dyn Fn(&str) -> bool,
    wide: Option<&str>,
) -> Result<Option<RawFile>> {
    let file = path.display().to_string();
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(DataError::Io { file, source }),
    };
    let parse_err = |line: usize, column: &str, msg: String| DataError::Parse {
        file: file.clone(),
        line,
        column: column.to_string(),
        msg,
    };
    let mut lines = bytes.split(|&b| b == b'\n').enumerate().map(|(i, l)| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        (i + 1, std::str::from_utf8(l))
    });

    // Header.
    let header = match lines.next() {
        Some((_, Ok(h))) => h.strip_prefix('\u{feff}').unwrap_or(h),
        Some((_, Err(e))) => return Err(parse_err(1, "", format!("invalid UTF-8: {e}"))),
        None => unreachable!("split always yields at least one slice"),
    };
    if header.trim().is_empty() {
        return Err(DataError::Schema {
            file,
            msg: "empty file: no header line".into(),
        });
    }
    let mut all_fields: Vec<FieldMeta> = Vec::new();
    for cell in header.split('\t') {
        let Some((name, ty)) = cell.rsplit_once(':') else {
            return Err(parse_err(
                1,
                cell,
                format!("header cell '{cell}' has no ':type' suffix"),
            ));
        };
        let kind = FieldKind::parse(ty).ok_or_else(|| {
            parse_err(
                1,
                cell,
                format!("unknown type '{ty}' (expected token, token_seq, float or float_seq)"),
            )
        })?;
        if name.is_empty() {
            return Err(parse_err(1, cell, "empty field name".into()));
        }
        if all_fields.iter().any(|f| f.name == name) {
            return Err(parse_err(1, cell, format!("duplicate field '{name}'")));
        }
        all_fields.push(FieldMeta::new(name, kind, Role::Feature));
    }
    let n_cells = all_fields.len();
    let keep: Vec<bool> = all_fields
        .iter()
        .map(|f| !opts.drop_fields.contains(&f.name))
        .collect();
    let is_required: Vec<bool> = all_fields.iter().map(|f| required(&f.name)).collect();
    let mut fields: Vec<FieldMeta> = Vec::new();
    let mut builders: Vec<Option<Builder>> = Vec::new();
    for (meta, &k) in all_fields.iter().zip(&keep) {
        if !k {
            builders.push(None);
            continue;
        }
        fields.push(meta.clone());
        builders.push(Some(match meta.kind {
            FieldKind::Token => Builder::Token {
                index: HashMap::new(),
                ids: Vec::new(),
            },
            FieldKind::TokenSeq => Builder::TokenSeq {
                index: HashMap::new(),
                offsets: vec![0],
                values: Vec::new(),
            },
            FieldKind::Float if wide == Some(meta.name.as_str()) => Builder::Float64(Vec::new()),
            FieldKind::Float => Builder::Float(Vec::new()),
            FieldKind::FloatSeq => Builder::FloatSeq {
                offsets: vec![0],
                values: Vec::new(),
            },
        }));
    }
    // `kept[c]` = index into `fields` of header cell c.
    let mut kept_idx = Vec::with_capacity(n_cells);
    let mut next = 0;
    for &k in &keep {
        kept_idx.push(next);
        if k {
            next += 1;
        }
    }

    // Data lines.
    let mut row_lines = Vec::new();
    for (line_no, text) in lines {
        let text = text.map_err(|e| parse_err(line_no, "", format!("invalid UTF-8: {e}")))?;
        if text.is_empty() {
            continue;
        }
        let n_found = text.split('\t').count();
        if n_found != n_cells {
            let column = if n_found < n_cells {
                all_fields[n_found].name.clone()
            } else {
                all_fields[n_cells - 1].name.clone()
            };
            let detail = if n_found < n_cells {
                "is missing"
            } else {
                "is followed by extra cells"
            };
            return Err(parse_err(
                line_no,
                &column,
                format!("expected {n_cells} tab-separated cells, found {n_found}: column {detail}"),
            ));
        }
        for (c, cell) in text.split('\t').enumerate() {
            let Some(b) = builders[c].as_mut() else {
                continue;
            };
            let meta = &mut fields[kept_idx[c]];
            if is_required[c] && cell.trim().is_empty() {
                return Err(parse_err(
                    line_no,
                    &meta.name,
                    "empty value in a required field".into(),
                ));
            }
            match b {
                Builder::Token { index, ids } => {
                    if is_required[c] && cell == PAD {
                        return Err(parse_err(
                            line_no,
                            &meta.name,
                            format!("'{PAD}' is reserved and cannot be an id"),
                        ));
                    }
                    ids.push(intern(index, &mut meta.vocab, cell));
                }
                Builder::TokenSeq {
                    index,
                    offsets,
                    values,
                } => {
                    let start = values.len();
                    for tok in cell.split(' ').filter(|t| !t.is_empty()) {
                        values.push(intern(index, &mut meta.vocab, tok));
                    }
                    meta.max_len = meta.max_len.max(values.len() - start);
                    offsets.push(values.len() as u32);
                }
                Builder::Float(v) => {
                    let x = if cell.trim().is_empty() {
                        0.0
                    } else {
                        parse_float(cell).map_err(|m| parse_err(line_no, &meta.name, m))?
                    };
                    v.push(x);
                }
                Builder::Float64(v) => {
                    let x = if cell.trim().is_empty() {
                        0.0
                    } else {
                        parse_float64(cell).map_err(|m| parse_err(line_no, &meta.name, m))?
                    };
                    v.push(x);
                }
                Builder::FloatSeq { offsets, values } => {
                    let start = values.len();
                    for tok in cell.split(' ').filter(|t| !t.trim().is_empty()) {
                        let x = parse_float(tok).map_err(|m| parse_err(line_no, &meta.name, m))?;
                        values.push(x);
                    }
                    meta.max_len = meta.max_len.max(values.len() - start);
                    offsets.push(values.len() as u32);
                }
            }
        }
        row_lines.push(line_no);
    }
    if row_lines.len() > u32::MAX as usize {
        return Err(DataError::Schema {
            file,
            msg: "too many rows for 32-bit offsets".into(),
        });
    }

    let columns: Vec<Column> = builders
        .into_iter()
        .flatten()
        .map(|b| match b {
            Builder::Token { ids, .. } => Column::Token(ids),
            Builder::TokenSeq {
                offsets, values, ..
            } => Column::TokenSeq { offsets, values },
            Builder::Float(v) => Column::Float(v),
            Builder::Float64(v) => Column::Float64(v),
            Builder::FloatSeq { offsets, values } => Column::FloatSeq { offsets, values },
        })
        .collect();
    Ok(Some(RawFile {
        file,
        table: Table { fields, columns },
        table_names: Table {
            fields: all_fields,
            columns: Vec::new(),
        },
        lines: row_lines,
    }))
}

/// Writes `ds` as RecBole atomic files `{dir}/{name}.inter`, and
/// `{name}.user` / `{name}.item` when the data set has feature tables with
/// fields (a stale `.user` / `.item` file from an earlier write is removed
/// otherwise, so that [`load_atomic`] reads back what was written).
///
/// This is the inverse of [`load_atomic`]: the id columns are written as
/// raw ids, tokens as their strings (padding as an empty cell), floats as
/// the shortest decimal that reads back as the same `f32`. The directory is
/// created if needed. Fails (writing nothing) if the data set breaks its
/// contract or holds a value the format cannot represent: a tab or line
/// break in a token, a space in a sequence token, an empty raw id, or a
/// non-finite float.
pub fn write_atomic(ds: &Dataset, dir: &Path, name: &str) -> Result<()> {
    ds.validate()?;
    let (ui, umeta) = ds
        .inter
        .field_by_role(Role::User)
        .ok_or_else(|| DataError::Config("no user field".into()))?;
    let (ii, imeta) = ds
        .inter
        .field_by_role(Role::Item)
        .ok_or_else(|| DataError::Config("no item field".into()))?;
    let check_id = |s: &String| -> Result<()> {
        if s.is_empty() || s == PAD || s.contains(['\t', '\n', '\r']) {
            Err(DataError::Config(format!(
                "raw id {s:?} cannot be written to an atomic file"
            )))
        } else {
            Ok(())
        }
    };
    ds.user_ids.iter().try_for_each(check_id)?;
    ds.item_ids.iter().try_for_each(check_id)?;

    // Render everything first, so that nothing is written on error.
    let mut outputs: Vec<(String, Option<String>)> = Vec::new();
    let inter_text = render(&ds.inter, None, &|f, r| {
        if f == ui {
            Some(&ds.user_ids[ds.inter.columns[ui].token(r) as usize])
        } else if f == ii {
            Some(&ds.item_ids[ds.inter.columns[ii].token(r) as usize])
        } else {
            None
        }
    })?;
    outputs.push(("inter".into(), Some(inter_text)));
    for (ext, table, id_name, ids) in [
        ("user", &ds.users, &umeta.name, &ds.user_ids),
        ("item", &ds.items, &imeta.name, &ds.item_ids),
    ] {
        let text = match table {
            Some(t) if !t.fields.is_empty() => {
                Some(render(t, Some((id_name.as_str(), ids)), &|_, _| None)?)
            }
            _ => None,
        };
        outputs.push((ext.into(), text));
    }

    fs::create_dir_all(dir).map_err(|source| DataError::Io {
        file: dir.display().to_string(),
        source,
    })?;
    for (ext, text) in outputs {
        let path = dir.join(format!("{name}.{ext}"));
        let io = |source| DataError::Io {
            file: path.display().to_string(),
            source,
        };
        match text {
            Some(text) => {
                let f = fs::File::create(&path).map_err(io)?;
                let mut w = BufWriter::new(f);
                w.write_all(text.as_bytes()).map_err(io)?;
                w.flush().map_err(io)?;
            }
            None => match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            },
        }
    }
    Ok(())
}

/// Renders a table as atomic-file text. `id` prepends a token id column
/// (`name`, raw id of row r); `raw(f, r)` overrides the text of a cell.
fn render<'a>(
    table: &Table,
    id: Option<(&str, &Vec<String>)>,
    raw: &dyn Fn(usize, usize) -> Option<&'a String>,
) -> Result<String> {
    let mut out = String::new();
    let mut header: Vec<String> = Vec::new();
    if let Some((name, _)) = id {
        header.push(format!("{name}:token"));
    }
    for f in &table.fields {
        if f.name.is_empty() || f.name.contains(['\t', '\n', '\r']) {
            return Err(DataError::Config(format!(
                "field name {:?} cannot be written to an atomic file",
                f.name
            )));
        }
        header.push(format!("{}:{}", f.name, f.kind));
    }
    out.push_str(&header.join("\t"));
    out.push('\n');
    let bad = |f: &FieldMeta, r: usize, what: &str| {
        DataError::Config(format!(
            "field '{}', row {r}: {what} cannot be written to an atomic file",
            f.name
        ))
    };
    for r in 0..table.n_rows() {
        let mut cells: Vec<String> = Vec::with_capacity(header.len());
        if let Some((_, ids)) = id {
            cells.push(ids[r].clone());
        }
        for (f, (meta, col)) in table.fields.iter().zip(&table.columns).enumerate() {
            if let Some(s) = raw(f, r) {
                cells.push(s.clone());
                continue;
            }
            match col {
                Column::Token(v) => {
                    let s = meta.token_str(v[r]).unwrap_or("");
                    if v[r] != 0 && (s.is_empty() || s == PAD || s.contains(['\t', '\n', '\r'])) {
                        return Err(bad(meta, r, &format!("token {s:?}")));
                    }
                }
                Column::TokenSeq { .. } => {
                    for &t in col.seq(r) {
                        let s = meta.token_str(t).unwrap_or("");
                        if t != 0
                            && (s.is_empty() || s == PAD || s.contains([' ', '\t', '\n', '\r']))
                        {
                            return Err(bad(meta, r, &format!("sequence token {s:?}")));
                        }
                    }
                }
                Column::Float(v) => {
                    if !v[r].is_finite() {
                        return Err(bad(meta, r, &format!("value {}", v[r])));
                    }
                }
                Column::Float64(v) => {
                    if !v[r].is_finite() {
                        return Err(bad(meta, r, &format!("value {}", v[r])));
                    }
                }
                Column::FloatSeq { .. } => {
                    if let Some(x) = col.float_seq(r).iter().find(|x| !x.is_finite()) {
                        return Err(bad(meta, r, &format!("value {x}")));
                    }
                }
            }
            cells.push(table.cell_text(f, r));
        }
        out.push_str(&cells.join("\t"));
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh, empty scratch directory under the system temp dir.
    pub(crate) fn scratch(tag: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "causalrec-datasets-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(dir: &Path, file: &str, text: &str) {
        fs::write(dir.join(file), text).unwrap();
    }

    const INTER: &str = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n\
                         u1\ti1\t4\t100\n\
                         u2\ti2\t3\t50\n\
                         u1\ti3\t5\t200\n";

    #[test]
    fn loads_a_small_data_set_with_features() {
        let dir = scratch("small");
        write(&dir, "d.inter", INTER);
        write(
            &dir,
            "d.item",
            "item_id:token\tgenre:token_seq\temb:float_seq\n\
             i3\tc\t1 2 3\n\
             i1\ta b\t0.5\n\
             i9\tz\t9\n",
        );
        write(
            &dir,
            "d.user",
            "user_id:token\tage:token\tscore:float\nu2\t30\t\nu1\t20\t1.5\n",
        );
        let opts = AtomicOptions::default().with_role("genre", Role::Group);
        let ds = load_atomic(&dir, "d", &opts).unwrap();
        assert_eq!(ds.n_users, 2);
        assert_eq!(ds.n_items, 3);
        assert_eq!(ds.user_ids, vec!["u1", "u2"]);
        assert_eq!(ds.item_ids, vec!["i1", "i2", "i3"]);
        assert_eq!(ds.user_col(), &[0, 1, 0]);
        assert_eq!(ds.item_col(), &[0, 1, 2]);
        assert_eq!(ds.rating_col(), Some(&[4.0, 3.0, 5.0][..]));
        assert_eq!(
            ds.timestamp_col().as_deref(),
            Some(&[100.0, 50.0, 200.0][..])
        );

        let items = ds.items.as_ref().unwrap();
        assert!(items.field("item_id").is_none());
        let (gi, g) = items.field("genre").unwrap();
        assert_eq!(g.role, Role::Group);
        assert_eq!(g.vocab, vec![PAD, "c", "a", "b", "z"]);
        assert_eq!(g.max_len, 2);
        assert_eq!(items.cell_text(gi, 0), "a b"); // item i1
        assert_eq!(items.cell_text(gi, 1), ""); // i2 has no line: padding
        assert_eq!(items.cell_text(gi, 2), "c");
        let emb = items.field("emb").unwrap().1;
        assert_eq!(emb.dim(), 3, "dim recomputed over kept rows");
        assert_eq!(items.column("emb").unwrap().float_seq(2), &[1.0, 2.0, 3.0]);

        let users = ds.users.as_ref().unwrap();
        assert_eq!(users.cell_text(0, 0), "20");
        assert_eq!(
            users.column("score").unwrap().float(1),
            0.0,
            "empty float -> 0"
        );
        assert_eq!(ds.items_of_role(Role::Group).len(), 1);
    }

    #[test]
    fn crlf_bom_and_trailing_empty_lines() {
        let dir = scratch("crlf");
        let text = format!("\u{feff}{}\r\n\r\n", INTER.trim_end().replace('\n', "\r\n"));
        write(&dir, "d.inter", &text);
        let ds = load_atomic(&dir, "d", &AtomicOptions::default()).unwrap();
        assert_eq!(ds.n_inter(), 3);
        assert_eq!(ds.user_ids, vec!["u1", "u2"]);
        assert_eq!(
            ds.timestamp_col().as_deref(),
            Some(&[100.0, 50.0, 200.0][..])
        );
    }

    #[test]
    fn missing_inter_file_is_io_naming_the_path() {
        let dir = scratch("missing");
        let err = load_atomic(&dir, "nope", &AtomicOptions::default()).unwrap_err();
        match &err {
            DataError::Io { file, .. } => assert!(file.ends_with("nope.inter"), "{file}"),
            other => panic!("expected Io, got {other:?}"),
        }
        assert!(err.to_string().contains("nope.inter"));
    }

    #[test]
    fn header_without_type_is_parse_error_on_line_1() {
        let dir = scratch("hdr");
        write(&dir, "d.inter", "user_id:token\titem_id\n1\t2\n");
        let err = load_atomic(&dir, "d", &AtomicOptions::default()).unwrap_err();
        match err {
            DataError::Parse { line, column, .. } => {
                assert_eq!(line, 1);
                assert_eq!(column, "item_id");
            }
            other => panic!("expected Parse, got {other:?}"),
        }
    }

    #[test]
    fn header_with_unknown_type_is_parse_error_on_line_1() {
        let dir = scratch("hdr2");
        write(
            &dir,
            "d.inter",
            "user_id:token\titem_id:token\trating:int\n1\t2\t3\n",
        );
        let err = load_atomic(&dir, "d", &AtomicOptions::default()).unwrap_err();
        let msg = err.to_string();
        match err {
            DataError::Parse { line, column, .. } => {
                assert_eq!(line, 1);
                assert_eq!(column, "rating:int");
                assert!(msg.contains("unknown type 'int'"), "{msg}");
            }
            other => panic!("expected Parse, got {other:?}"),
        }
    }

    #[test]
    fn wrong_cell_count_names_file_line_and_column() {
        let dir = scratch("cells");
        write(
            &dir,
            "d.inter",
            "user_id:token\titem_id:token\trating:float\n1\t2\t3\n\n4\t5\n",
        );
        let err = load_atomic(&dir, "d", &AtomicOptions::default()).unwrap_err();
        let msg = err.to_string();
        match err {
            DataError::Parse {
                file, line, column, ..
            } => {
                assert!(file.ends_with("d.inter"));
                assert_eq!(line, 4, "blank line 3 still counts");
                assert_eq!(column, "rating");
            }
            other => panic!("expected Parse, got {other:?}"),
        }
        assert!(msg.contains("expected 3"), "{msg}");

        write(&dir, "d.inter", "user_id:token\titem_id:token\n1\t2\t3\n");
        let err = load_atomic(&dir, "d", &AtomicOptions::default()).unwrap_err();
        assert!(matches!(err, DataError::Parse { line: 2, .. }), "{err}");
    }

    #[test]
    fn non_numeric_float_names_line_column_and_value() {
        let dir = scratch("float");
        write(
            &dir,
            "d.inter",
            "user_id:token\titem_id:token\trating:float\n1\t2\t3\n1\t3\tfive\n",
        );
        let err = load_atomic(&dir, "d", &AtomicOptions::default()).unwrap_err();
        let msg = err.to_string();
        match err {
            DataError::Parse {
                file, line, column, ..
            } => {
                assert!(file.ends_with("d.inter"));
                assert_eq!(line, 3);
                assert_eq!(column, "rating");
            }
            other => panic!("expected Parse, got {other:?}"),
        }
        assert!(msg.contains("'five'"), "{msg}");

        write(
            &dir,
            "d.inter",
            "user_id:token\titem_id:token\temb:float_seq\n1\t2\t1 NaN\n",
        );
        let err = load_atomic(&dir, "d", &AtomicOptions::default()).unwrap_err();
        assert!(err.to_string().contains("'NaN'"), "{err}");
    }

    #[test]
    fn missing_id_column_is_schema_error_listing_columns() {
        let dir = scratch("schema");
        write(&dir, "d.inter", "uid:token\titem_id:token\n1\t2\n");
        let err = load_atomic(&dir, "d", &AtomicOptions::default()).unwrap_err();
        match &err {
            DataError::Schema { file, msg } => {
                assert!(file.ends_with("d.inter"));
                assert!(msg.contains("'user_id'"), "{msg}");
                assert!(msg.contains("uid, item_id"), "{msg}");
            }
            other => panic!("expected Schema, got {other:?}"),
        }
        // Also in a feature file.
        write(&dir, "d.inter", "user_id:token\titem_id:token\n1\t2\n");
        write(&dir, "d.item", "id:token\tx:float\n2\t1\n");
        let err = load_atomic(&dir, "d", &AtomicOptions::default()).unwrap_err();
        match &err {
            DataError::Schema { file, msg } => {
                assert!(file.ends_with("d.item"));
                assert!(msg.contains("id, x"), "{msg}");
            }
            other => panic!("expected Schema, got {other:?}"),
        }
    }

    #[test]
    fn other_bad_inputs_are_errors_not_panics() {
        let dir = scratch("bad");
        let cases: &[&str] = &[
            "",
            "\n",
            "user_id:token\tuser_id:token\n",
            ":token\titem_id:token\n",
            "user_id:token\titem_id:token\n\t2\n",
            "user_id:token\titem_id:token\n[PAD]\t2\n",
            "user_id:float\titem_id:token\n1\t2\n",
            "user_id:token\titem_id:token\trating:token\n1\t2\t3\n",
            "user_id:token\titem_id:token\trating:float\n1\t2\t\n",
        ];
        for text in cases {
            write(&dir, "d.inter", text);
            assert!(
                load_atomic(&dir, "d", &AtomicOptions::default()).is_err(),
                "accepted {text:?}"
            );
        }
        fs::write(
            dir.join("d.inter"),
            b"user_id:token\titem_id:token\n\xff\t2\n",
        )
        .unwrap();
        let err = load_atomic(&dir, "d", &AtomicOptions::default()).unwrap_err();
        assert!(matches!(err, DataError::Parse { line: 2, .. }), "{err}");
        // duplicate feature line
        write(&dir, "d.inter", "user_id:token\titem_id:token\n1\t2\n");
        write(&dir, "d.user", "user_id:token\ta:token\n1\tx\n1\ty\n");
        let err = load_atomic(&dir, "d", &AtomicOptions::default()).unwrap_err();
        assert!(matches!(err, DataError::Parse { line: 3, .. }), "{err}");
        // roles cannot claim the id roles
        fs::remove_file(dir.join("d.user")).unwrap();
        let opts = AtomicOptions::default().with_role("a", Role::User);
        assert!(matches!(
            load_atomic(&dir, "d", &opts),
            Err(DataError::Config(_))
        ));
    }

    #[test]
    fn mutated_files_never_panic() {
        use rand::{Rng, SeedableRng};
        let dir = scratch("fuzz");
        let item = "item_id:token\tgenre:token_seq\temb:float_seq\ni1\ta b\t1 2\ni2\t\t\n";
        let alphabet = b"\t\n\r :0123456789.-abe[PAD]_";
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let (mut ok, mut failed) = (0, 0);
        for _ in 0..400 {
            for (file, base) in [("d.inter", INTER), ("d.item", item)] {
                let mut bytes = base.as_bytes().to_vec();
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..bytes.len());
                    match rng.random_range(0..3) {
                        0 => {
                            bytes.remove(at);
                        }
                        1 => bytes.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
                        _ => bytes[at] = alphabet[rng.random_range(0..alphabet.len())],
                    }
                }
                fs::write(dir.join(file), &bytes).unwrap();
            }
            match load_atomic(&dir, "d", &AtomicOptions::default()) {
                Ok(ds) => {
                    ds.validate().unwrap();
                    ok += 1;
                }
                Err(_) => failed += 1,
            }
        }
        assert!(ok > 0 && failed > 0, "ok {ok}, failed {failed}");
    }

    #[test]
    fn header_only_inter_is_an_empty_data_set() {
        let dir = scratch("empty");
        write(&dir, "d.inter", "user_id:token\titem_id:token\n");
        let ds = load_atomic(&dir, "d", &AtomicOptions::default()).unwrap();
        assert_eq!((ds.n_users, ds.n_items, ds.n_inter()), (0, 0, 0));
    }

    #[test]
    fn drop_fields_and_custom_names() {
        let dir = scratch("drop");
        write(
            &dir,
            "d.inter",
            "uid:token\tiid:token\tlabel:float\tjunk:token\n1\t2\t1\tx\n",
        );
        let opts = AtomicOptions {
            user_field: "uid".into(),
            item_field: "iid".into(),
            rating_field: None,
            time_field: None,
            roles: vec![("label".into(), Role::Label)],
            drop_fields: vec!["junk".into()],
        };
        let ds = load_atomic(&dir, "d", &opts).unwrap();
        assert!(ds.inter.field("junk").is_none());
        assert_eq!(ds.inter.field("label").unwrap().1.role, Role::Label);
        assert_eq!(ds.rating_col(), None);
        assert_eq!(ds.user_ids, vec!["1"]);
    }

    #[test]
    fn write_then_load_round_trips() {
        let dir = scratch("rt");
        write(&dir, "d.inter", INTER);
        write(
            &dir,
            "d.item",
            "item_id:token\tgenre:token_seq\temb:float_seq\ni3\tc\t1 2.5 3\n",
        );
        let opts = AtomicOptions::default().with_role("genre", Role::Group);
        let ds = load_atomic(&dir, "d", &opts).unwrap();
        let out = dir.join("out");
        write_atomic(&ds, &out, "d").unwrap();
        let back = load_atomic(&out, "d", &opts).unwrap();
        assert_eq!(back.inter, ds.inter);
        assert_eq!(back.user_ids, ds.user_ids);
        let (a, b) = (ds.items.unwrap(), back.items.unwrap());
        for f in 0..a.n_fields() {
            for r in 0..a.n_rows() {
                assert_eq!(a.cell_text(f, r), b.cell_text(f, r));
            }
        }
    }

    #[test]
    fn write_rejects_unrepresentable_values() {
        let dir = scratch("wbad");
        write(&dir, "d.inter", INTER);
        let mut ds = load_atomic(&dir, "d", &AtomicOptions::default()).unwrap();
        ds.user_ids[0] = "a\tb".into();
        assert!(write_atomic(&ds, &dir.join("o"), "d").is_err());
        ds.user_ids[0] = "u1".into();
        if let Column::Float(v) = &mut ds.inter.columns[2] {
            v[0] = f32::NAN;
        }
        assert!(write_atomic(&ds, &dir.join("o"), "d").is_err());
        assert!(
            !dir.join("o").join("d.inter").exists(),
            "nothing written on error"
        );
    }
}
