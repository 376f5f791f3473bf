//! Shared plumbing of the delimited-text readers: streaming line reading
//! (UTF-8 byte order mark, `\r\n`, blank lines, an optional Latin-1
//! fallback), splitting by a delimiter (with RFC 4180 quoting for CSV),
//! header lookup, typed cells whose errors name the file, the 1-based line
//! and the column, and the builders the readers share: dense ids by first
//! appearance ([`IdIndex`]) and feature tables aligned with them
//! ([`FeatureTable`]).
//!
//! Readers parse everything into these builders and make the [`Dataset`]
//! only at the end, so an error never leaves a half-loaded data set.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::atomic::{intern, parse_float, parse_float64};
use crate::error::{DataError, Result};
use crate::table::{Column, Dataset, FieldKind, FieldMeta, Role, Table};

/// How the cells of a line are separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delim {
    /// One character, no quoting (`\t` for `u.data`, `|` for `u.item`).
    Char(char),
    /// A string, no quoting (`::` for MovieLens-1M).
    Str(&'static str),
    /// Comma-separated values with RFC 4180 double-quote quoting (a quoted
    /// cell may hold commas and `""` for a quote; it may not span lines).
    Csv,
}

impl Delim {
    fn describe(self) -> String {
        match self {
            Delim::Char('\t') => "tab".into(),
            Delim::Char(c) => format!("'{c}'"),
            Delim::Str(s) => format!("'{s}'"),
            Delim::Csv => "','".into(),
        }
    }
}

/// Where the column names of a file come from.
#[derive(Debug, Clone, Copy)]
pub enum Header<'a> {
    /// The file has no header line; these are its columns, in order.
    Fixed(&'a [&'a str]),
    /// Line 1 is a header naming the columns.
    FirstLine,
}

/// A delimited text file, read line by line.
pub struct DelimitedReader {
    file: String,
    reader: BufReader<File>,
    delim: Delim,
    latin1: bool,
    names: Vec<String>,
    line_no: usize,
}

/// An I/O error on `path`.
pub(crate) fn io_err(path: &str, source: std::io::Error) -> DataError {
    DataError::Io {
        file: path.to_string(),
        source,
    }
}

impl DelimitedReader {
    /// Opens `path`; with [`Header::FirstLine`] reads the header. Fails
    /// with [`DataError::Io`] if the file cannot be opened or read.
    pub fn open(path: &Path, delim: Delim, header: Header<'_>) -> Result<DelimitedReader> {
        let file = path.display().to_string();
        let f = File::open(path).map_err(|e| io_err(&file, e))?;
        let mut r = DelimitedReader {
            file,
            reader: BufReader::with_capacity(1 << 16, f),
            delim,
            latin1: false,
            names: Vec::new(),
            line_no: 0,
        };
        match header {
            Header::Fixed(names) => r.names = names.iter().map(|s| s.to_string()).collect(),
            Header::FirstLine => {
                let mut buf = Vec::new();
                let mut scratch = String::new();
                let mut spans = Vec::new();
                let text = match r.next_line(&mut buf)? {
                    Some(t) => t,
                    None => {
                        return Err(DataError::Schema {
                            file: r.file,
                            msg: "empty file: no header line".into(),
                        })
                    }
                };
                let text = text.into_owned();
                let src = split(&text, delim, &mut scratch, &mut spans).map_err(|c| {
                    r.parse_err(1, &format!("cell {}", c + 1), "unterminated quote")
                })?;
                r.names = spans
                    .iter()
                    .map(|&(a, b)| src[a..b].trim().to_string())
                    .collect();
            }
        }
        Ok(r)
    }

    /// Decodes lines that are not valid UTF-8 as Latin-1 (ISO-8859-1)
    /// instead of failing, as the MovieLens files need (builder style).
    pub fn latin1_fallback(mut self) -> DelimitedReader {
        self.latin1 = true;
        self
    }

