//! Columnar tables and the in-memory data set.
//!
//! A [`Dataset`] is one interaction table (`inter`) plus optional user and
//! item feature tables. Every table is a list of [`FieldMeta`] (name, kind,
//! role, vocabulary) with one [`Column`] per field. Token fields are stored
//! as `u32` ids into the field's vocabulary, where id 0 is the reserved
//! padding/unknown token [`PAD`]; the user and item id columns of `inter`
//! are the exception and hold dense ids `0..n_users` / `0..n_items` (see
//! [`Dataset`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// The reserved padding / unknown token: id 0 of every token vocabulary.
pub const PAD: &str = "[PAD]";

/// The value type of a field, as in RecBole atomic files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FieldKind {
    /// One categorical token per row (RecBole `token`).
    Token,
    /// A variable-length list of tokens per row (RecBole `token_seq`).
    TokenSeq,
    /// One real number per row (RecBole `float`).
    Float,
    /// A variable-length list of real numbers per row (RecBole `float_seq`).
    FloatSeq,
}

impl FieldKind {
    /// Parses a RecBole type name (`token`, `token_seq`, `float`,
    /// `float_seq`); `None` for anything else.
    pub fn parse(s: &str) -> Option<FieldKind> {
        match s {
            "token" => Some(FieldKind::Token),
            "token_seq" => Some(FieldKind::TokenSeq),
            "float" => Some(FieldKind::Float),
            "float_seq" => Some(FieldKind::FloatSeq),
            _ => None,
        }
    }

    /// The RecBole type name of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Token => "token",
            FieldKind::TokenSeq => "token_seq",
            FieldKind::Float => "float",
            FieldKind::FloatSeq => "float_seq",
        }
    }

    /// Whether values of this kind are vocabulary tokens.
    pub fn is_token(self) -> bool {
        matches!(self, FieldKind::Token | FieldKind::TokenSeq)
    }

    /// Whether a row holds a list of values rather than one value.
    pub fn is_seq(self) -> bool {
        matches!(self, FieldKind::TokenSeq | FieldKind::FloatSeq)
    }
}

impl fmt::Display for FieldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a field means to the estimators that read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// The user id.
    User,
    /// The item id.
    Item,
    /// An explicit rating.
    Rating,
    /// A binary label (click, like, ...).
    Label,
    /// The interaction time.
    Timestamp,
    /// An item group, e.g. a genre (DecRS).
    Group,
    /// A confounding proxy (CP2Rec).
    Proxy,
    /// An exposure feature (HCR/CR).
    Exposure,
    /// A dense modality feature (MMGCN).
    Modality,
    /// A search query (IV4Rec).
    Query,
    /// The display position of an impression.
    Position,
    /// A logged propensity (off-policy data).
    Propensity,
    /// Any other feature.
    Feature,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: [Role; 13] = [
        Role::User,
        Role::Item,
        Role::Rating,
        Role::Label,
        Role::Timestamp,
        Role::Group,
        Role::Proxy,
        Role::Exposure,
        Role::Modality,
        Role::Query,
        Role::Position,
        Role::Propensity,
        Role::Feature,
    ];

    /// Parses a lowercase role name (`"user"`, `"group"`, ...).
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The lowercase name of this role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Item => "item",
            Role::Rating => "rating",
            Role::Label => "label",
            Role::Timestamp => "timestamp",
            Role::Group => "group",
            Role::Proxy => "proxy",
            Role::Exposure => "exposure",
            Role::Modality => "modality",
            Role::Query => "query",
            Role::Position => "position",
            Role::Propensity => "propensity",
            Role::Feature => "feature",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The description of one field (column) of a [`Table`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldMeta {
    /// The field name, as in the file header (without `:type`).
    pub name: String,
    /// The value type.
    pub kind: FieldKind,
    /// What the field means.
    pub role: Role,
    /// For token fields, the id -> string vocabulary with `vocab[0] == PAD`;
    /// empty for float fields. Exception: the user/item id columns of
    /// [`Dataset::inter`] hold dense ids, and their vocabulary is the raw id
    /// list itself (no padding entry), so `vocab[id]` is still the raw id.
    pub vocab: Vec<String>,
    /// For sequence fields, the largest number of values in any row; 1 for
    /// scalar fields.
    pub max_len: usize,
}

impl FieldMeta {
    /// A new field with an empty vocabulary (just [`PAD`] for token kinds)
    /// and `max_len` 1 (0 for sequence kinds, grown as rows are added).
    pub fn new(name: impl Into<String>, kind: FieldKind, role: Role) -> FieldMeta {
        FieldMeta {
            name: name.into(),
            kind,
            role,
            vocab: if kind.is_token() {
                vec![PAD.to_string()]
            } else {
                Vec::new()
            },
            max_len: if kind.is_seq() { 0 } else { 1 },
        }
    }

    /// The number of vocabulary entries, padding included (0 for floats).
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The width of a dense vector for this field: `max_len` for
    /// [`FieldKind::FloatSeq`] (shorter rows are zero-padded to it), else 1.
    pub fn dim(&self) -> usize {
        match self.kind {
            FieldKind::FloatSeq => self.max_len,
            _ => 1,
        }
    }

    /// The string of token `id`, if this is a token field and `id` is in
    /// the vocabulary.
    pub fn token_str(&self, id: u32) -> Option<&str> {
        self.vocab.get(id as usize).map(String::as_str)
    }
}

/// The values of one field, one entry (or one list) per row.
///
/// Sequence columns are stored CSR style: row `r` holds
/// `values[offsets[r]..offsets[r + 1]]`, and `offsets` has `n_rows + 1`
/// entries starting at 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Column {
    /// Token ids.
    Token(Vec<u32>),
    /// Lists of token ids.
    TokenSeq {
        /// Row boundaries, `n_rows + 1` entries.
        offsets: Vec<u32>,
        /// All rows' ids, concatenated.
        values: Vec<u32>,
    },
    /// Real numbers.
    Float(Vec<f32>),
    /// Real numbers kept at double precision, for values an `f32` would
    /// round: timestamps (a unix time in seconds needs 31 bits, an `f32`
    /// has 24). Its [`FieldKind`] is [`FieldKind::Float`], like
    /// [`Column::Float`]; the readers of this crate store every
    /// [`Role::Timestamp`] field this way.
    Float64(Vec<f64>),
    /// Lists of real numbers.
    FloatSeq {
        /// Row boundaries, `n_rows + 1` entries.
        offsets: Vec<u32>,
        /// All rows' values, concatenated.
        values: Vec<f32>,
    },
}

