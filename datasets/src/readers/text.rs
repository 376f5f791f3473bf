//! Shared pieces of the text readers: a whole-file CSV reader (the `csv`
//! crate, RFC 4180 quoting) whose errors name file, 1-based line and
//! column, and column builders that intern tokens the way
//! [`crate::atomic`] does (id 0 = [`crate::table::PAD`]).

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use crate::atomic::{intern, parse_float};
use crate::error::{DataError, Result};
use crate::table::{Column, Dataset, FieldKind, FieldMeta, Role, Table};

/// A parse error at `file:line`, column `column`.
pub(crate) fn parse_err(
    file: &str,
    line: usize,
    column: &str,
    msg: impl Into<String>,
) -> DataError {
    DataError::Parse {
        file: file.to_string(),
        line,
        column: column.to_string(),
        msg: msg.into(),
    }
}

/// Reads a whole file as UTF-8 text (a byte order mark is dropped).
pub(crate) fn read_text(path: &Path) -> Result<String> {
    let file = path.display().to_string();
    let bytes = fs::read(path).map_err(|source| DataError::Io {
        file: file.clone(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
        parse_err(
            &file,
            line,
            "",
            format!("invalid UTF-8: {}", e.utf8_error()),
        )
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(t) => t.to_string(),
        None => text,
    })
}

/// One comma-separated file with a header line, read completely.
pub(crate) struct Csv {
    /// The path, for messages.
    pub file: String,
    /// The header cells.
    pub header: Vec<String>,
    /// The data records with their 1-based line numbers.
    pub rows: Vec<(usize, ::csv::StringRecord)>,
}

fn delimiter_hint(cell: &str) -> &'static str {
    if cell.contains('\t') {
        " (the line looks tab-separated; expected commas)"
    } else if cell.contains(';') {
        " (the line looks semicolon-separated; expected commas)"
    } else {
        ""
    }
}

impl Csv {
    /// Reads `path`; every record must have as many cells as the header.
    pub fn read(path: &Path) -> Result<Csv> {
        let file = path.display().to_string();
        let text = read_text(path)?;
        let mut rdr = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut records = rdr.records();
        let header: Vec<String> = match records.next() {
            Some(Ok(h)) => h.iter().map(str::to_string).collect(),
            Some(Err(e)) => return Err(csv_err(&file, &[], e)),
            None => {
                return Err(DataError::Schema {
                    file,
                    msg: "empty file: no header line".into(),
                })
            }
        };
        let mut rows = Vec::new();
        for rec in records {
            let rec = rec.map_err(|e| csv_err(&file, &header, e))?;
            let line = rec.position().map_or(0, |p| p.line() as usize);
            if rec.len() != header.len() {
                let n = header.len();
                let at = rec.len().min(n.saturating_sub(1));
                let hint = delimiter_hint(rec.get(0).unwrap_or(""));
                return Err(parse_err(
                    &file,
                    line,
                    header.get(at).map_or("", String::as_str),
                    format!(
                        "expected {n} comma-separated cells, found {}{hint}",
                        rec.len()
                    ),
                ));
            }
            rows.push((line, rec));
        }
        Ok(Csv { file, header, rows })
    }

    /// The index of column `name`; a missing column is an error on line 1.
    pub fn col(&self, name: &str) -> Result<usize> {
        self.header.iter().position(|h| h == name).ok_or_else(|| {
            let hint = if self.header.len() == 1 {
                delimiter_hint(&self.header[0])
            } else {
                ""
            };
            parse_err(
                &self.file,
                1,
                name,
                format!("missing column (header: {}){hint}", self.header.join(",")),
            )
        })
    }

    /// An error at `line`, column index `col`.
    pub fn err(&self, line: usize, col: usize, msg: impl Into<String>) -> DataError {
        parse_err(&self.file, line, &self.header[col], msg)
    }

    /// Cell `col` of `rec` parsed as an integer.
    pub fn int(&self, line: usize, rec: &::csv::StringRecord, col: usize) -> Result<i64> {
        let cell = rec.get(col).unwrap_or("");
        cell.trim()
            .parse::<i64>()
            .map_err(|_| self.err(line, col, format!("'{cell}' is not an integer")))
    }

    /// Cell `col` of `rec` parsed as a finite `f32`.
    pub fn float(&self, line: usize, rec: &::csv::StringRecord, col: usize) -> Result<f32> {
        parse_float(rec.get(col).unwrap_or("")).map_err(|m| self.err(line, col, m))
    }