    /// The file's path, as written in messages.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The column names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    fn parse_err(&self, line: usize, column: &str, msg: impl Into<String>) -> DataError {
        DataError::Parse {
            file: self.file.clone(),
            line,
            column: column.to_string(),
            msg: msg.into(),
        }
    }

    /// The index of column `name`, or a [`DataError::Parse`] on line 1
    /// naming the missing column (and the columns found).
    pub fn column(&self, name: &str) -> Result<usize> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return Ok(i);
        }
        let mut msg = format!("missing column (the header has: {})", self.names.join(", "));
        if self.names.len() == 1 {
            msg.push_str(&format!(
                "; wrong delimiter? expected {}",
                self.delim.describe()
            ));
        }
        Err(self.parse_err(1, name, msg))
    }

    /// The next line (without its line break) or `None` at the end of the
    /// file; counts lines, strips a byte order mark from line 1.
    fn next_line<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Option<Cow<'b, str>>> {
        buf.clear();
        let n = self
            .reader
            .read_until(b'\n', buf)
            .map_err(|e| io_err(&self.file, e))?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        let mut bytes: &[u8] = buf;
        bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if self.line_no == 1 {
            bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Some(Cow::Borrowed(s))),
            Err(_) if self.latin1 => {
                Ok(Some(Cow::Owned(bytes.iter().map(|&b| b as char).collect())))
            }
            Err(e) => {
                let column = self.names.first().cloned().unwrap_or_default();
                Err(self.parse_err(self.line_no, &column, format!("invalid UTF-8: {e}")))
            }
        }
    }

    /// Calls `f` on every non-blank data line, in order. A line with a
    /// number of cells other than the number of columns is a
    /// [`DataError::Parse`] naming the first missing (or the last) column.
    pub fn for_each(mut self, mut f: impl FnMut(&Record<'_>) -> Result<()>) -> Result<()> {
        let mut buf = Vec::new();
        let mut scratch = String::new();
        let mut spans = Vec::new();
        let n_cols = self.names.len();
        loop {
            let Some(text) = self.next_line(&mut buf)? else {
                return Ok(());
            };
            let text: &str = &text;
            if text.trim().is_empty() {
                continue;
            }
            let line = self.line_no;
            let src = split(text, self.delim, &mut scratch, &mut spans).map_err(|c| {
                let column = self.names.get(c).map_or("", String::as_str);
                self.parse_err(line, column, "unterminated or misplaced quote")
            })?;
            if spans.len() != n_cols {
                let found = spans.len();
                let (column, detail) = if found < n_cols {
                    (&self.names[found], "is missing")
                } else {
                    (&self.names[n_cols - 1], "is followed by extra cells")
                };
                let mut msg = format!(
                    "expected {n_cols} {}-separated cells, found {found}: column {detail}",
                    self.delim.describe()
                );
                if found == 1 && n_cols > 1 {
                    msg.push_str(" (wrong delimiter?)");
                }
                return Err(self.parse_err(line, column, msg));
            }
            f(&Record {
                file: &self.file,
                line,
                names: &self.names,
                src,
                spans: &spans,
            })?;
        }
    }
}

/// Splits `line` into cell spans of the returned source text (`line`
/// itself, or `scratch` holding unquoted CSV cells). `Err(c)`: bad quoting
/// in cell `c`.
fn split<'s>(
    line: &'s str,
    delim: Delim,
    scratch: &'s mut String,
    spans: &mut Vec<(usize, usize)>,
) -> std::result::Result<&'s str, usize> {
    spans.clear();
    let mut simple = |d: &str| {
        let mut start = 0;
        for piece in line.split(d) {
            spans.push((start, start + piece.len()));
            start += piece.len() + d.len();
        }
    };
    match delim {
        Delim::Char(c) => {
            let mut b = [0u8; 4];
            simple(c.encode_utf8(&mut b));
            Ok(line)
        }
        Delim::Str(s) => {
            simple(s);
            Ok(line)
        }
        Delim::Csv if !line.contains('"') => {
            simple(",");
            Ok(line)
        }
        Delim::Csv => {
            scratch.clear();
            let mut chars = line.chars().peekable();
            loop {
                let cell = spans.len();
                let start = scratch.len();
                if chars.peek() == Some(&'"') {
                    chars.next();
                    loop {
                        match chars.next() {
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                scratch.push('"');
                            }
                            Some('"') => break,
                            Some(ch) => scratch.push(ch),
                            None => return Err(cell),
                        }
                    }
                    match chars.next() {
                        None => {
                            spans.push((start, scratch.len()));
                            return Ok(scratch);
                        }
                        Some(',') => spans.push((start, scratch.len())),
                        Some(_) => return Err(cell),
                    }
                } else {
                    loop {
                        match chars.next() {
                            None => {
                                spans.push((start, scratch.len()));
                                return Ok(scratch);
                            }
                            Some(',') => break,
                            Some('"') => return Err(cell),
                            Some(ch) => scratch.push(ch),
                        }
                    }
                    spans.push((start, scratch.len()));
                }
            }
        }
    }
}