impl Column {
    /// An empty column (no rows) of the given kind.
    pub fn empty(kind: FieldKind) -> Column {
        match kind {
            FieldKind::Token => Column::Token(Vec::new()),
            FieldKind::TokenSeq => Column::TokenSeq {
                offsets: vec![0],
                values: Vec::new(),
            },
            FieldKind::Float => Column::Float(Vec::new()),
            FieldKind::FloatSeq => Column::FloatSeq {
                offsets: vec![0],
                values: Vec::new(),
            },
        }
    }

    /// A column of `n` padding rows (token 0, 0.0, or empty lists).
    pub fn padding(kind: FieldKind, n: usize) -> Column {
        match kind {
            FieldKind::Token => Column::Token(vec![0; n]),
            FieldKind::TokenSeq => Column::TokenSeq {
                offsets: vec![0; n + 1],
                values: Vec::new(),
            },
            FieldKind::Float => Column::Float(vec![0.0; n]),
            FieldKind::FloatSeq => Column::FloatSeq {
                offsets: vec![0; n + 1],
                values: Vec::new(),
            },
        }
    }

    /// The kind of values this column holds.
    pub fn kind(&self) -> FieldKind {
        match self {
            Column::Token(_) => FieldKind::Token,
            Column::TokenSeq { .. } => FieldKind::TokenSeq,
            Column::Float(_) | Column::Float64(_) => FieldKind::Float,
            Column::FloatSeq { .. } => FieldKind::FloatSeq,
        }
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        match self {
            Column::Token(v) => v.len(),
            Column::Float(v) => v.len(),
            Column::Float64(v) => v.len(),
            Column::TokenSeq { offsets, .. } | Column::FloatSeq { offsets, .. } => {
                offsets.len().saturating_sub(1)
            }
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The token id of `row`.
    ///
    /// # Panics
    /// If this is not a [`Column::Token`] or `row` is out of range.
    pub fn token(&self, row: usize) -> u32 {
        match self {
            Column::Token(v) => v[row],
            other => panic!("Column::token on a {} column", other.kind()),
        }
    }

    /// The token ids of `row`.
    ///
    /// # Panics
    /// If this is not a [`Column::TokenSeq`] or `row` is out of range.
    pub fn seq(&self, row: usize) -> &[u32] {
        match self {
            Column::TokenSeq { offsets, values } => {
                &values[offsets[row] as usize..offsets[row + 1] as usize]
            }
            other => panic!("Column::seq on a {} column", other.kind()),
        }
    }

    /// The real value of `row` (rounded to `f32` for a
    /// [`Column::Float64`]).
    ///
    /// # Panics
    /// If this is not a [`Column::Float`] / [`Column::Float64`] or `row` is
    /// out of range.
    pub fn float(&self, row: usize) -> f32 {
        match self {
            Column::Float(v) => v[row],
            Column::Float64(v) => v[row] as f32,
            other => panic!("Column::float on a {} column", other.kind()),
        }
    }

    /// The real value of `row` at double precision.
    ///
    /// # Panics
    /// If this is not a [`Column::Float`] / [`Column::Float64`] or `row` is
    /// out of range.
    pub fn float64(&self, row: usize) -> f64 {
        match self {
            Column::Float(v) => v[row] as f64,
            Column::Float64(v) => v[row],
            other => panic!("Column::float64 on a {} column", other.kind()),
        }
    }

    /// The real values of `row`.
    ///
    /// # Panics
    /// If this is not a [`Column::FloatSeq`] or `row` is out of range.
    pub fn float_seq(&self, row: usize) -> &[f32] {
        match self {
            Column::FloatSeq { offsets, values } => {
                &values[offsets[row] as usize..offsets[row + 1] as usize]
            }
            other => panic!("Column::float_seq on a {} column", other.kind()),
        }
    }

    /// All token ids, if this is a [`Column::Token`].
    pub fn as_tokens(&self) -> Option<&[u32]> {
        match self {
            Column::Token(v) => Some(v),
            _ => None,
        }
    }

    /// All values, if this is a [`Column::Float`].
    pub fn as_floats(&self) -> Option<&[f32]> {
        match self {
            Column::Float(v) => Some(v),
            _ => None,
        }
    }

    /// All values, if this is a [`Column::Float64`].
    pub fn as_floats64(&self) -> Option<&[f64]> {
        match self {
            Column::Float64(v) => Some(v),
            _ => None,
        }
    }

    /// The token ids of `row` whatever the token kind: the one id of a
    /// [`Column::Token`], the list of a [`Column::TokenSeq`]; empty for
    /// float columns and for a row out of range. Never panics.
    pub fn row_tokens(&self, row: usize) -> &[u32] {
        match self {
            Column::Token(v) => v.get(row).map(std::slice::from_ref).unwrap_or(&[]),
            Column::TokenSeq { offsets, values } => {
                match (offsets.get(row), offsets.get(row + 1)) {
                    (Some(&a), Some(&b)) => values.get(a as usize..b as usize).unwrap_or(&[]),
                    _ => &[],
                }
            }
            _ => &[],
        }
    }

    /// The largest number of values in a row (1 for scalar columns with
    /// rows, 0 for an empty column).
    pub fn max_seq_len(&self) -> usize {
        match self {
            Column::Token(v) => v.len().min(1),
            Column::Float(v) => v.len().min(1),
            Column::Float64(v) => v.len().min(1),
            Column::TokenSeq { offsets, .. } | Column::FloatSeq { offsets, .. } => offsets
                .windows(2)
                .map(|w| w[1].saturating_sub(w[0]) as usize)
                .max()
                .unwrap_or(0),
        }
    }

    /// A new column holding the given rows, in the given order (rows may
    /// repeat).
    ///
    /// # Panics
    /// If a row index is out of range.
    pub fn take(&self, rows: &[usize]) -> Column {
        fn take_seq<T: Copy>(offsets: &[u32], values: &[T], rows: &[usize]) -> (Vec<u32>, Vec<T>) {
            let mut o = Vec::with_capacity(rows.len() + 1);
            let mut v = Vec::new();
            o.push(0u32);
            for &r in rows {
                v.extend_from_slice(&values[offsets[r] as usize..offsets[r + 1] as usize]);
                o.push(v.len() as u32);
            }
            (o, v)
        }
        match self {
            Column::Token(v) => Column::Token(rows.iter().map(|&r| v[r]).collect()),
            Column::Float(v) => Column::Float(rows.iter().map(|&r| v[r]).collect()),
            Column::Float64(v) => Column::Float64(rows.iter().map(|&r| v[r]).collect()),
            Column::TokenSeq { offsets, values } => {
                let (offsets, values) = take_seq(offsets, values, rows);
                Column::TokenSeq { offsets, values }
            }
            Column::FloatSeq { offsets, values } => {
                let (offsets, values) = take_seq(offsets, values, rows);
                Column::FloatSeq { offsets, values }
            }
        }
    }

    /// A new column with one row per entry of `rows`: a copy of that row
    /// for `Some(r)`, a padding row (token 0, 0.0, empty list) for `None`.
    ///
    /// # Panics
    /// If a row index is out of range.
    pub fn take_or_pad(&self, rows: &[Option<usize>]) -> Column {
        fn seq<T: Copy>(
            offsets: &[u32],
            values: &[T],
            rows: &[Option<usize>],
        ) -> (Vec<u32>, Vec<T>) {
            let mut o = Vec::with_capacity(rows.len() + 1);
            let mut v = Vec::new();
            o.push(0u32);
            for r in rows {
                if let Some(r) = *r {
                    v.extend_from_slice(&values[offsets[r] as usize..offsets[r + 1] as usize]);
                }
                o.push(v.len() as u32);
            }
            (o, v)
        }
        match self {
            Column::Token(v) => Column::Token(rows.iter().map(|r| r.map_or(0, |r| v[r])).collect()),
            Column::Float(v) => {
                Column::Float(rows.iter().map(|r| r.map_or(0.0, |r| v[r])).collect())
            }
            Column::Float64(v) => {
                Column::Float64(rows.iter().map(|r| r.map_or(0.0, |r| v[r])).collect())
            }
            Column::TokenSeq { offsets, values } => {
                let (offsets, values) = seq(offsets, values, rows);
                Column::TokenSeq { offsets, values }
            }
            Column::FloatSeq { offsets, values } => {
                let (offsets, values) = seq(offsets, values, rows);
                Column::FloatSeq { offsets, values }
            }
        }
    }

    /// Checks the internal consistency of the column: offsets start at 0,
    /// never decrease and end at the number of values.
    fn check_offsets(&self) -> std::result::Result<(), String> {
        let (offsets, n_values) = match self {
            Column::TokenSeq { offsets, values } => (offsets, values.len()),
            Column::FloatSeq { offsets, values } => (offsets, values.len()),
            _ => return Ok(()),
        };
        if offsets.first() != Some(&0) {
            return Err("offsets must start with 0".into());
        }
        if offsets.windows(2).any(|w| w[1] < w[0]) {
            return Err("offsets decrease".into());
        }
        if offsets.last().map(|&x| x as usize) != Some(n_values) {
            return Err(format!(
                "last offset {:?} differs from the number of values {n_values}",
                offsets.last()
            ));
        }
        Ok(())
    }
}

/// A set of equally long columns, each described by a [`FieldMeta`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Table {
    /// One description per column.
    pub fields: Vec<FieldMeta>,
    /// The columns, parallel to `fields`.
    pub columns: Vec<Column>,
}

impl Table {
    /// An empty table with no fields.
    pub fn new() -> Table {
        Table::default()
    }

