//! Reading delimited text, the one place for it: streaming line reading
//! (UTF-8 byte order mark, `\r\n`, blank lines, an optional Latin-1
//! fallback), splitting by a delimiter (with RFC 4180 quoting for CSV),
//! header lookup, and typed cells (numbers, ids, calendar dates) whose
//! errors name the file, the 1-based line and the column. The column
//! builders the readers fill are in `columns`.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::atomic::{parse_float, parse_float64};
use crate::error::{DataError, Result};

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

    /// What `text` (one line, split into a single cell) looks separated
    /// by instead, e.g. `" the line looks semicolon-separated"`.
    fn other_in(self, text: &str) -> String {
        let own = match self {
            Delim::Char(c) => Some(c),
            Delim::Csv => Some(','),
            Delim::Str(_) => None,
        };
        [('\t', "tab"), (';', "semicolon"), (',', "comma")]
            .iter()
            .find(|&&(c, _)| Some(c) != own && text.contains(c))
            .map_or_else(String::new, |(_, name)| {
                format!(", the line looks {name}-separated")
            })
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
                // A column is looked up by name: two of one name are ambiguous.
                for (k, n) in r.names.iter().enumerate() {
                    if !n.is_empty() && r.names[..k].contains(n) {
                        return Err(r.parse_err(
                            1,
                            n,
                            format!("duplicate column name (cell {})", k + 1),
                        ));
                    }
                }
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
                "; wrong delimiter? expected {}{}",
                self.delim.describe(),
                self.delim.other_in(&self.names[0])
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
                    let other = self.delim.other_in(text);
                    msg.push_str(&format!(" (wrong delimiter?{other})"));
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

    /// Cell `c` as an integer.
    pub fn i64(&self, c: usize) -> Result<i64> {
        let cell = self.get(c);
        cell.trim()
            .parse::<i64>()
            .map_err(|_| self.error(c, format!("'{cell}' is not an integer")))
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

/// `t` as a number if it is a non-empty run of ASCII digits (no sign, no
/// spaces), as the parts of a date or a clock time must be.
pub(crate) fn digits(t: &str) -> Option<i64> {
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
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
