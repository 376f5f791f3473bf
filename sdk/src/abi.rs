//! The `#[repr(C)]` value types that cross the plugin boundary.

use abi_stable::{
    std_types::{RString, RVec},
    StableAbi,
};

/// A handle to a tensor owned by the host graph of the current step.
#[repr(transparent)]
#[derive(StableAbi, Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct VarId(pub u32);

/// One op call: see [`crate::ops`] for the codes and the meaning of the attributes.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct OpCall {
    pub code: u32,
    pub inputs: RVec<VarId>,
    pub ints: RVec<i64>,
    pub floats: RVec<f64>,
}

/// Initialisation of a declared parameter or embedding table.
#[repr(u8)]
#[derive(StableAbi, Copy, Clone, Debug, PartialEq)]
pub enum InitKind {
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// Normal with mean 0 and standard deviation `scale`.
    Normal,
    /// Uniform in `[-scale, scale]`.
    Uniform,
    /// Glorot/Xavier uniform: bound `sqrt(6 / (fan_in + fan_out))` (last two dims).
    Xavier,
    /// All equal to `scale`.
    Constant,
}

/// An initialiser: a kind and its scale.
#[repr(C)]
#[derive(StableAbi, Copy, Clone, Debug, PartialEq)]
pub struct Init {
    pub kind: InitKind,
    pub scale: f64,
}

impl Init {
    pub const ZEROS: Init = Init {
        kind: InitKind::Zeros,
        scale: 0.0,
    };
    pub const ONES: Init = Init {
        kind: InitKind::Ones,
        scale: 1.0,
    };
    pub const XAVIER: Init = Init {
        kind: InitKind::Xavier,
        scale: 1.0,
    };
    /// Normal(0, std).
    pub fn normal(std: f64) -> Init {
        Init {
            kind: InitKind::Normal,
            scale: std,
        }
    }
    /// Uniform(-bound, bound).
    pub fn uniform(bound: f64) -> Init {
        Init {
            kind: InitKind::Uniform,
            scale: bound,
        }
    }
    /// Every element equal to `value`.
    pub fn constant(value: f64) -> Init {
        Init {
            kind: InitKind::Constant,
            scale: value,
        }
    }
}

/// What a component is.
#[repr(u8)]
#[derive(StableAbi, Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ComponentKind {
    Backbone,
    Estimator,
    Loss,
}

impl ComponentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Backbone => "backbone",
            ComponentKind::Estimator => "estimator",
            ComponentKind::Loss => "loss",
        }
    }
}

/// One parameter of a component's schema, as it crosses the boundary.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct ParamInfo {
    pub name: RString,
    /// The default value as RON text.
    pub default_ron: RString,
    pub help: RString,
}

/// The description of one component a plugin exports.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct ComponentInfo {
    pub kind: ComponentKind,
    pub name: RString,
    pub description: RString,
    pub params: RVec<ParamInfo>,
    /// Estimators: the quantity the estimator targets (the estimand), in a
    /// sentence; printed by `host plugins` and at the top of a run's report.
    /// Empty when not declared.
    pub estimand: RString,
}

/// Which side of the interaction a feature field describes.
#[repr(u8)]
#[derive(StableAbi, Copy, Clone, Debug, PartialEq, Eq)]
pub enum FieldSide {
    User,
    Item,
    Context,
}

/// The storage kind of a feature field.
#[repr(u8)]
#[derive(StableAbi, Copy, Clone, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// One categorical id per example: input `[B]` integers.
    Token,
    /// A bag of categorical ids: input `[B, L]` integers and `<name>.mask` `[B, L]` floats.
    TokenSeq,
    /// One float per example: `[B]`.
    Float,
    /// A dense vector per example: `[B, dim]`.
    FloatSeq,
}

/// A feature field of the data set, as the batches deliver it.
///
/// The batch input of a field is named `name` (for example `item.genre`); id 0 is padding.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct FieldSchema {
    pub name: RString,
    pub side: FieldSide,
    pub ty: FieldType,
    /// The field's role: `feature`, `group`, `proxy`, `exposure`, `modality`, `query`, ...
    pub role: RString,
    /// Vocabulary size including padding id 0 (token fields), else 0.
    pub vocab: u64,
    /// Width of a FloatSeq field, else 1.
    pub dim: u64,
}

/// What the host tells components about the data.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct Schema {
    pub n_users: u64,
    pub n_items: u64,
    pub fields: RVec<FieldSchema>,
    /// Maximum history length of the `history` input (0 when histories are not built).
    pub history_len: u64,
}

/// A named handle: an entry of a hook point's map.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct NamedVar {
    pub name: RString,
    pub var: VarId,
}

/// The output of a backbone's `embed` stage: the hook point estimators rewrite.
///
/// `vars` holds the standard names (see [`crate::component`]):
/// `user`, `item`, `history`, `history_mask`, `user_bias`, `item_bias`, `linear`, `modality:<name>`,
/// `user_modality:<name>`; in all-ranking batches optionally `all_item`, `all_modality:<name>`.
/// `fields` holds one `[B, d]` embedding per field for field-interaction models
/// (FM, NFM, DCN); an estimator may append a field (the DecRS backdoor field).
#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default)]
pub struct Emb {
    pub vars: RVec<NamedVar>,
    pub fields: RVec<NamedVar>,
}