    /// Appends a field. Fails if the column's kind differs from the field's,
    /// if its length differs from the table's, or if the name is taken.
    pub fn push(&mut self, meta: FieldMeta, column: Column) -> Result<()> {
        if meta.kind != column.kind() {
            return Err(DataError::Config(format!(
                "field '{}' is declared {} but its column holds {}",
                meta.name,
                meta.kind,
                column.kind()
            )));
        }
        if !self.columns.is_empty() && column.len() != self.n_rows() {
            return Err(DataError::Config(format!(
                "field '{}' has {} rows, the table has {}",
                meta.name,
                column.len(),
                self.n_rows()
            )));
        }
        if self.field(&meta.name).is_some() {
            return Err(DataError::Config(format!(
                "field '{}' is already in the table",
                meta.name
            )));
        }
        self.fields.push(meta);
        self.columns.push(column);
        Ok(())
    }

    /// Removes the field called `name`, returning it if it was there.
    pub fn remove_field(&mut self, name: &str) -> Option<(FieldMeta, Column)> {
        let (i, _) = self.field(name)?;
        Some((self.fields.remove(i), self.columns.remove(i)))
    }

    /// The number of rows (0 for a table without fields).
    pub fn n_rows(&self) -> usize {
        self.columns.first().map_or(0, Column::len)
    }

