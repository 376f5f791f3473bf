//! The field embedding shared by the field-interaction backbones (FM, NFM in
//! `fm.rs`, DCN in `dcn.rs`) and the backbone they all build on it.
//!
//! Fields: the user id, the item id, and every user/item/context feature field
//! the batch carries. A token field is one embedding row (one-hot); a
//! token_seq field (a bag, e.g. genres) is the mean of its rows over the mask
//! (multi-hot, normalised); a float field scales a learned vector (`x v`); a
//! float_seq field is linearly projected (`W x`). Each field also has a
//! first-order weight. `embed` puts one `[B, d]` entry per field into
//! `emb.fields` and the summed first-order term into `linear`, so an
//! estimator can append fields before `predict_fields`.

use causalrec_sdk::component::catalog_input;
use causalrec_sdk::nn::Linear;
use causalrec_sdk::{
    BackboneImpl, BackboneInfo, ComponentDef, Ctx, Emb, FieldSchema, FieldSide, FieldType, Init,
    ParamSpec, Params, Result, Var,
};

/// Shared field embedding of FM, NFM and DCN.
pub struct FieldEmbedder {
    pub dim: usize,
    init_std: f64,
    /// Field names to leave out (e.g. the Unawareness baseline drops group fields).
    exclude: Vec<String>,
}

/// Split a comma-separated list of names (empty entries dropped).
fn name_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

impl FieldEmbedder {
    fn from_params(p: &Params) -> Result<Self> {
        let dim = p.usize("dim")?;
        if dim == 0 {
            return Err("parameter 'dim' (field embedding size) must be at least 1".into());
        }
        Ok(FieldEmbedder {
            dim,
            init_std: crate::check::std_dev(p, "init_std")?,
            exclude: name_list(&p.string("exclude")?),
        })
    }

    /// The schema's feature fields not excluded, in schema order.
    fn schema_fields(&self, g: &Ctx<'_, '_>) -> Vec<FieldSchema> {
        g.schema()
            .fields
            .into_iter()
            .filter(|f| !self.exclude.iter().any(|e| e == f.name.as_str()))
            .collect()
    }

