//! NCF: NeuMF (He, Liao, Zhang, Nie, Hu & Chua 2017, "Neural Collaborative
//! Filtering", WWW), section 3.4.
//!
//! - GMF tower (eq. 9): `phi_GMF = p^G_u ⊙ q^G_i`;
//! - MLP tower (eq. 10): `phi_MLP = a_L(W_L^T(... a_2(W_2^T [p^M_u ; q^M_i] + b_2) ...) + b_L)`,
//!   ReLU activations;
//! - fusion (eq. 12): `y = h^T [phi_GMF ; phi_MLP]`, a logit (the loss applies σ).
//!
//! `model` runs the GMF or the MLP tower alone (`h` then covers that tower).
//! `factors` is GMF's number of predictive factors; `layers` is the MLP tower
//! as in the authors' code: `layers[0]` is the width of `[p^M_u ; q^M_i]`
//! (each embedding `layers[0] / 2`), the later entries its hidden layers.
//! The `user` / `item` hook points are `[p^G ; p^M]` (the towers in use), so
//! an estimator sees one vector per side; `predict` splits them.

use causalrec_sdk::nn::{Act, Mlp};
use causalrec_sdk::{
    BackboneImpl, BackboneInfo, ComponentDef, Ctx, Emb, Init, ParamSpec, Params, Result, Var,
};

use crate::check::{check_sizes, std_dev};

/// Which towers run.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Model {
    NeuMf,
    Gmf,
    Mlp,
}

impl Model {
    fn parse(s: &str) -> Result<Model> {
        match s.to_ascii_lowercase().as_str() {
            "neumf" => Ok(Model::NeuMf),
            "gmf" => Ok(Model::Gmf),
            "mlp" => Ok(Model::Mlp),
            _ => Err(format!(
                "parameter 'model' must be \"NeuMF\", \"GMF\" or \"MLP\", got \"{s}\""
            )),
        }
    }
}

#[derive(Debug)]
pub struct Ncf {
    /// Width of the GMF embeddings (0 when the GMF tower is off).
    gmf: usize,
    /// Width of each MLP embedding (0 when the MLP tower is off).
    mlp: usize,
    /// The MLP tower `[2 * mlp, hidden...]` (empty when off).
    layers: Vec<usize>,
    init_std: f64,
    dropout: f64,
}

fn specs() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new(
            "model",
            "NeuMF",
            "\"NeuMF\" (both towers), \"GMF\" or \"MLP\"",
        ),
        ParamSpec::new(
            "factors",
            16,
            "predictive factors of the GMF tower (its embedding size)",
        ),
        ParamSpec::new(
            "layers",
            vec![64usize, 32, 16],
            "MLP tower: width of [user ; item] embeddings, then the hidden layers",
        ),
        ParamSpec::new(
            "init_std",
            0.01,
            "standard deviation of the normal initialisation",
        ),
        ParamSpec::new("dropout", 0.0, "dropout rate after each MLP hidden layer"),
    ]
}

pub fn def() -> ComponentDef {
    ComponentDef::backbone(
        "ncf",
        "NCF / NeuMF (He et al. 2017): GMF and MLP towers fused by h^T [gmf ; mlp]",
        specs(),
        Ncf::from_params,
    )
}

impl Ncf {
    fn from_params(p: &Params) -> Result<Ncf> {
        let model = Model::parse(&p.string("model")?)?;
        let gmf = match model {
            Model::Mlp => 0,
            _ => p.usize("factors")?,
        };
        if model != Model::Mlp && gmf == 0 {
            return Err("parameter 'factors' must be at least 1 (GMF tower)".into());
        }
        let layers = match model {
            Model::Gmf => Vec::new(),
            _ => p.usize_list("layers")?,
        };
        if model != Model::Gmf {
            check_sizes("layers", &layers, 2)?;
            if layers[0] % 2 != 0 {
                return Err(format!(
                    "parameter 'layers': the first entry is the width of [user ; item] MLP embeddings and must be even, got {}",
                    layers[0]
                ));
            }
        }
        Ok(Ncf {
            gmf,
            mlp: layers.first().map_or(0, |w| w / 2),
            layers,
            init_std: std_dev(p, "init_std")?,
            dropout: p.rate("dropout")?,
        })
    }

