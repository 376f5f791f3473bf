//! A minimal third-party plugin: a generalized matrix factorisation backbone
//! (`gmf`: `h^T (p_u * q_i)`, the GMF tower of NCF) and a weighted squared
//! hinge loss, built against `causalrec-sdk` only.
//!
//! Build: `cargo build -p causalrec-example-plugin`, then
//! `host plugins --plugin-dir target/debug` lists `example`.

#![allow(non_local_definitions)]

use causalrec_sdk::{
    BackboneImpl, BackboneInfo, ComponentDef, Ctx, Emb, Init, LossImpl, ParamSpec, Result, Var,
};

struct Gmf {
    dim: usize,
}

impl BackboneImpl for Gmf {
    fn info(&self) -> BackboneInfo {
        BackboneInfo {
            field_interaction: false,
            score_all: false,
            needs_history: false,
            dim: self.dim as u64,
        }
    }
    fn embed(&self, g: &Ctx<'_, '_>) -> Result<Emb> {
        let s = g.schema();
        g.embedding("p", s.n_users as usize, self.dim, Init::normal(0.1));
        g.embedding("q", s.n_items as usize, self.dim, Init::normal(0.1));
        let mut emb = Emb::default();
        emb.set("user", g.lookup("p", g.input("user")).id);
        emb.set("item", g.lookup("q", g.input("item")).id);
        Ok(emb)
    }
    fn encode_user<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        g.get(emb, "user")
    }
    fn encode_item<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        g.get(emb, "item")
    }
    fn predict<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        u: Var<'c>,
        i: Var<'c>,
        _emb: &Emb,
    ) -> Result<Var<'c>> {
        let h = g.param("h", &[self.dim, 1], Init::constant(1.0));
        Ok((u * i).matmul(h).squeeze(-1))
    }
}

struct SquaredHinge;

impl LossImpl for SquaredHinge {
    fn compute<'c>(
        &self,
        _g: &'c Ctx<'_, '_>,
        preds: &[(String, Var<'c>)],
        labels: Var<'c>,
        w: Option<Var<'c>>,
    ) -> Result<Var<'c>> {
        // y in {0,1} -> s in {-1,1}; loss = max(0, 1 - s * x)^2
        let s = labels.to_float() * 2.0 - 1.0;
        let margin = (-(s * preds[0].1) + 1.0).relu().square();
        Ok(match w {
            Some(w) => (margin * w).mean_all(),
            None => margin.mean_all(),
        })
    }
}

fn components() -> Vec<ComponentDef> {
    vec![
        ComponentDef::backbone(
            "gmf",
            "Generalized matrix factorisation h^T (p_u * q_i)",
            vec![ParamSpec::new("dim", 32, "embedding size")],
            |p| {
                Ok(Gmf {
                    dim: p.usize("dim")?,
                })
            },
        ),
        ComponentDef::loss(
            "squared_hinge",
            "Squared hinge loss on labels mapped to -1/+1",
            vec![],
            |_| Ok(SquaredHinge),
        ),
    ]
}

causalrec_sdk::export_plugin!("example", components);
