//! Field-interaction backbones over every feature field of the schema:
//! FM (Rendle 2010) and NFM (He & Chua 2017).
//!
//! Fields: the user id, the item id, and every user/item/context feature field.
//! A token field is one embedding row; a token_seq field (a bag, e.g. genres)
//! is the mean of its rows over the mask; a float field scales a learned vector;
//! a float_seq field is linearly projected. Each field also has a first-order
//! weight. `embed` puts one `[B, d]` entry per field into `emb.fields` and the
//! summed first-order term into `linear`, so an estimator can append fields.

use causalrec_sdk::nn::{Act, Linear, Mlp};
use causalrec_sdk::{
    BackboneImpl, BackboneInfo, ComponentDef, Ctx, Emb, FieldSchema, FieldType, Init, ParamSpec,
    Params, Result, Var,
};

/// Shared field embedding of FM and NFM.
struct FieldEmbedder {
    dim: usize,
    init_std: f64,
    /// Field names to leave out (e.g. the Unawareness baseline drops group fields).
    exclude: Vec<String>,
}

impl FieldEmbedder {
    fn from_params(p: &Params) -> Result<Self> {
        let exclude = p.string("exclude")?;
        Ok(FieldEmbedder {
            dim: p.usize("dim")?,
            init_std: p.f64("init_std")?,
            exclude: exclude
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        })
    }

    fn used_fields(&self, g: &Ctx<'_, '_>) -> Vec<FieldSchema> {
        g.schema()
            .fields
            .into_iter()
            .filter(|f| !self.exclude.iter().any(|e| e == f.name.as_str()))
            .filter(|f| g.has_input(f.name.as_str()))
            .collect()
    }

    /// One `[B, d]` vector and one `[B]` first-order term of a field.
    fn field<'c>(&self, g: &'c Ctx<'_, '_>, f: &FieldSchema) -> (Var<'c>, Var<'c>) {
        let name = f.name.as_str();
        let (emb, lin) = (format!("emb.{name}"), format!("lin.{name}"));
        let x = g.input(name);
        match f.ty {
            FieldType::Token => {
                g.embedding(
                    &emb,
                    f.vocab as usize,
                    self.dim,
                    Init::normal(self.init_std),
                );
                g.embedding(&lin, f.vocab as usize, 1, Init::ZEROS);
                (g.lookup(&emb, x), g.lookup(&lin, x).squeeze(-1))
            }
            FieldType::TokenSeq => {
                g.embedding(
                    &emb,
                    f.vocab as usize,
                    self.dim,
                    Init::normal(self.init_std),
                );
                g.embedding(&lin, f.vocab as usize, 1, Init::ZEROS);
                let mask = g.input(&format!("{name}.mask"));
                let count = mask.sum_keepdim(1).clamp(1.0, f64::INFINITY);
                let m = mask.unsqueeze(-1);
                let v = (g.lookup(&emb, x) * m).sum(1) / count;
                let l = (g.lookup(&lin, x).squeeze(-1) * mask).sum(1) / count.squeeze(1);
                (v, l)
            }
            FieldType::Float => {
                let v = g.param(&emb, &[1, self.dim], Init::normal(self.init_std));
                let w = g.param(&lin, &[1], Init::ZEROS);
                (x.unsqueeze(-1) * v, x * w)
            }
            FieldType::FloatSeq => {
                let proj = Linear::new(&emb, f.dim as usize, self.dim).no_bias();
                let w = Linear::new(&lin, f.dim as usize, 1).no_bias();
                (proj.forward(g, x), w.forward(g, x).squeeze(-1))
            }
        }
    }

    fn embed(&self, g: &Ctx<'_, '_>) -> Result<Emb> {
        let s = g.schema();
        g.embedding(
            "emb.user",
            s.n_users as usize,
            self.dim,
            Init::normal(self.init_std),
        );
        g.embedding(
            "emb.item",
            s.n_items as usize,
            self.dim,
            Init::normal(self.init_std),
        );
        g.embedding("lin.user", s.n_users as usize, 1, Init::ZEROS);
        g.embedding("lin.item", s.n_items as usize, 1, Init::ZEROS);
        let mut emb = Emb::default();
        let u = g.input("user");
        let user = g.lookup("emb.user", u);
        emb.set("user", user.id);
        emb.push_field("user", user.id);
        let mut linear = g.lookup("lin.user", u).squeeze(-1);
        if let Some(i) = g.try_input("item") {
            let item = g.lookup("emb.item", i);
            emb.set("item", item.id);
            emb.push_field("item", item.id);
            linear = linear + g.lookup("lin.item", i).squeeze(-1);
        }
        for f in self.used_fields(g) {
            let (v, l) = self.field(g, &f);
            emb.push_field(f.name.as_str(), v.id);
            linear = linear + l;
        }
        emb.set("linear", linear.id);
        Ok(emb)
    }

    /// Bi-interaction pooling `0.5 * ((sum v)^2 - sum v^2)`: `[B, d]`.
    fn bi_interaction<'c>(g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        if emb.fields.is_empty() {
            return Err("no fields to interact".into());
        }
        let vs: Vec<Var<'c>> = emb.fields.iter().map(|f| g.var(f.var)).collect();
        let stacked = g.stack(&vs, 1);
        let sum = stacked.sum(1);
        Ok((sum.square() - stacked.square().sum(1)) * 0.5)
    }

    /// Sum of the fields of one side (user- or item-side representation).
    fn side_sum<'c>(g: &'c Ctx<'_, '_>, emb: &Emb, side: &str) -> Result<Var<'c>> {
        let vs: Vec<Var<'c>> = emb
            .fields
            .iter()
            .filter(|f| f.name.as_str() == side || f.name.as_str().starts_with(&format!("{side}.")))
            .map(|f| g.var(f.var))
            .collect();
        if vs.is_empty() {
            return Err(format!("no {side} fields in the hook point"));
        }
        Ok(g.stack(&vs, 1).sum(1))
    }
}