    /// Width of `[phi_GMF ; phi_MLP]`.
    fn phi_width(&self) -> usize {
        self.gmf
            + if self.mlp > 0 {
                *self.layers.last().unwrap_or(&0)
            } else {
                0
            }
    }

    fn tower(&self) -> Mlp {
        Mlp::new("mlp", &self.layers, Act::Relu, self.dropout)
    }

    fn h<'c>(&self, g: &'c Ctx<'_, '_>) -> Var<'c> {
        g.param("h", &[self.phi_width(), 1], Init::XAVIER)
    }

    /// The tables of one side (`user` or `item`) in use, with their widths.
    fn tables(&self, side: &str) -> Vec<(String, usize)> {
        [("gmf", self.gmf), ("mlp", self.mlp)]
            .into_iter()
            .filter(|&(_, w)| w > 0)
            .map(|(t, w)| (format!("{t}.{side}"), w))
            .collect()
    }

    /// Declare the tables and look up `[p^G ; p^M]` of `ids` on one side.
    fn side<'c>(&self, g: &'c Ctx<'_, '_>, side: &str, rows: u64, ids: Var<'c>) -> Var<'c> {
        let parts: Vec<Var<'c>> = self
            .tables(side)
            .iter()
            .map(|(t, w)| {
                g.embedding(t, rows as usize, *w, Init::normal(self.init_std));
                g.lookup(t, ids)
            })
            .collect();
        g.concat(&parts, -1)
    }

    fn check_width(&self, x: Var<'_>, what: &str) -> Result<()> {
        let w = x.dim(-1);
        if w != self.gmf + self.mlp {
            return Err(format!(
                "ncf: the {what} representation has width {w}, expected {} (GMF {} + MLP {})",
                self.gmf + self.mlp,
                self.gmf,
                self.mlp
            ));
        }
        Ok(())
    }

    /// MLP-tower scores of every item: the first layer on `[p ; q_j]` is
    /// `W_p^T p + W_q^T q_j + b`, so both halves are projected once and
    /// broadcast to `[B, N, h1]`; the rest of the tower runs on that.
    fn mlp_all<'c>(&self, g: &'c Ctx<'_, '_>, p: Var<'c>, h: Var<'c>) -> Result<Var<'c>> {
        let tower = self.tower();
        let first = tower
            .layers
            .first()
            .ok_or("ncf: the MLP tower has no layer")?;
        let w = g.param(
            &format!("{}.weight", first.name),
            &[first.input, first.output],
            Init::XAVIER,
        );
        let b = g.param(
            &format!("{}.bias", first.name),
            &[first.output],
            Init::ZEROS,
        );
        let hu = p.matmul(w.narrow(0, 0, self.mlp)) + b;
        let hi = g
            .table_all("mlp.item")
            .matmul(w.narrow(0, self.mlp, self.mlp));
        let z = (hu.unsqueeze(1) + hi.unsqueeze(0))
            .relu()
            .dropout(self.dropout);
        let rest = Mlp {
            layers: tower.layers[1..].to_vec(),
            ..tower
        };
        let phi = rest.forward(g, z);
        let (users, items) = (p.dim(0) as i64, g.schema().n_items as i64);
        let last = phi.dim(-1) as i64;
        Ok(phi.reshape(&[-1, last]).matmul(h).reshape(&[users, items]))
    }
}

impl BackboneImpl for Ncf {
    fn info(&self) -> BackboneInfo {
        BackboneInfo {
            field_interaction: false,
            score_all: true,
            needs_history: false,
            dim: (self.gmf + self.mlp) as u64,
        }
    }

