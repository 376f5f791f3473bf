//! What the three history backbones share: parameter checks, the item table
//! shared by the candidate and the history, and the history hook points.
//!
//! Host contract: a backbone with `needs_history` gets the batch inputs
//! `history` `[B, L]` (item ids, oldest first, valid entries left-aligned,
//! padding id 0) and `history_mask` `[B, L]` (1 = valid, 0 = padding). The
//! embed stage turns them into the hook points `history` `[B, L, d]` and
//! `history_mask` `[B, L]`; later stages read the hook points, so an estimator
//! that rewrites them (IV4Rec+) changes what the model sees.

use causalrec_sdk::{
    keep, prepared, BackboneImpl, BackboneInfo, Ctx, Emb, Init, ItemVectors, ParamSpec, Params,
    PreparedVectors, Result, TrainData, Var,
};

/// The table of item embeddings, shared by the candidate and the history.
pub const ITEM_TABLE: &str = "item";

/// `dim` and `init_std`, checked.
pub fn dim_and_std(p: &Params, component: &str) -> Result<(usize, f64)> {
    let dim = p.usize("dim")?;
    if dim == 0 {
        return Err(format!("{component}: parameter 'dim' must be at least 1"));
    }
    let std = p.f64("init_std")?;
    if !(std.is_finite() && std > 0.0) {
        return Err(format!(
            "{component}: parameter 'init_std' must be a positive number, got {std}"
        ));
    }
    Ok((dim, std))
}

/// A positive integer parameter.
pub fn positive(p: &Params, component: &str, name: &str) -> Result<usize> {
    let v = p.usize(name)?;
    if v == 0 {
        return Err(format!(
            "{component}: parameter '{name}' must be at least 1"
        ));
    }
    Ok(v)
}

/// Declare the shared item table.
pub fn declare_items(g: &Ctx<'_, '_>, dim: usize, init_std: f64) {
    let n = g.schema().n_items as usize;
    g.embedding(ITEM_TABLE, n, dim, Init::normal(init_std));
}

/// The hook points `item` (when the batch has a candidate), `history` and
/// `history_mask`, with the candidate and the history read from one table.
pub fn embed_items_and_history(
    g: &Ctx<'_, '_>,
    component: &str,
    dim: usize,
    init_std: f64,
) -> Result<Emb> {
    declare_items(g, dim, init_std);
    check_history_inputs(g, component)?;
    let mut emb = Emb::default();
    // All-ranking batches carry users only.
    if let Some(i) = g.try_input("item") {
        emb.set("item", g.lookup(ITEM_TABLE, i).id);
    }
    emb.set("history", g.lookup(ITEM_TABLE, g.input("history")).id);
    emb.set("history_mask", g.input("history_mask").to_float().id);
    Ok(emb)
}

/// An error unless the batch has the inputs `history` and `history_mask`.
fn check_history_inputs(g: &Ctx<'_, '_>, component: &str) -> Result<()> {
    for name in ["history", "history_mask"] {
        if !g.has_input(name) {
            return Err(format!(
                "{component} reads the user's history, but the batch has no input '{name}' \
                 (the host adds 'history' and 'history_mask' for backbones with needs_history)"
            ));
        }
    }
    Ok(())
}

/// Item representations from fixed item vectors (IV4Rec+'s MIND setting:
/// the item is the BERT embedding of its title and abstract, reduced from
/// 768 to 64 dimensions by a learned linear map, section 6.1): `item` and
/// `history` become `x_i W` (no bias) for the dense item field named by the
/// parameter `item_text`, plus the item's ID embedding when `item_id` is
/// true. The vectors are read once in `prepare`; a step gathers the rows of
/// its batch only.
pub struct ItemText {
    field: String,
    with_id: bool,
    table: PreparedVectors,
}

impl ItemText {
    /// The parameters `item_text` and `item_id`.
    pub fn params() -> Vec<ParamSpec> {
        vec![
            ParamSpec::new(
                "item_text",
                "",
                "a dense item field of fixed item vectors (e.g. text embeddings); when set, the \
                 item representation is a learned linear map of it (plus the ID embedding when \
                 item_id is true). Empty: ID embeddings only",
            ),
            ParamSpec::new(
                "item_id",
                true,
                "with item_text: add the item's ID embedding to the mapped vector",
            ),
        ]
    }