    /// The number of fields.
    pub fn n_fields(&self) -> usize {
        self.fields.len()
    }

    /// The field names, comma-separated (for error messages).
    pub fn field_names(&self) -> String {
        self.fields
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The index and description of the field called `name`.
    pub fn field(&self, name: &str) -> Option<(usize, &FieldMeta)> {
        self.fields.iter().enumerate().find(|(_, f)| f.name == name)
    }

    /// The column of the field called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.field(name).map(|(i, _)| &self.columns[i])
    }

    /// The index and description of the first field with `role`.
    pub fn field_by_role(&self, role: Role) -> Option<(usize, &FieldMeta)> {
        self.fields.iter().enumerate().find(|(_, f)| f.role == role)
    }

    /// The indices of all fields with `role`, in table order.
    pub fn fields_with_role(&self, role: Role) -> Vec<usize> {
        self.fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.role == role)
            .map(|(i, _)| i)
            .collect()
    }

    /// Removes the field called `name` and returns it with its column.
    pub fn remove(&mut self, name: &str) -> Option<(FieldMeta, Column)> {
        let (i, _) = self.field(name)?;
        Some((self.fields.remove(i), self.columns.remove(i)))
    }

    /// A new table holding the given rows, in the given order. Field
    /// descriptions (vocabularies included) are kept as they are.
    ///
    /// # Panics
    /// If a row index is out of range.
    pub fn take(&self, rows: &[usize]) -> Table {
        Table {
            fields: self.fields.clone(),
            columns: self.columns.iter().map(|c| c.take(rows)).collect(),
        }
    }

