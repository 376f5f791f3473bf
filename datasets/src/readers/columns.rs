//! The column builders the readers share: dense ids by first appearance
//! ([`IdIndex`]), token and token-list columns that intern tokens the way
//! [`crate::atomic`] does (id 0 = [`crate::table::PAD`]), feature tables
//! aligned with the dense ids ([`FeatureTable`]), the interaction id
//! columns ([`InterBuilder`]) and the final, validated [`Dataset`].
//!
//! Readers parse everything into these builders and make the [`Dataset`]
//! only at the end, so an error never leaves a half-loaded data set.

use std::collections::{BTreeMap, HashMap};

use super::delimited::Record;
use crate::atomic::intern;
use crate::error::{DataError, Result};
use crate::table::{Column, Dataset, FieldKind, FieldMeta, Role, Table};

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

    /// The dense id of `raw`, numbering it if new, for readers that do not
    /// report where ids were first seen.
    pub(crate) fn id(&mut self, raw: &str) -> u32 {
        self.intern(raw, 0, 0)
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

/// A token column under construction (id 0 = padding / empty cell).
pub(crate) struct TokenCol {
    meta: FieldMeta,
    index: HashMap<String, u32>,
    ids: Vec<u32>,
}

impl TokenCol {
    pub(crate) fn new(name: &str, role: Role) -> TokenCol {
        TokenCol::with_meta(FieldMeta::new(name, FieldKind::Token, role))
    }

    fn with_meta(meta: FieldMeta) -> TokenCol {
        TokenCol {
            meta,
            index: HashMap::new(),
            ids: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, tok: &str) {
        let id = intern(&mut self.index, &mut self.meta.vocab, tok);
        self.ids.push(id);
    }

    pub(crate) fn finish(self) -> (FieldMeta, Column) {
        (self.meta, Column::Token(self.ids))
    }
}

/// A token-list column under construction; empty tokens are skipped.
pub(crate) struct SeqCol {
    meta: FieldMeta,
    index: HashMap<String, u32>,
    offsets: Vec<u32>,
    values: Vec<u32>,
}

impl SeqCol {
    pub(crate) fn new(name: &str, role: Role) -> SeqCol {
        SeqCol::with_meta(FieldMeta::new(name, FieldKind::TokenSeq, role))
    }

    fn with_meta(meta: FieldMeta) -> SeqCol {
        SeqCol {
            meta,
            index: HashMap::new(),
            offsets: vec![0],
            values: Vec::new(),
        }
    }

    /// Adds a row holding `toks`, in order.
    pub(crate) fn push<'a>(&mut self, toks: impl IntoIterator<Item = &'a str>) {
        self.push_row(toks, false);
    }

    /// Adds a row holding `toks`, a repeated token kept once.
    pub(crate) fn push_set<'a>(&mut self, toks: impl IntoIterator<Item = &'a str>) {
        self.push_row(toks, true);
    }

    fn push_row<'a>(&mut self, toks: impl IntoIterator<Item = &'a str>, unique: bool) {
        let start = self.values.len();
        for t in toks {
            let id = intern(&mut self.index, &mut self.meta.vocab, t);
            if id != 0 && !(unique && self.values[start..].contains(&id)) {
                self.values.push(id);
            }
        }
        self.meta.max_len = self.meta.max_len.max(self.values.len() - start);
        self.offsets.push(self.values.len() as u32);
    }

    pub(crate) fn finish(self) -> (FieldMeta, Column) {
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

/// The data set of these parts (`user_ids` / `item_ids`: the raw id of
/// each dense id), validated (an error here is a reader bug,
/// reported rather than panicking).
pub(crate) fn dataset(
    name: &str,
    inter: Table,
    users: Option<Table>,
    items: Option<Table>,
    user_ids: Vec<String>,
    item_ids: Vec<String>,
    parts: BTreeMap<String, Vec<usize>>,
) -> Result<Dataset> {
    let ds = Dataset {
        name: name.to_string(),
        inter,
        users,
        items,
        n_users: user_ids.len(),
        n_items: item_ids.len(),
        user_ids,
        item_ids,
        parts,
    };
    ds.validate()?;
    Ok(ds)
}

/// One column of a [`FeatureTable`] under construction.
enum Col {
    Token(TokenCol),
    Seq(SeqCol),
}

/// A user or item feature table under construction: one row per line of
/// the feature file whose id occurs in the interactions, aligned with the
/// dense ids at the end.
pub(crate) struct FeatureTable {
    file: String,
    id_column: String,
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
            .into_iter()
            .map(|f| {
                debug_assert!(f.kind.is_token(), "feature field {} is {}", f.name, f.kind);
                if f.kind.is_seq() {
                    Col::Seq(SeqCol::with_meta(f))
                } else {
                    Col::Token(TokenCol::with_meta(f))
                }
            })
            .collect();
        FeatureTable {
            file: file.to_string(),
            id_column: id_column.to_string(),
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
        if let Col::Token(col) = &mut self.cols[f] {
            col.push(tok.trim());
        }
    }

    /// Sets field `f` (a token_seq field) of the current row; empty tokens
    /// are skipped, a repeated token is kept once.
    pub(crate) fn seq<'s>(&mut self, f: usize, toks: impl IntoIterator<Item = &'s str>) {
        if let Col::Seq(col) = &mut self.cols[f] {
            col.push_set(toks.into_iter().map(str::trim));
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
        if self.cols.is_empty() {
            return None;
        }
        let mut table = Table::new();
        for col in self.cols {
            let (mut meta, col) = match col {
                Col::Token(c) => c.finish(),
                Col::Seq(c) => c.finish(),
            };
            let col = col.take_or_pad(&self.row_of);
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
        let mut cols = vec![
            id_field(user_field, Role::User, self.user_col, &self.users.raw),
            id_field(item_field, Role::Item, self.item_col, &self.items.raw),
        ];
        cols.extend(extra);
        let inter = table(cols)?;
        dataset(
            name,
            inter,
            users,
            items,
            self.users.raw,
            self.items.raw,
            parts,
        )
    }
}