fn field_params(dim: usize) -> Vec<ParamSpec> {
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

/// FM: `y = b + sum_f w_f + 0.5 * sum_d ((sum_f v_f)^2 - sum_f v_f^2)`.
pub struct Fm {
    fields: FieldEmbedder,
}

pub fn fm_def() -> ComponentDef {
    ComponentDef::backbone(
        "fm",
        "Factorization machine (Rendle 2010) over user, item and feature fields",
        field_params(64),
        |p| {
            Ok(Fm {
                fields: FieldEmbedder::from_params(p)?,
            })
        },
    )
}

impl BackboneImpl for Fm {
    fn info(&self) -> BackboneInfo {
        BackboneInfo {
            field_interaction: true,
            score_all: false,
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
        self.predict_fields(g, emb)
    }
    fn predict_fields<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        let b = g.param("bias", &[1], Init::ZEROS);
        Ok(FieldEmbedder::bi_interaction(g, emb)?.sum(-1) + g.get(emb, "linear")? + b)
    }
}

/// NFM: `y = b + sum_f w_f + h^T MLP(dropout(f_BI))`.
pub struct Nfm {
    fields: FieldEmbedder,
    layers: Vec<usize>,
    dropout: f64,
    bi_dropout: f64,
}

pub fn nfm_def() -> ComponentDef {
    let mut specs = field_params(64);
    specs.push(ParamSpec::new(
        "layers",
        vec![64usize],
        "hidden layer sizes of the MLP above bi-interaction pooling",
    ));
    specs.push(ParamSpec::new(
        "dropout",
        0.2,
        "dropout rate of the hidden layers",
    ));
    specs.push(ParamSpec::new(
        "bi_dropout",
        0.5,
        "dropout rate on the bi-interaction vector",
    ));
    ComponentDef::backbone(
        "nfm",
        "Neural factorization machine (He & Chua 2017): bi-interaction pooling + MLP",
        specs,
        |p| {
            Ok(Nfm {
                fields: FieldEmbedder::from_params(p)?,
                layers: p.usize_list("layers")?,
                dropout: p.rate("dropout")?,
                bi_dropout: p.rate("bi_dropout")?,
            })
        },
    )
}

impl BackboneImpl for Nfm {
    fn info(&self) -> BackboneInfo {
        BackboneInfo {
            field_interaction: true,
            score_all: false,
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
        self.predict_fields(g, emb)
    }
    fn predict_fields<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        let bi = FieldEmbedder::bi_interaction(g, emb)?.dropout(self.bi_dropout);
        let mut sizes = vec![self.fields.dim];
        sizes.extend(&self.layers);
        let hidden = Mlp::new("mlp", &sizes, Act::Relu, self.dropout).forward(g, bi);
        let out = Linear::new("out", *sizes.last().unwrap_or(&self.fields.dim), 1).no_bias();
        let b = g.param("bias", &[1], Init::ZEROS);
        Ok(out.forward(g, hidden).squeeze(-1) + g.get(emb, "linear")? + b)
    }
}