    /// The text of one cell as it appears in a RecBole atomic file: the
    /// token string (empty for [`PAD`]), space-separated tokens, or the
    /// shortest decimal that reads back as the same `f32` (`f64` for a
    /// [`Column::Float64`]).
    ///
    /// # Panics
    /// If `field` or `row` is out of range.
    pub fn cell_text(&self, field: usize, row: usize) -> String {
        let meta = &self.fields[field];
        let tok = |id: u32| -> &str {
            if id == 0 && meta.vocab.first().map(String::as_str) == Some(PAD) {
                ""
            } else {
                meta.token_str(id).unwrap_or("")
            }
        };
        match &self.columns[field] {
            c @ Column::Token(_) => tok(c.token(row)).to_string(),
            c @ Column::TokenSeq { .. } => c
                .seq(row)
                .iter()
                .map(|&id| tok(id))
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
            c @ Column::Float(_) => c.float(row).to_string(),
            c @ Column::Float64(_) => c.float64(row).to_string(),
            c @ Column::FloatSeq { .. } => c
                .float_seq(row)
                .iter()
                .map(f32::to_string)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// Checks that fields and columns are parallel, equally long, of
    /// matching kinds, with well-formed offsets and token ids inside each
    /// vocabulary (fields with role `skip_vocab` are not id-checked).
    fn check(&self, skip_vocab: &[Role]) -> std::result::Result<(), String> {
        if self.fields.len() != self.columns.len() {
            return Err(format!(
                "{} fields but {} columns",
                self.fields.len(),
                self.columns.len()
            ));
        }
        let n = self.n_rows();
        for (meta, col) in self.fields.iter().zip(&self.columns) {
            let name = &meta.name;
            if meta.kind != col.kind() {
                return Err(format!(
                    "field '{name}' is {} but holds {}",
                    meta.kind,
                    col.kind()
                ));
            }
            if col.len() != n {
                return Err(format!(
                    "field '{name}' has {} rows, expected {n}",
                    col.len()
                ));
            }
            col.check_offsets()
                .map_err(|e| format!("field '{name}': {e}"))?;
            if skip_vocab.contains(&meta.role) {
                continue;
            }
            let ids: &[u32] = match col {
                Column::Token(v) => v,
                Column::TokenSeq { values, .. } => values,
                _ => continue,
            };
            if let Some(&bad) = ids.iter().find(|&&id| id as usize >= meta.vocab.len()) {
                return Err(format!(
                    "field '{name}' holds token id {bad}, vocabulary size {}",
                    meta.vocab.len()
                ));
            }
        }
        Ok(())
    }
}

/// A data set: interactions plus optional user and item features.
///
/// Contract:
/// - `inter` has exactly one [`Role::User`] and one [`Role::Item`] token
///   column, holding dense ids `0..n_users` and `0..n_items`;
///   `user_ids[u]` / `item_ids[i]` are the raw id strings. Every user and
///   item in `0..n` occurs in `inter` at least once.
/// - Row `u` of `users` describes user `u`, row `i` of `items` item `i`;
///   the id column itself is not in the feature tables. Users/items without
///   a feature line get padding (token 0, 0.0, empty lists).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// The data set's name (e.g. `ml-100k`).
    pub name: String,
    /// The interaction table.
    pub inter: Table,
    /// User features, one row per user, if the data set has any.
    pub users: Option<Table>,
    /// Item features, one row per item, if the data set has any.
    pub items: Option<Table>,
    /// The number of distinct users.
    pub n_users: usize,
    /// The number of distinct items.
    pub n_items: usize,
    /// Raw user id of each dense user id.
    pub user_ids: Vec<String>,
    /// Raw item id of each dense item id.
    pub item_ids: Vec<String>,
    /// Named sets of `inter` rows given by the data itself (e.g. CTAR's
    /// `train`, `test_1`..`test_3`; KuaiRec's biased `train` and fully
    /// observed `test`), each sorted ascending. Empty for data sets whose
    /// splits are computed ([`crate::split`]). The `given` split reads the
    /// parts named `train`, `valid` and `test`; evaluation can target any part.
    #[serde(default)]
    pub parts: std::collections::BTreeMap<String, Vec<usize>>,
}

impl Dataset {
    fn id_col(&self, role: Role) -> &[u32] {
        self.inter
            .field_by_role(role)
            .and_then(|(i, _)| self.inter.columns[i].as_tokens())
            .unwrap_or_else(|| panic!("data set '{}' has no {role} token column", self.name))
    }

    /// The dense user id of every interaction.
    ///
    /// # Panics
    /// If `inter` has no [`Role::User`] token column (a broken contract;
    /// data sets made by this crate always have one).
    pub fn user_col(&self) -> &[u32] {
        self.id_col(Role::User)
    }

    /// The dense item id of every interaction.
    ///
    /// # Panics
    /// If `inter` has no [`Role::Item`] token column.
    pub fn item_col(&self) -> &[u32] {
        self.id_col(Role::Item)
    }

    /// The rating of every interaction, if there is a float
    /// [`Role::Rating`] column.
    pub fn rating_col(&self) -> Option<&[f32]> {
        let (i, _) = self.inter.field_by_role(Role::Rating)?;
        self.inter.columns[i].as_floats()
    }

    /// The timestamp of every interaction, at double precision, if there
    /// is a float [`Role::Timestamp`] column. Borrowed from a
    /// [`Column::Float64`] (what the readers of this crate build, exact);
    /// widened from a hand-built [`Column::Float`].
    pub fn timestamp_col(&self) -> Option<Cow<'_, [f64]>> {
        let (i, _) = self.inter.field_by_role(Role::Timestamp)?;
        match &self.inter.columns[i] {
            Column::Float64(v) => Some(Cow::Borrowed(v)),
            Column::Float(v) => Some(Cow::Owned(v.iter().map(|&x| x as f64).collect())),
            _ => None,
        }
    }

    /// The number of interactions.
    pub fn n_inter(&self) -> usize {
        self.inter.n_rows()
    }

    /// The item feature fields with `role` (e.g. [`Role::Group`] for genres),
    /// with their columns (row `i` = item `i`), in table order.
    pub fn items_of_role(&self, role: Role) -> Vec<(&FieldMeta, &Column)> {
        of_role(self.items.as_ref(), role)
    }

    /// The user feature fields with `role`, with their columns (row `u` =
    /// user `u`), in table order.
    pub fn users_of_role(&self, role: Role) -> Vec<(&FieldMeta, &Column)> {
        of_role(self.users.as_ref(), role)
    }

