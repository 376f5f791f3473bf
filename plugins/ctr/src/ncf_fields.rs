//! NCF over field embeddings (`ncf_fields`): NeuMF (He et al. 2017) in the
//! CTR form the debiasing papers use it with features (CP2Rec, DIB, CVIB
//! take NCF as a backbone over user, item, attribute and context fields).
//!
//! Over the shared field embedding of `fields.rs` (one `[B, d]` vector per
//! field, so an estimator may rewrite or append fields):
//! - GMF tower: `phi_GMF = (sum of the user-side fields) ⊙ (sum of the
//!   item-side and context fields)`, the NeuMF eq. 9 product with each side
//!   represented by its field sum;
//! - MLP tower: `phi_MLP = MLP([e_1 ; ... ; e_K])` over the concatenated
//!   fields (eq. 10 with every field in the input), ReLU, sizes `layers`
//!   (the hidden layers; the input width is `K d`);
//! - fusion (eq. 12): `y = h^T [phi_GMF ; phi_MLP]`, a logit.
//!
//! `model: "GMF"` / `"MLP"` keep one tower, as in `ncf`.

use causalrec_sdk::nn::{Act, Mlp};
use causalrec_sdk::{ComponentDef, Ctx, Emb, Init, ParamSpec, Params, Result, Var};

use crate::check::layer_sizes;
use crate::fields::{field_def, FieldEmbedder, FieldHead};

#[derive(Debug)]
pub struct NcfFields {
    gmf: bool,
    layers: Vec<usize>,
    dropout: f64,
}

pub fn def() -> ComponentDef {
    field_def::<NcfFields>(
        "ncf_fields",
        "NCF / NeuMF over field embeddings (GMF on the user-side x item-side field sums, MLP on the concatenated fields), the CTR form of NCF used by CP2Rec",
        16,
        vec![
            ParamSpec::new(
                "model",
                "NeuMF",
                "\"NeuMF\" (both towers), \"GMF\" or \"MLP\"",
            ),
            ParamSpec::new(
                "layers",
                vec![64usize, 32, 16],
                "hidden layer sizes of the MLP tower (its input is the concatenated fields)",
            ),
            ParamSpec::new("dropout", 0.0, "dropout rate after each MLP hidden layer"),
        ],
    )
}

impl FieldHead for NcfFields {
    fn from_params(p: &Params) -> Result<Self> {
        let model = p.string("model")?;
        let (gmf, mlp) = match model.to_ascii_lowercase().as_str() {
            "neumf" => (true, true),
            "gmf" => (true, false),
            "mlp" => (false, true),
            _ => {
                return Err(format!(
                    "parameter 'model' must be \"NeuMF\", \"GMF\" or \"MLP\", got \"{model}\""
                ))
            }
        };
        let layers = if mlp {
            layer_sizes(p, "layers", 1)?
        } else {
            Vec::new()
        };
        Ok(NcfFields {
            gmf,
            layers,
            dropout: p.rate("dropout")?,
        })
    }

    fn logit<'c>(&self, g: &'c Ctx<'_, '_>, _f: &FieldEmbedder, emb: &Emb) -> Result<Var<'c>> {
        let mut phi = Vec::new();
        if self.gmf {
            let user = FieldEmbedder::side_sum(g, emb, "user")?;
            let other: Vec<Var<'c>> = emb
                .fields
                .iter()
                .filter(|f| !is_user_side(f.name.as_str()))
                .map(|f| g.var(f.var))
                .collect();
            if other.is_empty() {
                return Err("ncf_fields: the hook point has no item-side or context field".into());
            }
            phi.push(user * g.stack(&other, 1).sum(1));
        }
        if !self.layers.is_empty() {
            let x = g.concat(&FieldEmbedder::fields(g, emb)?, -1);
            let mut sizes = vec![x.dim(-1)];
            sizes.extend(&self.layers);
            phi.push(Mlp::new("mlp", &sizes, Act::Relu, self.dropout).forward(g, x));
        }
        let phi = g.concat(&phi, -1);
        let h = g.param("h", &[phi.dim(-1), 1], Init::XAVIER);
        Ok(phi.matmul(h).squeeze(-1))
    }
}

/// `user` and `user.<attribute>` fields form the user side.
fn is_user_side(name: &str) -> bool {
    name == "user" || name.starts_with("user.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(ron: &str) -> Result<NcfFields> {
        NcfFields::from_params(&Params::parse("ncf_fields", &def().params, ron)?)
    }

    #[test]
    fn towers_and_parameters() {
        let n = make("").unwrap();
        assert!(n.gmf && n.layers == [64, 32, 16]);
        let n = make(r#"{"model": "gmf"}"#).unwrap();
        assert!(n.gmf && n.layers.is_empty());
        let n = make(r#"{"model": "MLP", "layers": [8]}"#).unwrap();
        assert!(!n.gmf && n.layers == [8]);
        let e = make(r#"{"model": "NCF"}"#).unwrap_err();
        assert!(e.contains("'model'"), "{e}");
        let e = make(r#"{"model": "MLP", "layers": []}"#).unwrap_err();
        assert!(e.contains("'layers'"), "{e}");
    }

    #[test]
    fn sides() {
        assert!(is_user_side("user") && is_user_side("user.age"));
        assert!(!is_user_side("item") && !is_user_side("inter.position"));
        assert!(!is_user_side("username"));
    }
}