    fn embed(&self, g: &Ctx<'_, '_>) -> Result<Emb> {
        let s = g.schema();
        let mut emb = Emb::default();
        emb.set("user", self.side(g, "user", s.n_users, g.input("user")).id);
        // All-ranking batches carry users only.
        if let Some(i) = g.try_input("item") {
            emb.set("item", self.side(g, "item", s.n_items, i).id);
        }
        Ok(emb)
    }

    fn predict<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        user: Var<'c>,
        item: Var<'c>,
        _emb: &Emb,
    ) -> Result<Var<'c>> {
        self.check_width(user, "user")?;
        self.check_width(item, "item")?;
        let (gmf, mlp) = (self.gmf, self.mlp);
        let mut phi = Vec::new();
        if gmf > 0 {
            phi.push(user.narrow(-1, 0, gmf) * item.narrow(-1, 0, gmf));
        }
        if mlp > 0 {
            let x = g.concat(&[user.narrow(-1, gmf, mlp), item.narrow(-1, gmf, mlp)], -1);
            phi.push(self.tower().forward(g, x));
        }
        Ok(g.concat(&phi, -1).matmul(self.h(g)).squeeze(-1))
    }

    fn score_all<'c>(&self, g: &'c Ctx<'_, '_>, user: Var<'c>) -> Result<Option<Var<'c>>> {
        self.check_width(user, "user")?;
        let s = g.schema();
        // Declare the item tables (a no-op once trained).
        for (t, w) in self.tables("item") {
            g.embedding(&t, s.n_items as usize, w, Init::normal(self.init_std));
        }
        let (gmf, mlp) = (self.gmf, self.mlp);
        let h = self.h(g);
        let mut scores = Vec::new();
        if gmf > 0 {
            // h_G^T (p ⊙ q_j) = (p ⊙ h_G) · q_j: one matmul.
            let hg = h.narrow(0, 0, gmf).reshape(&[1, gmf as i64]);
            let items = g.table_all("gmf.item").transpose(0, 1);
            scores.push((user.narrow(-1, 0, gmf) * hg).matmul(items));
        }
        if mlp > 0 {
            let hm = h.narrow(0, gmf, self.phi_width() - gmf);
            scores.push(self.mlp_all(g, user.narrow(-1, gmf, mlp), hm)?);
        }
        Ok(scores.into_iter().reduce(|a, b| a + b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(ron: &str) -> Result<Ncf> {
        Ncf::from_params(&Params::parse("ncf", &specs(), ron)?)
    }

    #[test]
    fn towers_and_widths() {
        let n = make("").unwrap();
        assert_eq!((n.gmf, n.mlp, n.phi_width()), (16, 32, 32));
        let n = make(r#"{"model": "GMF", "factors": 8, "layers": []}"#).unwrap();
        assert_eq!((n.gmf, n.mlp, n.phi_width()), (8, 0, 8));
        assert_eq!(n.tables("item"), [("gmf.item".to_string(), 8)]);
        let n = make(r#"{"model": "mlp", "layers": [64, 32, 16, 8]}"#).unwrap();
        assert_eq!((n.gmf, n.mlp, n.phi_width()), (0, 32, 8));
    }

    #[test]
    fn bad_parameters_are_named() {
        let e = make(r#"{"model": "NCF"}"#).unwrap_err();
        assert!(e.contains("'model'"), "{e}");
        let e = make(r#"{"layers": []}"#).unwrap_err();
        assert!(e.contains("'layers' needs at least 2"), "{e}");
        let e = make(r#"{"layers": [63, 32]}"#).unwrap_err();
        assert!(e.contains("must be even"), "{e}");
        let e = make(r#"{"factors": 0}"#).unwrap_err();
        assert!(e.contains("'factors'"), "{e}");
        let e = make(r#"{"init_std": -1.0}"#).unwrap_err();
        assert!(e.contains("'init_std'"), "{e}");
    }
}