    /// Summary statistics, as in a paper's data set table.
    pub fn stats(&self) -> DatasetStats {
        let n_inter = self.n_inter();
        let cells = self.n_users as f64 * self.n_items as f64;
        let ratings = self.rating_col().filter(|r| !r.is_empty());
        let rating_range = ratings.map(|r| {
            r.iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                })
        });
        let rating_mean =
            ratings.map(|r| r.iter().map(|&x| x as f64).sum::<f64>() / r.len() as f64);
        let time_range = self.timestamp_col().filter(|t| !t.is_empty()).map(|t| {
            t.iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                })
        });
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        DatasetStats {
            name: self.name.clone(),
            n_users: self.n_users,
            n_items: self.n_items,
            n_inter,
            density: if cells > 0.0 {
                n_inter as f64 / cells
            } else {
                0.0
            },
            inter_per_user: ratio(n_inter, self.n_users),
            inter_per_item: ratio(n_inter, self.n_items),
            rating_range,
            rating_mean,
            time_range,
        }
    }

    /// Checks the [`Dataset`] contract; every data set this crate returns
    /// passes. Useful after building or editing one by hand.
    pub fn validate(&self) -> Result<()> {
        let err = |msg: String| DataError::Schema {
            file: self.name.clone(),
            msg,
        };
        self.inter
            .check(&[Role::User, Role::Item])
            .map_err(|e| err(format!("inter: {e}")))?;
        for (role, n, ids) in [
            (Role::User, self.n_users, &self.user_ids),
            (Role::Item, self.n_items, &self.item_ids),
        ] {
            let with_role = self.inter.fields_with_role(role);
            if with_role.len() != 1 {
                return Err(err(format!(
                    "inter must have exactly one {role} field, has {}",
                    with_role.len()
                )));
            }
            let col = self.inter.columns[with_role[0]]
                .as_tokens()
                .ok_or_else(|| err(format!("the {role} field of inter is not a token field")))?;
            if ids.len() != n {
                return Err(err(format!("{} raw {role} ids for {n} {role}s", ids.len())));
            }
            let mut seen = vec![false; n];
            for &id in col {
                match seen.get_mut(id as usize) {
                    Some(s) => *s = true,
                    None => return Err(err(format!("{role} id {id} out of range 0..{n}"))),
                }
            }
            if let Some(missing) = seen.iter().position(|s| !s) {
                return Err(err(format!("{role} {missing} has no interaction")));
            }
        }
        for (what, table, n) in [
            ("users", &self.users, self.n_users),
            ("items", &self.items, self.n_items),
        ] {
            if let Some(t) = table {
                t.check(&[]).map_err(|e| err(format!("{what}: {e}")))?;
                if !t.columns.is_empty() && t.n_rows() != n {
                    return Err(err(format!("{what} has {} rows, expected {n}", t.n_rows())));
                }
            }
        }
        Ok(())
    }

    /// Sets the role of every field named in `roles`, in whichever of
    /// `inter`, `users` and `items` has it (all of them when several do;
    /// later entries win). A name no table has is an error listing every
    /// field; [`Role::User`] / [`Role::Item`] cannot be assigned and the
    /// user / item id columns of `inter` cannot be changed (the [`Dataset`]
    /// contract needs exactly one of each).
    pub fn set_roles(&mut self, roles: &[(String, Role)]) -> Result<()> {
        for (name, role) in roles {
            if matches!(role, Role::User | Role::Item) {
                return Err(DataError::Config(format!(
                    "roles: cannot assign role '{role}' to field '{name}' of data set '{}' \
                     (the user and item id columns are fixed by the reader)",
                    self.name
                )));
            }
            let mut found = false;
            let tables = [
                Some(&mut self.inter),
                self.users.as_mut(),
                self.items.as_mut(),
            ];
            for t in tables.into_iter().flatten() {
                if let Some(meta) = t.fields.iter_mut().find(|f| &f.name == name) {
                    if matches!(meta.role, Role::User | Role::Item) {
                        return Err(DataError::Config(format!(
                            "roles: field '{name}' of data set '{}' is the {} id column; \
                             its role cannot change",
                            self.name, meta.role
                        )));
                    }
                    meta.role = *role;
                    found = true;
                }
            }
            if !found {
                let list = |t: Option<&Table>| {
                    t.map(Table::field_names)
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "none".into())
                };
                return Err(DataError::Config(format!(
                    "roles: data set '{}' has no field '{name}' (interaction fields: {}; \
                     user fields: {}; item fields: {})",
                    self.name,
                    self.inter.field_names(),
                    list(self.users.as_ref()),
                    list(self.items.as_ref())
                )));
            }
        }
        Ok(())
    }

    /// Renumbers users and items densely by first appearance in `inter`
    /// (the order [`crate::atomic::load_atomic`] uses), drops users/items
    /// without interactions, and reorders the feature tables to match.
    ///
    /// # Panics
    /// If `inter` lacks its user/item columns or an id is out of range of
    /// `user_ids` / `item_ids` or of the feature tables.
    pub fn compact(mut self) -> Dataset {
        for role in [Role::User, Role::Item] {
            let (ci, _) = self
                .inter
                .field_by_role(role)
                .unwrap_or_else(|| panic!("compact: no {role} column"));
            let Column::Token(col) = &mut self.inter.columns[ci] else {
                panic!("compact: the {role} column is not a token column");
            };
            let (raw, table) = if role == Role::User {
                (&mut self.user_ids, &mut self.users)
            } else {
                (&mut self.item_ids, &mut self.items)
            };
            let mut new_of_old: HashMap<u32, u32> = HashMap::new();
            let mut order: Vec<usize> = Vec::new();
            for id in col.iter_mut() {
                let next = order.len() as u32;
                let new = *new_of_old.entry(*id).or_insert_with(|| {
                    order.push(*id as usize);
                    next
                });
                *id = new;
            }
            *raw = order.iter().map(|&o| raw[o].clone()).collect();
            if let Some(t) = table {
                if !t.columns.is_empty() {
                    *t = t.take(&order);
                }
            }
            self.inter.fields[ci].vocab = raw.clone();
            if role == Role::User {
                self.n_users = order.len();
            } else {
                self.n_items = order.len();
            }
        }
        self
    }
}

