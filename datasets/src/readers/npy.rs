//! Dense item features from NumPy `.npy` / `.npz` files (MMGCN-style
//! visual, acoustic and textual features), attached to a [`Dataset`] as
//! [`FieldKind::FloatSeq`] item fields with [`Role::Modality`].
//!
//! Supported: 2-D arrays of little-endian `float32` (`<f4`) or `float64`
//! (`<f8`, converted to `f32`) in C order, `.npy` format versions 1-3; an
//! `.npz` is a zip of `.npy` members, stored or deflated (as
//! `numpy.savez` / `numpy.savez_compressed` write them). The `.npy` header
//! (a Python dict literal) is parsed here: the `npyz` crate would bring a
//! Python-literal parser and a second, older `zip` for a 40-line job.
//!
//! Row `r` of a matrix describes item `r`: by default the dense item id
//! ([`ItemRows::Dense`]); with [`ItemRows::RawId`] the item whose raw id is
//! the integer `r` (MMGCN's files are indexed by raw item id). The row
//! count must equal `n_items`. Every check is made before the data set is
//! touched: on error nothing is attached.

use std::io::Read;
use std::path::Path;

use crate::error::{DataError, Result};
use crate::table::{Column, Dataset, FieldKind, FieldMeta, Role, Table};

/// A dense row-major `f32` matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseMatrix {
    /// The number of rows.
    pub rows: usize,
    /// The number of columns.
    pub cols: usize,
    /// `rows * cols` values, row-major.
    pub data: Vec<f32>,
}

impl DenseMatrix {
    /// Row `r`.
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }
}

/// How matrix rows map to items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ItemRows {
    /// Row `i` is dense item `i`.
    #[default]
    Dense,
    /// Row `r` is the item whose raw id is the decimal integer `r`.
    RawId,
}

/// How to attach `.npy` / `.npz` features.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NpyOptions {
    /// How rows map to items.
    pub rows: ItemRows,
    /// For a `.npy` file, the field name; default: the file stem (e.g.
    /// `v_feat` for `v_feat.npy`). Ignored for `.npz`.
    pub field: Option<String>,
    /// For a `.npz` file, the arrays to attach (names without `.npy`);
    /// empty = all, in archive order. Each becomes a field of that name.
    pub arrays: Vec<String>,
}

fn schema(file: &str, msg: impl Into<String>) -> DataError {
    DataError::Schema {
        file: file.to_string(),
        msg: msg.into(),
    }
}

/// The value of `key` in a `.npy` header dict (the text after `'key':`).
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[at + key.len() + 2..];
    Some(rest.trim_start().strip_prefix(':')?.trim_start())
}

/// Parses `.npy` bytes; `file` names the source in errors.
pub fn parse_npy(bytes: &[u8], file: &str) -> Result<DenseMatrix> {
    let Some(rest) = bytes.strip_prefix(b"\x93NUMPY") else {
        return Err(schema(
            file,
            "not a .npy file: bad magic (expected \\x93NUMPY)",
        ));
    };
    let (major, header_start, len) = match rest {
        [1, _, a, b, ..] => (1, 10, u16::from_le_bytes([*a, *b]) as usize),
        [2 | 3, _, a, b, c, d, ..] => (rest[0], 12, u32::from_le_bytes([*a, *b, *c, *d]) as usize),
        [1..=3, ..] | [] => return Err(schema(file, "truncated .npy header")),
        [v, ..] => return Err(schema(file, format!("unsupported .npy format version {v}"))),
    };
    let header = bytes
        .get(header_start..header_start + len)
        .ok_or_else(|| schema(file, "truncated .npy header"))?;
    let header = std::str::from_utf8(header)
        .map_err(|_| schema(file, format!("the .npy v{major} header is not text")))?;

    let descr = header_value(header, "descr")
        .and_then(|v| {
            let q = v.chars().next().filter(|c| *c == '\'' || *c == '"')?;
            v[1..].split(q).next()
        })
        .ok_or_else(|| schema(file, format!("no 'descr' in the .npy header {header:?}")))?;
    let width = match descr {
        "<f4" => 4,
        "<f8" => 8,
        other => {
            return Err(schema(
                file,
                format!(
                    "unsupported dtype '{other}': expected little-endian float32 ('<f4') \
                     or float64 ('<f8')"
                ),
            ))
        }
    };
    match header_value(header, "fortran_order") {
        Some(v) if v.starts_with("False") => {}
        Some(v) if v.starts_with("True") => {
            return Err(schema(
                file,
                "Fortran-order arrays are not supported (save a C-order array)",
            ))
        }
        _ => return Err(schema(file, "no valid 'fortran_order' in the .npy header")),
    }
    let shape_text = header_value(header, "shape")
        .and_then(|v| v.strip_prefix('('))
        .and_then(|v| v.split(')').next())
        .ok_or_else(|| schema(file, format!("no 'shape' in the .npy header {header:?}")))?;
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| schema(file, format!("bad shape ({shape_text}) in the .npy header")))?;
    let [rows, cols] = shape[..] else {
        return Err(schema(
            file,
            format!(
                "expected a 2-D array (items x dims), found shape ({shape_text}) with {} dimensions",
                shape.len()
            ),
        ));
    };
    let too_large = || schema(file, format!("array too large: shape ({shape_text})"));
    let n = rows.checked_mul(cols).ok_or_else(too_large)?;
    let needed = n.checked_mul(width).ok_or_else(too_large)?;
    let body = &bytes[header_start + len..];
    if body.len() != needed {
        return Err(schema(
            file,
            format!(
                "data holds {} bytes, shape ({rows}, {cols}) of {descr} needs {needed}",
                body.len(),
            ),
        ));
    }
    let data: Vec<f32> = if width == 4 {
        body.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        body.chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect()
    };
    if let Some(bad) = data.iter().position(|x| !x.is_finite()) {
        return Err(schema(
            file,
            format!(
                "non-finite value {} at row {}, column {} (after conversion to f32)",
                data[bad],
                bad / cols.max(1),
                bad % cols.max(1)
            ),
        ));
    }
    Ok(DenseMatrix { rows, cols, data })
}

fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| DataError::Io {
        file: path.display().to_string(),
        source,
    })
}

/// Reads a `.npy` file.
pub fn read_npy(path: &Path) -> Result<DenseMatrix> {
    parse_npy(&read_bytes(path)?, &path.display().to_string())
}

/// Reads every array of a `.npz` file, in archive order, named without the
/// `.npy` suffix.
pub fn read_npz(path: &Path) -> Result<Vec<(String, DenseMatrix)>> {
    let file = path.display().to_string();
    let bytes = read_bytes(path)?;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| schema(&file, format!("not a .npz (zip) archive: {e}")))?;
    let mut out = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut member = zip
            .by_index(i)
            .map_err(|e| schema(&file, format!("archive member {i}: {e}")))?;
        let name = member
            .name()
            .map_err(|e| schema(&file, format!("archive member {i}: {e}")))?
            .into_owned();
        let mut data = Vec::new();
        member
            .read_to_end(&mut data)
            .map_err(|e| schema(&format!("{file}/{name}"), format!("cannot read: {e}")))?;
        let m = parse_npy(&data, &format!("{file}/{name}"))?;
        out.push((name.strip_suffix(".npy").unwrap_or(&name).to_string(), m));
    }
    Ok(out)
}

/// Reads `path` (`.npy`, or `.npz` by its extension) and attaches its
/// arrays to `ds` as item fields ([`FieldKind::FloatSeq`],
/// [`Role::Modality`], one row of `cols` values per item). Returns the
/// names of the fields added. Fails, attaching nothing, if a row count is
/// not `n_items` (the message names the file and both numbers), a field
/// name is taken, an `.npz` lacks an array named in `opts.arrays`, or a raw
/// item id is not a row index under [`ItemRows::RawId`].
pub fn attach_item_features(
    ds: &mut Dataset,
    path: &Path,
    opts: &NpyOptions,
) -> Result<Vec<String>> {
    let file = path.display().to_string();
    let is_npz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"));
    let arrays: Vec<(String, String, DenseMatrix)> = if is_npz {
        let mut all = read_npz(path)?;
        if !opts.arrays.is_empty() {
            if let Some(missing) = opts
                .arrays
                .iter()
                .find(|a| !all.iter().any(|(n, _)| n == *a))
            {
                let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
                return Err(schema(
                    &file,
                    format!("no array '{missing}' (arrays: {})", names.join(", ")),
                ));
            }
            all.retain(|(n, _)| opts.arrays.contains(n));
        }
        all.into_iter()
            .map(|(n, m)| (n.clone(), format!("{file}/{n}.npy"), m))
            .collect()
    } else {
        let name = opts.field.clone().unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(|| "features".into(), |s| s.to_string_lossy().into_owned())
        });
        vec![(name, file.clone(), read_npy(path)?)]
    };

    // Row of the matrix for each dense item.
    let source: Vec<usize> = match opts.rows {
        ItemRows::Dense => (0..ds.n_items).collect(),
        ItemRows::RawId => ds
            .item_ids
            .iter()
            .map(|raw| {
                raw.parse::<usize>().map_err(|_| {
                    schema(
                        &file,
                        format!("item id '{raw}' is not a row index (ItemRows::RawId)"),
                    )
                })
            })
            .collect::<Result<_>>()?,
    };
    let mut fields = Vec::new();
    for (name, member, m) in &arrays {
        if m.rows != ds.n_items {
            return Err(schema(
                member,
                format!(
                    "array '{name}' has {} rows but the data set has {} items",
                    m.rows, ds.n_items
                ),
            ));
        }
        if let Some((i, &r)) = source.iter().enumerate().find(|(_, &r)| r >= m.rows) {
            return Err(schema(
                member,
                format!(
                    "item '{}' needs row {r}, the array has {} rows",
                    ds.item_ids[i], m.rows
                ),
            ));
        }
        let taken = ds.items.as_ref().is_some_and(|t| t.field(name).is_some())
            || fields
                .iter()
                .any(|(f, _): &(FieldMeta, Column)| f.name == *name);
        if taken {
            return Err(schema(
                member,
                format!("item field '{name}' already exists"),
            ));
        }
        let mut values = Vec::with_capacity(ds.n_items * m.cols);
        let mut offsets = Vec::with_capacity(ds.n_items + 1);
        offsets.push(0u32);
        for &r in &source {
            values.extend_from_slice(m.row(r));
            let end = u32::try_from(values.len())
                .map_err(|_| schema(member, "too many values for 32-bit offsets"))?;
            offsets.push(end);
        }
        let mut meta = FieldMeta::new(name.as_str(), FieldKind::FloatSeq, Role::Modality);
        meta.max_len = m.cols;
        fields.push((meta, Column::FloatSeq { offsets, values }));
    }
    let names: Vec<String> = fields.iter().map(|(f, _)| f.name.clone()).collect();
    if let Some(items) = &ds.items {
        if !items.columns.is_empty() && items.n_rows() != ds.n_items {
            return Err(schema(
                &file,
                format!(
                    "the item table has {} rows, the data set {} items",
                    items.n_rows(),
                    ds.n_items
                ),
            ));
        }
    }
    if fields.is_empty() {
        return Ok(names);
    }
    let items = ds.items.get_or_insert_with(Table::new);
    for (meta, col) in fields {
        items.push(meta, col)?;
    }
    Ok(names)
}