impl Emb {
    /// The handle named `name`, if present.
    pub fn get(&self, name: &str) -> Option<VarId> {
        self.vars
            .iter()
            .find(|v| v.name.as_str() == name)
            .map(|v| v.var)
    }
    /// Insert or replace the handle named `name`.
    pub fn set(&mut self, name: &str, var: VarId) {
        match self.vars.iter_mut().find(|v| v.name.as_str() == name) {
            Some(slot) => slot.var = var,
            None => self.vars.push(NamedVar {
                name: name.into(),
                var,
            }),
        }
    }
    /// Append a field for field-interaction models.
    pub fn push_field(&mut self, name: &str, var: VarId) {
        self.fields.push(NamedVar {
            name: name.into(),
            var,
        });
    }
    /// Names of the entries, for error messages.
    pub fn names(&self) -> Vec<String> {
        self.vars.iter().map(|v| v.name.to_string()).collect()
    }
}

/// What a backbone can do, so estimators and the host pick the right path.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct BackboneInfo {
    /// `predict_fields` is implemented (field-interaction model).
    pub field_interaction: bool,
    /// `score_all` is implemented.
    pub score_all: bool,
    /// The model reads the `history` input (sequential / attention models).
    pub needs_history: bool,
    /// Width of the `user`/`item` representations.
    pub dim: u64,
}

/// One column of the interaction table as components see it in `prepare`.
///
/// Token columns fill `tokens` (and `vocab`, where `vocab[id]` is the raw
/// token; id 0 is padding), float columns fill `floats`, exact timestamps
/// fill `doubles`; sequence columns also fill `offsets` (row `r` is
/// `values[offsets[r]..offsets[r + 1]]`).
#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default)]
pub struct DataColumn {
    pub name: RString,
    /// The field's role (`label`, `position`, `propensity`, `group`, ...).
    pub role: RString,
    pub vocab: RVec<RString>,
    pub tokens: RVec<u32>,
    pub floats: RVec<f32>,
    pub doubles: RVec<f64>,
    pub offsets: RVec<u32>,
}

impl DataColumn {
    /// A float_seq item column as a dense `n x width` matrix (row `i` =
    /// item `i`), checked: one row per item, the same width on every row,
    /// finite values. Errors start with `what` (e.g. "mmgcn: modality 'genre'").
    pub fn dense_rows(&self, n: usize, what: &str) -> Result<(usize, Vec<f32>), String> {
        if self.offsets.len() != n + 1 {
            return Err(format!(
                "{what} must be a float_seq item field with one row per item \
                 ({n} items), got {} row offsets",
                self.offsets.len()
            ));
        }
        let dim = (self.offsets[1] - self.offsets[0]) as usize;
        if dim == 0 {
            return Err(format!("{what} has zero width"));
        }
        for (i, w) in self.offsets.windows(2).enumerate() {
            if (w[1] - w[0]) as usize != dim || w[0] as usize != i * dim {
                return Err(format!(
                    "{what} must have the same width on every item: item 0 has {dim}, item {i} has {}",
                    w[1].saturating_sub(w[0])
                ));
            }
        }
        if self.floats.len() != n * dim {
            return Err(format!(
                "{what} holds {} values, expected {n} x {dim}",
                self.floats.len()
            ));
        }
        if let Some(k) = self.floats.iter().position(|x| !x.is_finite()) {
            return Err(format!(
                "{what} has a non-finite value at item {} (position {})",
                k / dim,
                k % dim
            ));
        }
        Ok((dim, self.floats.to_vec()))
    }

    /// The id of token `raw` in this column's vocabulary.
    pub fn token_id(&self, raw: &str) -> Option<u32> {
        self.vocab
            .iter()
            .position(|v| v.as_str() == raw)
            .map(|i| i as u32)
    }
}

/// A named set of interaction rows (a part of the data: `train`, `train_rct`, ...).
#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default)]
pub struct DataPart {
    pub name: RString,
    pub rows: RVec<u32>,
}

/// The data a component may study before training (`prepare`): the whole
/// interaction table (ids, labels, other columns) and its named parts. The
/// part `train` always holds the rows training uses, `train_positive` its
/// positives (the edges of graph backbones in implicit-feedback runs; every
/// training row with `train_positives: "all"`), `train_like` the liked ones
/// among those (at or above `positive_threshold`). Components must not
/// read the labels of rows outside the training parts (the host passes
/// them because parts such as CTAR's `train_rct` overlap `train`).
#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default)]
pub struct TrainData {
    pub n_users: u64,
    pub n_items: u64,
    pub user: RVec<u32>,
    pub item: RVec<u32>,
    /// The training label of every row; empty in implicit-feedback runs.
    pub label: RVec<f32>,
    /// The other columns of the interaction table.
    pub inter: RVec<DataColumn>,
    /// Item feature columns (row `i` = item `i`).
    pub items: RVec<DataColumn>,
    pub parts: RVec<DataPart>,
}

impl TrainData {
    /// The rows of part `name`.
    pub fn part(&self, name: &str) -> Option<&[u32]> {
        self.parts
            .iter()
            .find(|p| p.name.as_str() == name)
            .map(|p| p.rows.as_slice())
    }
    /// The rows of part `name`, or an error listing the parts there are.
    pub fn require_part(&self, name: &str) -> Result<&[u32], String> {
        self.part(name).ok_or_else(|| {
            format!(
                "the data has no part '{name}' (parts: {})",
                self.parts
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }
    /// The interaction column `name`, or an error listing the columns.
    pub fn column(&self, name: &str) -> Result<&DataColumn, String> {
        self.inter
            .iter()
            .find(|c| c.name.as_str() == name)
            .ok_or_else(|| {
                format!(
                    "the interaction table has no column '{name}' (columns: {})",
                    self.inter
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}