fn of_role(table: Option<&Table>, role: Role) -> Vec<(&FieldMeta, &Column)> {
    table.map_or_else(Vec::new, |t| {
        t.fields
            .iter()
            .zip(&t.columns)
            .filter(|(f, _)| f.role == role)
            .collect()
    })
}

/// Summary statistics of a [`Dataset`].
///
/// `Display` writes one Markdown table row,
/// `| name | users | items | interactions | density | inter/user | inter/item |`;
/// [`DatasetStats::HEADER`] is the matching header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetStats {
    /// The data set's name.
    pub name: String,
    /// The number of users.
    pub n_users: usize,
    /// The number of items.
    pub n_items: usize,
    /// The number of interactions.
    pub n_inter: usize,
    /// `n_inter / (n_users * n_items)`.
    pub density: f64,
    /// Mean interactions per user.
    pub inter_per_user: f64,
    /// Mean interactions per item.
    pub inter_per_item: f64,
    /// Smallest and largest rating, if there are ratings.
    pub rating_range: Option<(f32, f32)>,
    /// Mean rating, if there are ratings.
    pub rating_mean: Option<f64>,
    /// Earliest and latest timestamp, if there are timestamps.
    pub time_range: Option<(f64, f64)>,
}

impl DatasetStats {
    /// The Markdown header (two lines) matching the `Display` row.
    pub const HEADER: &'static str = "| Dataset | #Users | #Items | #Interactions | Density | Inter/user | Inter/item |\n|---|---:|---:|---:|---:|---:|---:|";
}