    /// `None` when `item_text` is empty.
    pub fn from_params(p: &Params) -> Result<Option<ItemText>> {
        let field = p.string("item_text")?;
        if field.is_empty() {
            return Ok(None);
        }
        Ok(Some(ItemText {
            field,
            with_id: p.bool("item_id")?,
            table: Default::default(),
        }))
    }

    /// Read the item vectors.
    pub fn prepare(&self, data: &TrainData, component: &str) -> Result<()> {
        let t = ItemVectors::from_data(data, &self.field, component, "item_text")?;
        keep(&self.table, t, component)
    }

    /// The hook points `item` (when the batch has a candidate), `history`
    /// `[B, L, dim]` and `history_mask` from the item vectors.
    pub fn embed(
        &self,
        g: &Ctx<'_, '_>,
        component: &str,
        dim: usize,
        init_std: f64,
    ) -> Result<Emb> {
        let table = prepared(&self.table, component)?;
        let mut emb = if self.with_id {
            embed_items_and_history(g, component, dim, init_std)?
        } else {
            check_history_inputs(g, component)?;
            let mut emb = Emb::default();
            emb.set("history_mask", g.input("history_mask").to_float().id);
            emb
        };
        let w = g.param("item_text.weight", &[table.dim(), dim], Init::XAVIER);
        let mut inputs = vec![("history", g.input("history"))];
        if let Some(i) = g.try_input("item") {
            inputs.push(("item", i));
        }
        for (name, ids) in inputs {
            let mut shape: Vec<i64> = ids.shape().iter().map(|&n| n as i64).collect();
            shape.push(dim as i64);
            let x = table.gather(g, ids)?;
            let mut v = x
                .reshape(&[-1, table.dim() as i64])
                .matmul(w)
                .reshape(&shape);
            if self.with_id {
                v = v + g.get(&emb, name)?;
            }
            emb.set(name, v.id);
        }
        Ok(emb)
    }
}

/// The history hook points `(history [B, L, d], history_mask [B, L])`.
pub fn history<'c>(g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<(Var<'c>, Var<'c>)> {
    Ok((g.get(emb, "history")?, g.get(emb, "history_mask")?))
}

/// 1 where a row of a `[B, L]` 0/1 mask has any valid entry, else 0: `[B]`.
pub fn any_valid(mask: Var<'_>) -> Var<'_> {
    mask.sum(1).clamp(0.0, 1.0)
}

/// What differs between NRHUB and SR-GNN: the user encoder over the hook
/// points. Both score by the inner product with the candidate's embedding.
pub trait UserTower: Send + Sync + 'static {
    /// Embedding size `d`.
    fn dim(&self) -> usize;
    /// Standard deviation of the item table's initialisation.
    fn init_std(&self) -> f64;
    /// The hook points.
    fn embed(&self, g: &Ctx<'_, '_>) -> Result<Emb>;
    /// The user vector `[B, d]` (independent of the candidate).
    fn encode_user<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>>;
}

/// A [`UserTower`] scored by `y = u^T v_i` with the item embedding `v_i`;
/// `score_all` scores every item at once against the item table.
pub struct DotProduct<T>(pub T);

impl<T: UserTower> BackboneImpl for DotProduct<T> {
    fn info(&self) -> BackboneInfo {
        BackboneInfo {
            field_interaction: false,
            score_all: true,
            needs_history: true,
            dim: self.0.dim() as u64,
        }
    }

    fn embed(&self, g: &Ctx<'_, '_>) -> Result<Emb> {
        self.0.embed(g)
    }

    fn encode_user<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        self.0.encode_user(g, emb)
    }

    fn predict<'c>(
        &self,
        _g: &'c Ctx<'_, '_>,
        user: Var<'c>,
        item: Var<'c>,
        _emb: &Emb,
    ) -> Result<Var<'c>> {
        Ok((user * item).sum(-1))
    }

    fn score_all<'c>(&self, g: &'c Ctx<'_, '_>, user: Var<'c>) -> Result<Option<Var<'c>>> {
        declare_items(g, self.0.dim(), self.0.init_std());
        Ok(Some(user.matmul(g.table_all(ITEM_TABLE).transpose(0, 1))))
    }
}