    /// One `[B, d]` vector and one `[B]` first-order term of a field.
    fn field<'c>(&self, g: &'c Ctx<'_, '_>, f: &FieldSchema) -> (Var<'c>, Var<'c>) {
        self.field_from(g, f, f.name.as_str())
    }

    /// [`FieldEmbedder::field`] with the field's values read from the
    /// input `input` (and `<input>.mask`) instead of the field's own name.
    fn field_from<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        f: &FieldSchema,
        input: &str,
    ) -> (Var<'c>, Var<'c>) {
        let name = f.name.as_str();
        let (emb, lin) = (format!("emb.{name}"), format!("lin.{name}"));
        let x = g.input(input);
        let tables = || {
            let vocab = f.vocab as usize;
            g.embedding(&emb, vocab, self.dim, Init::normal(self.init_std));
            g.embedding(&lin, vocab, 1, Init::ZEROS);
        };
        match f.ty {
            FieldType::Token => {
                tables();
                (g.lookup(&emb, x), g.lookup(&lin, x).squeeze(-1))
            }
            FieldType::TokenSeq => {
                tables();
                let mask = g.input(&format!("{input}.mask"));
                let count = mask.sum_keepdim(1).clamp(1.0, f64::INFINITY);
                let v = (g.lookup(&emb, x) * mask.unsqueeze(-1)).sum(1) / count;
                let l = (g.lookup(&lin, x).squeeze(-1) * mask).sum(1) / count.squeeze(1);
                (v, l)
            }
            FieldType::Float => {
                let v = g.param(&emb, &[1, self.dim], Init::normal(self.init_std));
                let w = g.param(&lin, &[1], Init::ZEROS);
                (x.unsqueeze(-1) * v, x * w)
            }
            FieldType::FloatSeq => {
                // The host pads a float_seq input to at least one column.
                let width = (f.dim as usize).max(1);
                let proj = Linear::new(&emb, width, self.dim).no_bias();
                let w = Linear::new(&lin, width, 1).no_bias();
                (proj.forward(g, x), w.forward(g, x).squeeze(-1))
            }
        }
    }

    /// The hook-point map: `user`, `item` (when the batch has items),
    /// one entry per field in `fields`, and the first-order sum `linear`.
    pub fn embed(&self, g: &Ctx<'_, '_>) -> Result<Emb> {
        let s = g.schema();
        let init = Init::normal(self.init_std);
        g.embedding("emb.user", s.n_users as usize, self.dim, init);
        g.embedding("emb.item", s.n_items as usize, self.dim, init);
        g.embedding("lin.user", s.n_users as usize, 1, Init::ZEROS);
        g.embedding("lin.item", s.n_items as usize, 1, Init::ZEROS);
        let mut emb = Emb::default();
        let u = g.input("user");
        let user = g.lookup("emb.user", u);
        emb.set("user", user.id);
        emb.push_field("user", user.id);
        let mut linear = g.lookup("lin.user", u).squeeze(-1);
        // All-ranking batches carry users (and user features) only.
        if let Some(i) = g.try_input("item") {
            let item = g.lookup("emb.item", i);
            emb.set("item", item.id);
            emb.push_field("item", item.id);
            linear = linear + g.lookup("lin.item", i).squeeze(-1);
        }
        for f in self.schema_fields(g) {
            if g.has_input(f.name.as_str()) {
                let (v, l) = self.field(g, &f);
                emb.push_field(f.name.as_str(), v.id);
                linear = linear + l;
            }
        }
        emb.set("linear", linear.id);
        Ok(emb)
    }

    /// The item side of every item, for all-ranking: the sum of each
    /// item's fields (its id's and its features', read from the batch's
    /// `catalog.<field>` inputs, e.g. `catalog.item.genre`) `[n_items, d]`,
    /// and its first-order terms plus the pairwise interactions among its
    /// own fields `[n_items]`. `None` when an item field in use has no
    /// catalog input.
    pub fn catalog_items<'c>(&self, g: &'c Ctx<'_, '_>) -> Result<Option<(Var<'c>, Var<'c>)>> {
        let mut vs = vec![g.table_all("emb.item")];
        let mut terms = g.table_all("lin.item").squeeze(-1);
        for f in self.schema_fields(g) {
            if f.side != FieldSide::Item {
                continue;
            }
            let input = catalog_input(f.name.as_str());
            if !g.has_input(&input) {
                return Ok(None);
            }
            let (v, l) = self.field_from(g, &f, &input);
            vs.push(v);
            terms = terms + l;
        }
        if vs.len() > 1 {
            terms = terms + g.bi_interaction(&vs).sum(-1);
        }
        let sum = if vs.len() > 1 {
            g.stack(&vs, 1).sum(1)
        } else {
            vs[0]
        };
        Ok(Some((sum, terms)))
    }

    /// The fields of the hook point, `[B, d]` each; an error when there are none.
    pub fn fields<'c>(g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Vec<Var<'c>>> {
        if emb.fields.is_empty() {
            return Err("the hook point has no fields to interact".into());
        }
        Ok(emb.fields.iter().map(|f| g.var(f.var)).collect())
    }

    /// Bi-interaction pooling `0.5 * ((sum v)^2 - sum v^2)`: `[B, d]`.
    pub fn bi_interaction<'c>(g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        Ok(g.bi_interaction(&Self::fields(g, emb)?))
    }

    /// Sum of the fields of one side (user- or item-side representation).
    pub fn side_sum<'c>(g: &'c Ctx<'_, '_>, emb: &Emb, side: &str) -> Result<Var<'c>> {
        let prefix = format!("{side}.");
        let vs: Vec<Var<'c>> = emb
            .fields
            .iter()
            .filter(|f| f.name.as_str() == side || f.name.as_str().starts_with(&prefix))
            .map(|f| g.var(f.var))
            .collect();
        if vs.is_empty() {
            return Err(format!("no {side} fields in the hook point"));
        }
        Ok(g.stack(&vs, 1).sum(1))
    }
}