impl fmt::Display for DatasetStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "| {} | {} | {} | {} | {:.4}% | {:.2} | {:.2} |",
            self.name,
            self.n_users,
            self.n_items,
            self.n_inter,
            self.density * 100.0,
            self.inter_per_user,
            self.inter_per_item
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq_col(rows: &[&[u32]]) -> Column {
        let mut offsets = vec![0u32];
        let mut values = Vec::new();
        for r in rows {
            values.extend_from_slice(r);
            offsets.push(values.len() as u32);
        }
        Column::TokenSeq { offsets, values }
    }

    #[test]
    fn set_roles_reaches_every_table_and_names_missing_fields() {
        let mut d = crate::split::tests::ds(&[(0, 0, 1.0, 0.0), (1, 1, 0.0, 1.0)], true);
        let mut items = Table::new();
        items
            .push(
                FieldMeta::new("price", FieldKind::Float, Role::Feature),
                Column::Float(vec![1.0, 2.0]),
            )
            .unwrap();
        d.items = Some(items);
        d.set_roles(&[
            ("price".into(), Role::Proxy),
            ("rating".into(), Role::Label),
        ])
        .unwrap();
        assert_eq!(d.items.as_ref().unwrap().fields[0].role, Role::Proxy);
        assert_eq!(d.inter.field("rating").unwrap().1.role, Role::Label);
        let e = d
            .set_roles(&[("cost".into(), Role::Proxy)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'cost'") && e.contains("'tiny'"), "{e}");
        assert!(
            e.contains("interaction fields: user_id, item_id, rating, timestamp")
                && e.contains("user fields: none")
                && e.contains("item fields: price"),
            "{e}"
        );
        let e = d
            .set_roles(&[("user_id".into(), Role::Feature)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'user_id'") && e.contains("id column"), "{e}");
        let e = d
            .set_roles(&[("price".into(), Role::Item)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'item'") && e.contains("'price'"), "{e}");
        d.validate().unwrap();
    }

    #[test]
    fn kinds_and_roles_round_trip_their_names() {
        for k in [
            FieldKind::Token,
            FieldKind::TokenSeq,
            FieldKind::Float,
            FieldKind::FloatSeq,
        ] {
            assert_eq!(FieldKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(FieldKind::parse("int"), None);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("Group"), None);
        assert_eq!(Role::parse("group"), Some(Role::Group));
    }

    #[test]
    fn field_meta_vocab_and_dim() {
        let t = FieldMeta::new("g", FieldKind::TokenSeq, Role::Group);
        assert_eq!(t.vocab, vec![PAD.to_string()]);
        assert_eq!(t.vocab_size(), 1);
        assert_eq!(t.dim(), 1);
        let mut f = FieldMeta::new("emb", FieldKind::FloatSeq, Role::Modality);
        assert!(f.vocab.is_empty());
        f.max_len = 4;
        assert_eq!(f.dim(), 4);
    }

    #[test]
    fn row_tokens_reads_either_token_kind_without_panics() {
        let s = seq_col(&[&[1, 2], &[], &[3]]);
        assert_eq!(s.row_tokens(0), &[1, 2]);
        assert_eq!(s.row_tokens(1), &[] as &[u32]);
        assert_eq!(s.row_tokens(3), &[] as &[u32]);
        let t = Column::Token(vec![4, 0]);
        assert_eq!(t.row_tokens(0), &[4]);
        assert_eq!(t.row_tokens(1), &[0]);
        assert_eq!(t.row_tokens(2), &[] as &[u32]);
        assert_eq!(Column::Float(vec![1.0]).row_tokens(0), &[] as &[u32]);
    }

    #[test]
    fn column_access_and_take() {
        let c = seq_col(&[&[1, 2], &[], &[3]]);
        assert_eq!(c.len(), 3);
        assert_eq!(c.seq(0), &[1, 2]);
        assert_eq!(c.seq(1), &[] as &[u32]);
        assert_eq!(c.max_seq_len(), 2);
        let t = c.take(&[2, 0, 2]);
        assert_eq!(t, seq_col(&[&[3], &[1, 2], &[3]]));
        let f = Column::Float(vec![0.5, 1.5]);
        assert_eq!(f.float(1), 1.5);
        assert_eq!(f.take(&[1]), Column::Float(vec![1.5]));
        assert_eq!(Column::padding(FieldKind::TokenSeq, 2).len(), 2);
        assert!(Column::empty(FieldKind::FloatSeq).is_empty());
    }

    #[test]
    fn table_push_checks_kind_length_and_name() {
        let mut t = Table::new();
        t.push(
            FieldMeta::new("a", FieldKind::Float, Role::Feature),
            Column::Float(vec![1.0, 2.0]),
        )
        .unwrap();
        assert!(t
            .push(
                FieldMeta::new("b", FieldKind::Token, Role::Feature),
                Column::Float(vec![1.0, 2.0])
            )
            .is_err());
        assert!(t
            .push(
                FieldMeta::new("b", FieldKind::Float, Role::Feature),
                Column::Float(vec![1.0])
            )
            .is_err());
        assert!(t
            .push(
                FieldMeta::new("a", FieldKind::Float, Role::Feature),
                Column::Float(vec![1.0, 3.0])
            )
            .is_err());
        assert_eq!(t.n_rows(), 2);
        assert_eq!(t.field("a").map(|(i, _)| i), Some(0));
        assert!(t.column("zz").is_none());
    }

    fn tiny() -> Dataset {
        let mut inter = Table::new();
        let mut u = FieldMeta::new("user_id", FieldKind::Token, Role::User);
        u.vocab = vec!["a".into(), "b".into(), "c".into()];
        inter.push(u, Column::Token(vec![2, 0, 2, 1])).unwrap();
        let mut i = FieldMeta::new("item_id", FieldKind::Token, Role::Item);
        i.vocab = vec!["x".into(), "y".into()];
        inter.push(i, Column::Token(vec![1, 1, 0, 0])).unwrap();
        inter
            .push(
                FieldMeta::new("rating", FieldKind::Float, Role::Rating),
                Column::Float(vec![5.0, 3.0, 4.0, 1.0]),
            )
            .unwrap();
        let mut items = Table::new();
        let mut g = FieldMeta::new("genre", FieldKind::TokenSeq, Role::Group);
        g.vocab.extend(["comedy".to_string(), "drama".to_string()]);
        g.max_len = 2;
        items.push(g, seq_col(&[&[1], &[1, 2]])).unwrap();
        Dataset {
            name: "tiny".into(),
            inter,
            users: None,
            items: Some(items),
            n_users: 3,
            n_items: 2,
            user_ids: vec!["a".into(), "b".into(), "c".into()],
            item_ids: vec!["x".into(), "y".into()],
            parts: Default::default(),
        }
    }

    #[test]
    fn dataset_accessors_and_stats() {
        let ds = tiny();
        ds.validate().unwrap();
        assert_eq!(ds.user_col(), &[2, 0, 2, 1]);
        assert_eq!(ds.item_col(), &[1, 1, 0, 0]);
        assert_eq!(ds.rating_col(), Some(&[5.0, 3.0, 4.0, 1.0][..]));
        assert_eq!(ds.timestamp_col(), None);
        let groups = ds.items_of_role(Role::Group);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].1.seq(1), &[1, 2]);
        assert!(ds.users_of_role(Role::Feature).is_empty());
        let s = ds.stats();
        assert_eq!((s.n_users, s.n_items, s.n_inter), (3, 2, 4));
        assert!((s.density - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(s.rating_range, Some((1.0, 5.0)));
        assert_eq!(
            s.to_string(),
            "| tiny | 3 | 2 | 4 | 66.6667% | 1.33 | 2.00 |"
        );
        assert!(DatasetStats::HEADER.starts_with("| Dataset |"));
    }

    #[test]
    fn compact_renumbers_by_first_appearance() {
        let ds = tiny().compact();
        ds.validate().unwrap();
        assert_eq!(ds.user_ids, vec!["c", "a", "b"]);
        assert_eq!(ds.user_col(), &[0, 1, 0, 2]);
        assert_eq!(ds.item_ids, vec!["y", "x"]);
        assert_eq!(ds.item_col(), &[0, 0, 1, 1]);
        // item table rows follow the items: new item 0 is old item 1
        let items = ds.items.as_ref().unwrap();
        assert_eq!(items.columns[0].seq(0), &[1, 2]);
        assert_eq!(items.cell_text(0, 0), "comedy drama");
    }

    #[test]
    fn validate_rejects_out_of_range_ids() {
        let mut ds = tiny();
        ds.n_items = 1;
        ds.item_ids.truncate(1);
        assert!(matches!(ds.validate(), Err(DataError::Schema { .. })));
    }
}