/// One data line of a [`DelimitedReader`], split into cells.
pub struct Record<'a> {
    file: &'a str,
    line: usize,
    names: &'a [String],
    src: &'a str,
    spans: &'a [(usize, usize)],
}

impl Record<'_> {
    /// The file's path.
    pub fn file(&self) -> &str {
        self.file
    }

    /// The 1-based line number.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The text of cell `c`.
    ///
    /// # Panics
    /// If `c` is not a column index of the reader.
    pub fn get(&self, c: usize) -> &str {
        let (a, b) = self.spans[c];
        &self.src[a..b]
    }

    /// A [`DataError::Parse`] at this line, in column `c`.
    pub fn error(&self, c: usize, msg: impl Into<String>) -> DataError {
        DataError::Parse {
            file: self.file.to_string(),
            line: self.line,
            column: self.names.get(c).cloned().unwrap_or_default(),
            msg: msg.into(),
        }
    }

    /// A [`DataError::Parse`] at this line, in the named column (for
    /// cells with inner structure, such as a JSON line's keys).
    pub fn error_in(&self, column: &str, msg: impl Into<String>) -> DataError {
        DataError::Parse {
            file: self.file.to_string(),
            line: self.line,
            column: column.to_string(),
            msg: msg.into(),
        }
    }

    /// Cell `c` as an id: it may not be empty.
    pub fn id(&self, c: usize) -> Result<&str> {
        let s = self.get(c).trim();
        if s.is_empty() {
            Err(self.error(c, "empty id"))
        } else {
            Ok(s)
        }
    }

    /// Cell `c` as a finite `f32`.
    pub fn f32(&self, c: usize) -> Result<f32> {
        parse_float(self.get(c)).map_err(|m| self.error(c, m))
    }

    /// Cell `c` as a finite `f64`.
    pub fn f64(&self, c: usize) -> Result<f64> {
        parse_float64(self.get(c)).map_err(|m| self.error(c, m))
    }

    /// Cell `c` as a finite `f64`, or `None` if it is empty (or `nan`,
    /// pandas' missing value).
    pub fn opt_f64(&self, c: usize) -> Result<Option<f64>> {
        let s = self.get(c).trim();
        if s.is_empty() || s.eq_ignore_ascii_case("nan") {
            Ok(None)
        } else {
            self.f64(c).map(Some)
        }
    }
}

/// Dense ids `0..n` by first appearance, remembering where each id was
/// first seen (file index into the reader's list of sources, and line).
#[derive(Debug, Default)]
pub(crate) struct IdIndex {
    index: HashMap<String, u32>,
    pub(crate) raw: Vec<String>,
    first: Vec<(u16, u32)>,
}

impl IdIndex {
    /// The dense id of `raw`, numbering it if new.
    pub(crate) fn intern(&mut self, raw: &str, source: u16, line: usize) -> u32 {
        if let Some(&id) = self.index.get(raw) {
            return id;
        }
        let id = self.raw.len() as u32;
        self.raw.push(raw.to_string());
        self.index.insert(raw.to_string(), id);
        self.first
            .push((source, line.min(u32::MAX as usize) as u32));
        id
    }

    pub(crate) fn get(&self, raw: &str) -> Option<u32> {
        self.index.get(raw).copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.raw.len()
    }

    /// Where dense id `id` was first seen: (source index, line).
    pub(crate) fn first_seen(&self, id: usize) -> (usize, usize) {
        let (s, l) = self.first[id];
        (s as usize, l as usize)
    }
}

/// Where interactions were read from, for "unknown id" messages: per
/// source, the file and the name of its user and item id columns.
pub(crate) struct Sources(pub(crate) Vec<(String, String, String)>);

/// One column of a [`FeatureTable`] under construction.
enum Col {
    Token(HashMap<String, u32>, Vec<u32>),
    Seq(HashMap<String, u32>, Vec<u32>, Vec<u32>),
}