/// The parameters of the field embedding, `dim` defaulting to `dim`.
pub fn field_params(dim: usize) -> Vec<ParamSpec> {
    vec![
        ParamSpec::new("dim", dim, "embedding size d of every field"),
        ParamSpec::new(
            "init_std",
            0.01,
            "standard deviation of the normal initialisation",
        ),
        ParamSpec::new(
            "exclude",
            "",
            "comma-separated feature fields to leave out (e.g. item.genre)",
        ),
    ]
}

/// What a field-interaction model puts on top of the field embedding.
pub trait FieldHead: Sized + Send + Sync + 'static {
    /// The model's own parameters (validated).
    fn from_params(p: &Params) -> Result<Self>;
    /// One logit per example from the fields of the hook point.
    fn logit<'c>(&self, g: &'c Ctx<'_, '_>, fields: &FieldEmbedder, emb: &Emb) -> Result<Var<'c>>;
    /// Whether [`FieldHead::score_all`] may score every item at once.
    fn scores_all(&self) -> bool {
        false
    }
    /// Scores of every item for the users of an all-ranking batch
    /// (`user`: the summed user-side fields).
    fn score_all<'c>(
        &self,
        _g: &'c Ctx<'_, '_>,
        _fields: &FieldEmbedder,
        _user: Var<'c>,
    ) -> Result<Option<Var<'c>>> {
        Ok(None)
    }
}

/// A field-interaction backbone: the shared field embedding and a head.
/// `encode_user` / `encode_item` are the sums of each side's fields.
pub struct FieldBackbone<H> {
    fields: FieldEmbedder,
    head: H,
}

/// The component `name` of head `H`, with the field parameters (`dim`
/// defaulting to `dim`) followed by `more`.
pub fn field_def<H: FieldHead>(
    name: &str,
    description: &str,
    dim: usize,
    more: Vec<ParamSpec>,
) -> ComponentDef {
    let mut specs = field_params(dim);
    specs.extend(more);
    ComponentDef::backbone(name, description, specs, |p| {
        Ok(FieldBackbone {
            fields: FieldEmbedder::from_params(p)?,
            head: H::from_params(p)?,
        })
    })
}

impl<H: FieldHead> BackboneImpl for FieldBackbone<H> {
    fn info(&self) -> BackboneInfo {
        BackboneInfo {
            field_interaction: true,
            score_all: self.head.scores_all(),
            needs_history: false,
            dim: self.fields.dim as u64,
        }
    }
    fn embed(&self, g: &Ctx<'_, '_>) -> Result<Emb> {
        self.fields.embed(g)
    }
    fn encode_user<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        FieldEmbedder::side_sum(g, emb, "user")
    }
    fn encode_item<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        FieldEmbedder::side_sum(g, emb, "item")
    }
    fn predict<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        _u: Var<'c>,
        _i: Var<'c>,
        emb: &Emb,
    ) -> Result<Var<'c>> {
        self.head.logit(g, &self.fields, emb)
    }
    fn predict_fields<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        self.head.logit(g, &self.fields, emb)
    }
    fn score_all<'c>(&self, g: &'c Ctx<'_, '_>, user: Var<'c>) -> Result<Option<Var<'c>>> {
        self.head.score_all(g, &self.fields, user)
    }
}

#[cfg(test)]
mod tests {
    use super::name_list;

    #[test]
    fn exclude_lists_drop_blanks() {
        assert_eq!(
            name_list(" item.genre, ,user.age,"),
            ["item.genre", "user.age"]
        );
        assert!(name_list("").is_empty());
    }
}
