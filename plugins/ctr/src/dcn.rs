//! DCN: Deep & Cross Network (Wang, Fu, Fu & Wang 2017, "Deep & Cross
//! Network for Ad Click Predictions", ADKDD), over the shared field
//! embedding of `fields.rs`.
//!
//! - embedding and stacking layer: `x_0 = [x_embed,1 ; ... ; x_embed,k]`,
//!   the concatenated fields of the hook point (an estimator may append one);
//! - cross network (eq. 3): `x_{l+1} = x_0 x_l^T w_l + b_l + x_l`, `cross_layers` times;
//! - deep network (eq. 4): `h_{l+1} = ReLU(W_l h_l + b_l)`, sizes `deep_layers`;
//! - combination layer (eq. 5): `p = σ(w_logit^T [x_L1 ; h_L2] + b_logit)`
//!   (the logit is returned; the loss applies σ).
//!
//! `cross_layers: 0` gives the deep network alone and `deep_layers: []` the
//! cross network alone (the paper's ablations); not both.

use causalrec_sdk::nn::{Act, Linear, Mlp};
use causalrec_sdk::{ComponentDef, Ctx, Emb, Init, ParamSpec, Params, Result, Var};

use crate::check::layer_sizes;
use crate::fields::{field_def, FieldEmbedder, FieldHead};

#[derive(Debug)]
pub struct Dcn {
    cross_layers: usize,
    deep_layers: Vec<usize>,
    dropout: f64,
}

pub fn def() -> ComponentDef {
    field_def::<Dcn>(
        "dcn",
        "Deep & Cross Network (Wang et al. 2017): cross network + deep network over field embeddings",
        16,
        vec![
            ParamSpec::new("cross_layers", 3, "number of cross layers L1"),
            ParamSpec::new(
                "deep_layers",
                vec![256usize, 128],
                "hidden layer sizes of the deep network (L2 = its length)",
            ),
            ParamSpec::new("dropout", 0.0, "dropout rate after each deep layer"),
        ],
    )
}

impl FieldHead for Dcn {
    fn from_params(p: &Params) -> Result<Self> {
        let cross_layers = p.usize("cross_layers")?;
        let deep_layers = layer_sizes(p, "deep_layers", 0)?;
        if cross_layers == 0 && deep_layers.is_empty() {
            return Err(
                "parameter 'cross_layers' is 0 and 'deep_layers' is empty: DCN needs the cross or the deep network"
                    .into(),
            );
        }
        Ok(Dcn {
            cross_layers,
            deep_layers,
            dropout: p.rate("dropout")?,
        })
    }

    fn logit<'c>(&self, g: &'c Ctx<'_, '_>, _fields: &FieldEmbedder, emb: &Emb) -> Result<Var<'c>> {
        let x0 = g.concat(&FieldEmbedder::fields(g, emb)?, -1);
        let d = x0.dim(-1);
        let mut parts = Vec::new();
        if self.cross_layers > 0 {
            let mut x = x0;
            for l in 0..self.cross_layers {
                let w = g.param(&format!("cross.{l}.weight"), &[d, 1], Init::XAVIER);
                let b = g.param(&format!("cross.{l}.bias"), &[d], Init::ZEROS);
                // x_0 (x_l^T w_l): the scalar x_l . w_l of each example scales x_0.
                x = x0 * x.matmul(w) + b + x;
            }
            parts.push(x);
        }
        if !self.deep_layers.is_empty() {
            let mut sizes = vec![d];
            sizes.extend(&self.deep_layers);
            parts.push(Mlp::new("deep", &sizes, Act::Relu, self.dropout).forward(g, x0));
        }
        let stacked = g.concat(&parts, -1);
        let out = Linear::new("logit", stacked.dim(-1), 1);
        Ok(out.forward(g, stacked).squeeze(-1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(ron: &str) -> Result<Dcn> {
        Dcn::from_params(&Params::parse("dcn", &def().params, ron)?)
    }

    #[test]
    fn parameters_are_checked() {
        let d = make("").unwrap();
        assert_eq!((d.cross_layers, d.deep_layers.clone()), (3, vec![256, 128]));
        assert!(make(r#"{"cross_layers": 0}"#).is_ok());
        assert!(make(r#"{"deep_layers": []}"#).is_ok());
        let e = make(r#"{"cross_layers": 0, "deep_layers": []}"#)
            .err()
            .unwrap();
        assert!(e.contains("'cross_layers'"), "{e}");
        let e = make(r#"{"deep_layers": [0]}"#).err().unwrap();
        assert!(e.contains("'deep_layers'"), "{e}");
    }
}