/// A user or item feature table under construction: one row per line of
/// the feature file whose id occurs in the interactions, aligned with the
/// dense ids at the end.
pub(crate) struct FeatureTable {
    file: String,
    id_column: String,
    fields: Vec<FieldMeta>,
    cols: Vec<Col>,
    /// Dense id -> row of this table.
    row_of: Vec<Option<usize>>,
    lines: Vec<usize>,
}

impl FeatureTable {
    /// A builder for `n_ids` ids with these fields (token or token_seq;
    /// the readers' features are categorical), read from `file` whose id
    /// column is `id_column`.
    pub(crate) fn new(
        file: &str,
        id_column: &str,
        n_ids: usize,
        fields: Vec<FieldMeta>,
    ) -> FeatureTable {
        let cols = fields
            .iter()
            .map(|f| {
                debug_assert!(f.kind.is_token(), "feature field {} is {}", f.name, f.kind);
                if f.kind.is_seq() {
                    Col::Seq(HashMap::new(), vec![0], Vec::new())
                } else {
                    Col::Token(HashMap::new(), Vec::new())
                }
            })
            .collect();
        FeatureTable {
            file: file.to_string(),
            id_column: id_column.to_string(),
            fields,
            cols,
            row_of: vec![None; n_ids],
            lines: Vec::new(),
        }
    }

    /// Starts the row of the id in cell `c` of `rec`: `Ok(false)` if the
    /// id has no interaction (skip the line), an error if it had a line
    /// before or is empty.
    pub(crate) fn row(&mut self, rec: &Record<'_>, c: usize, ids: &IdIndex) -> Result<bool> {
        let raw = rec.id(c)?;
        let Some(dense) = ids.get(raw) else {
            return Ok(false);
        };
        let slot = &mut self.row_of[dense as usize];
        if let Some(first) = *slot {
            return Err(rec.error(
                c,
                format!("duplicate id '{raw}' (first on line {})", self.lines[first]),
            ));
        }
        self.start_row(dense, rec.line());
        Ok(true)
    }

    /// Starts the row of dense id `dense`, read from `line`; the caller
    /// has checked that it has no row yet ([`FeatureTable::has_row`]).
    pub(crate) fn start_row(&mut self, dense: u32, line: usize) {
        self.row_of[dense as usize] = Some(self.lines.len());
        self.lines.push(line);
    }

    /// Whether `dense` already has a row.
    pub(crate) fn has_row(&self, dense: u32) -> bool {
        self.row_of[dense as usize].is_some()
    }

    /// Sets field `f` (a token field) of the current row.
    pub(crate) fn token(&mut self, f: usize, tok: &str) {
        if let Col::Token(index, ids) = &mut self.cols[f] {
            ids.push(intern(index, &mut self.fields[f].vocab, tok.trim()));
        }
    }

    /// Sets field `f` (a token_seq field) of the current row; empty tokens
    /// are skipped, a repeated token is kept once.
    pub(crate) fn seq<'s>(&mut self, f: usize, toks: impl IntoIterator<Item = &'s str>) {
        if let Col::Seq(index, offsets, values) = &mut self.cols[f] {
            let start = *offsets.last().unwrap_or(&0) as usize;
            for t in toks {
                let t = t.trim();
                if t.is_empty() {
                    continue;
                }
                let id = intern(index, &mut self.fields[f].vocab, t);
                if !values[start..].contains(&id) {
                    values.push(id);
                }
            }
            let meta = &mut self.fields[f];
            meta.max_len = meta.max_len.max(values.len() - start);
            offsets.push(values.len() as u32);
        }
    }

    /// Fails if some id in `ids` has no row: names the interaction file and
    /// line where the id first occurs, and its id column.
    pub(crate) fn require_all(&self, ids: &IdIndex, sources: &Sources, role: Role) -> Result<()> {
        let Some(missing) = self.row_of.iter().position(Option::is_none) else {
            return Ok(());
        };
        let (src, line) = ids.first_seen(missing);
        let (file, ucol, icol) = &sources.0[src];
        Err(DataError::Parse {
            file: file.clone(),
            line,
            column: if role == Role::User { ucol } else { icol }.clone(),
            msg: format!(
                "unknown {role} '{}': it has no line in {} (column '{}')",
                ids.raw[missing], self.file, self.id_column
            ),
        })
    }

    /// The table, row `d` describing dense id `d` (padding for ids without
    /// a line); `None` if it has no fields.
    pub(crate) fn finish(self) -> Option<Table> {
        if self.fields.is_empty() {
            return None;
        }
        let mut table = Table::new();
        for (mut meta, col) in self.fields.into_iter().zip(self.cols) {
            let col = match col {
                Col::Token(_, ids) => Column::Token(ids),
                Col::Seq(_, offsets, values) => Column::TokenSeq { offsets, values },
            }
            .take_or_pad(&self.row_of);
            if meta.kind.is_seq() {
                meta.max_len = col.max_seq_len();
            }
            table.columns.push(col);
            table.fields.push(meta);
        }
        Some(table)
    }
}