    /// Cell `col` of `rec`, which must not be empty.
    pub fn token<'a>(
        &self,
        line: usize,
        rec: &'a ::csv::StringRecord,
        col: usize,
    ) -> Result<&'a str> {
        let cell = rec.get(col).unwrap_or("");
        if cell.trim().is_empty() {
            return Err(self.err(line, col, "empty value"));
        }
        Ok(cell)
    }
}

fn csv_err(file: &str, header: &[String], e: ::csv::Error) -> DataError {
    let (line, column) = match e.position() {
        Some(p) => (p.line() as usize, String::new()),
        None => (0, String::new()),
    };
    let column = match e.kind() {
        ::csv::ErrorKind::Utf8 { err, .. } => header.get(err.field()).cloned().unwrap_or(column),
        _ => column,
    };
    parse_err(file, line, &column, e.to_string())
}

/// Dense ids `0..n` by first appearance, with the raw strings.
#[derive(Default)]
pub(crate) struct Dense {
    index: HashMap<String, u32>,
    /// Raw string of each dense id.
    pub raw: Vec<String>,
}

impl Dense {
    /// The dense id of `s`, adding it if new.
    pub fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.raw.len() as u32;
        self.raw.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

/// A token column under construction (id 0 = padding / empty cell).
pub(crate) struct TokenCol {
    meta: FieldMeta,
    index: HashMap<String, u32>,
    ids: Vec<u32>,
}

impl TokenCol {
    pub fn new(name: &str, role: Role) -> TokenCol {
        TokenCol {
            meta: FieldMeta::new(name, FieldKind::Token, role),
            index: HashMap::new(),
            ids: Vec::new(),
        }
    }

    pub fn push(&mut self, tok: &str) {
        let id = intern(&mut self.index, &mut self.meta.vocab, tok);
        self.ids.push(id);
    }

    pub fn finish(self) -> (FieldMeta, Column) {
        (self.meta, Column::Token(self.ids))
    }
}

/// A token-list column under construction.
pub(crate) struct SeqCol {
    meta: FieldMeta,
    index: HashMap<String, u32>,
    offsets: Vec<u32>,
    values: Vec<u32>,
}

impl SeqCol {
    pub fn new(name: &str, role: Role) -> SeqCol {
        SeqCol {
            meta: FieldMeta::new(name, FieldKind::TokenSeq, role),
            index: HashMap::new(),
            offsets: vec![0],
            values: Vec::new(),
        }
    }

    pub fn push<'a>(&mut self, toks: impl IntoIterator<Item = &'a str>) {
        let start = self.values.len();
        for t in toks {
            let id = intern(&mut self.index, &mut self.meta.vocab, t);
            if id != 0 {
                self.values.push(id);
            }
        }
        self.meta.max_len = self.meta.max_len.max(self.values.len() - start);
        self.offsets.push(self.values.len() as u32);
    }

    pub fn finish(self) -> (FieldMeta, Column) {
        (
            self.meta,
            Column::TokenSeq {
                offsets: self.offsets,
                values: self.values,
            },
        )
    }
}

/// The user or item id column of `inter`: dense ids, raw-id vocabulary.
pub(crate) fn id_field(
    name: &str,
    role: Role,
    ids: Vec<u32>,
    raw: &[String],
) -> (FieldMeta, Column) {
    let mut meta = FieldMeta::new(name, FieldKind::Token, role);
    meta.vocab = raw.to_vec();
    (meta, Column::Token(ids))
}

/// A float field.
pub(crate) fn float_field(name: &str, role: Role, v: Vec<f32>) -> (FieldMeta, Column) {
    (
        FieldMeta::new(name, FieldKind::Float, role),
        Column::Float(v),
    )
}

/// A `(meta, column)` pair for an exact timestamp field (unix seconds).
pub(crate) fn time_field(name: &str, v: Vec<f64>) -> (FieldMeta, Column) {
    (
        FieldMeta::new(name, FieldKind::Float, Role::Timestamp),
        Column::Float64(v),
    )
}

/// Pushes `(meta, column)` pairs into a new table.
pub(crate) fn table(cols: Vec<(FieldMeta, Column)>) -> Result<Table> {
    let mut t = Table::new();
    for (m, c) in cols {
        t.push(m, c)?;
    }
    Ok(t)
}

/// Validates a freshly built data set (an error here is a reader bug,
/// reported rather than panicking).
pub(crate) fn checked(ds: Dataset) -> Result<Dataset> {
    ds.validate()?;
    Ok(ds)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`); `None` for an invalid month/day.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_len = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if d > month_len[m as usize - 1] {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2019, 11, 24), Some(18_224));
        assert_eq!(days_from_civil(2000, 2, 29), Some(11_016));
        assert_eq!(days_from_civil(2019, 2, 29), None);
        assert_eq!(days_from_civil(2019, 13, 1), None);
    }
}