/// The interaction columns shared by the readers, filled line by line.
#[derive(Default)]
pub(crate) struct InterBuilder {
    pub(crate) users: IdIndex,
    pub(crate) items: IdIndex,
    user_col: Vec<u32>,
    item_col: Vec<u32>,
}

impl InterBuilder {
    /// Adds the user and item of one interaction (cells `u` and `i` of
    /// `rec`, read from source `source`).
    pub(crate) fn push(&mut self, rec: &Record<'_>, u: usize, i: usize, source: u16) -> Result<()> {
        let user = rec.id(u)?;
        let item = rec.id(i)?;
        let du = self.users.intern(user, source, rec.line());
        let di = self.items.intern(item, source, rec.line());
        self.user_col.push(du);
        self.item_col.push(di);
        Ok(())
    }

    /// The number of interactions so far.
    pub(crate) fn len(&self) -> usize {
        self.user_col.len()
    }

    /// Makes the data set: user and item id columns named `user_field` /
    /// `item_field`, then `extra` interaction columns, the feature tables
    /// and the parts; checks the contract.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn finish(
        self,
        name: &str,
        user_field: &str,
        item_field: &str,
        extra: Vec<(FieldMeta, Column)>,
        users: Option<Table>,
        items: Option<Table>,
        parts: BTreeMap<String, Vec<usize>>,
    ) -> Result<Dataset> {
        let mut inter = Table::new();
        let mut um = FieldMeta::new(user_field, FieldKind::Token, Role::User);
        um.vocab = self.users.raw.clone();
        let mut im = FieldMeta::new(item_field, FieldKind::Token, Role::Item);
        im.vocab = self.items.raw.clone();
        inter.push(um, Column::Token(self.user_col))?;
        inter.push(im, Column::Token(self.item_col))?;
        for (meta, col) in extra {
            inter.push(meta, col)?;
        }
        let ds = Dataset {
            name: name.to_string(),
            inter,
            users,
            items,
            n_users: self.users.len(),
            n_items: self.items.len(),
            user_ids: self.users.raw,
            item_ids: self.items.raw,
            parts,
        };
        ds.validate()?;
        Ok(ds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(line: &str, d: Delim) -> std::result::Result<Vec<String>, usize> {
        let mut scratch = String::new();
        let mut spans = Vec::new();
        let src = split(line, d, &mut scratch, &mut spans)?;
        Ok(spans.iter().map(|&(a, b)| src[a..b].to_string()).collect())
    }

    #[test]
    fn splits_plain_and_quoted_cells() {
        assert_eq!(
            cells("1::Toy (1995)::A|B", Delim::Str("::")).unwrap(),
            ["1", "Toy (1995)", "A|B"]
        );
        assert_eq!(cells("a\t\tb", Delim::Char('\t')).unwrap(), ["a", "", "b"]);
        assert_eq!(
            cells("1,\"[27, 9]\"", Delim::Csv).unwrap(),
            ["1", "[27, 9]"]
        );
        assert_eq!(
            cells("\"a\"\"b\",,\"\"", Delim::Csv).unwrap(),
            ["a\"b", "", ""]
        );
        assert_eq!(
            cells("1,\"(0,10]\",x", Delim::Csv).unwrap(),
            ["1", "(0,10]", "x"]
        );
        assert_eq!(cells("1,\"open", Delim::Csv), Err(1));
        assert_eq!(cells("1,\"a\"b", Delim::Csv), Err(1));
        assert_eq!(cells("a\"b,c", Delim::Csv), Err(0));
    }
}
