//! `iv4rec`: IV4Rec (Si, Han, Zhang, Xu, Yin, Song, Wen, "A Model-Agnostic
//! Causal Learning Framework for Recommendation using Search Data", WWW
//! 2022), the earlier version that IV4Rec+ extends: the IV regression is
//! solved in closed form instead of by an MLP trained with L_IV.
//!
//! Per batch, the item treatments `T` (the candidates and every valid
//! history item, rows of the backbone's `item` table) are regressed on their
//! query vectors `Z` by ridge least squares,
//! `W = (Z^T Z + ridge I)^{-1} Z^T T`, and the fitted part is
//! `T_hat = Z W` — a linear function of `T` (the matrix
//! `(Z^T Z + ridge I)^{-1}` depends on the fixed query vectors only, so it is
//! computed on the CPU from the batch's `d_q x d_q` Gram matrix and enters
//! the graph as a constant). The combination step is the same as IV4Rec+'s
//! (Eq. 12, `alpha` learned by `f_weight` or fixed), and the backbone runs
//! on the reconstructed candidate and history, as IV4Rec+(I) does.

use causalrec_sdk::{
    Backbones, ComponentDef, Ctx, EstimatorImpl, ParamSpec, Params, Result, TrainData, Var,
};

use crate::plus::{common_params, seq_hooks};
use crate::queries;
use crate::reconstruct::{Alpha, Combine};
use causalrec_sdk::{keep, prepared, PreparedVectors};

pub struct IvLs {
    queries: queries::QuerySource,
    ridge: f64,
    weight_layers: Vec<usize>,
    alpha: Alpha,
    dropout: f64,
    table: PreparedVectors,
}

fn params() -> Vec<ParamSpec> {
    let mut v = vec![ParamSpec::new(
        "ridge",
        1.0,
        "ridge term of the per-batch least squares (Z^T Z + ridge I), > 0",
    )];
    v.extend(
        common_params()
            .into_iter()
            .filter(|s| s.name != "proj_layers"),
    );
    v
}

pub fn def() -> ComponentDef {
    ComponentDef::estimator(
        "iv4rec",
        "IV4Rec (Si et al. WWW'22): per-batch least-squares regression of item embeddings on their query vectors, \
         reconstructed as fitted + alpha * residual for the candidate and the history",
        params(),
        make,
    )
    .with_estimand(
        "the causal effect of the item representations on the click with search queries as instruments: treatments replaced by their per-batch least-squares fit on the query vectors",
    )
}

fn make(p: &Params) -> Result<IvLs> {
    let ridge = p.f64("ridge")?;
    if !(ridge > 0.0 && ridge.is_finite()) {
        return Err(format!(
            "iv4rec: parameter 'ridge' must be a finite number > 0, got {ridge}"
        ));
    }
    Ok(IvLs {
        queries: queries::QuerySource::from_params(p)?,
        ridge,
        weight_layers: p.layer_sizes("weight_layers")?,
        alpha: Alpha::from_params(p, "iv4rec")?,
        dropout: p.rate("dropout")?,
        table: PreparedVectors::default(),
    })
}

/// `(sum_r w_r z_r z_r^T + ridge I)^{-1}` for rows `z` of width `dq`
/// (row-major `n x dq`) with weights `w`, by Cholesky (the matrix is
/// symmetric positive definite for `ridge > 0`).
pub fn ridge_inverse(z: &[f64], w: &[f64], dq: usize, ridge: f64) -> Vec<f64> {
    let mut a = vec![0.0; dq * dq];
    for (r, &wr) in w.iter().enumerate() {
        if wr == 0.0 {
            continue;
        }
        let row = &z[r * dq..(r + 1) * dq];
        for i in 0..dq {
            let x = wr * row[i];
            if x == 0.0 {
                continue;
            }
            for j in 0..=i {
                a[i * dq + j] += x * row[j];
            }
        }
    }
    for i in 0..dq {
        a[i * dq + i] += ridge;
    }
    // Lower-triangular L with A = L L^T.
    let mut l = vec![0.0; dq * dq];
    for i in 0..dq {
        for j in 0..=i {
            let mut s = a[i * dq + j];
            for k in 0..j {
                s -= l[i * dq + k] * l[j * dq + k];
            }
            l[i * dq + j] = if i == j {
                s.max(f64::MIN_POSITIVE).sqrt()
            } else {
                s / l[j * dq + j]
            };
        }
    }
    // Columns of A^{-1}: solve L y = e_c, then L^T x = y.
    let mut inv = vec![0.0; dq * dq];
    let mut y = vec![0.0; dq];
    for c in 0..dq {
        for i in 0..dq {
            let mut s = if i == c { 1.0 } else { 0.0 };
            for k in 0..i {
                s -= l[i * dq + k] * y[k];
            }
            y[i] = s / l[i * dq + i];
        }
        for i in (0..dq).rev() {
            let mut s = y[i];
            for k in i + 1..dq {
                s -= l[k * dq + i] * inv[k * dq + c];
            }
            inv[i * dq + c] = s / l[i * dq + i];
        }
    }
    inv
}

impl IvLs {
    fn forward<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        const WHO: &str = "iv4rec";
        let table = prepared(&self.table, WHO)?;
        let b = bb.main()?;
        let emb = b.embed(g)?;
        let (item, history, mask) = seq_hooks(g, &emb, WHO)?;
        let dq = table.dim();
        let (bsz, len, d) = (history.dim(0), history.dim(1), history.dim(2));
        let (z_item, zi) = table.gather_values(g, g.input("item"))?;
        let (z_hist, zh) = table.gather_values(g, g.input("history"))?;
        let m = g.values(mask)?;
        // The Gram matrix over the candidates and the valid history items.
        let mut rows = zi;
        rows.extend_from_slice(&zh);
        let mut weights = vec![1.0; bsz];
        weights.extend_from_slice(&m);
        let inv = g.constant(&ridge_inverse(&rows, &weights, dq, self.ridge), &[dq, dq]);
        // Z^T T with the padding rows zeroed: [dq, d].
        let zh_flat = z_hist.reshape(&[-1, dq as i64]);
        let zh_valid = zh_flat * mask.reshape(&[-1, 1]);
        let hist_flat = history.reshape(&[-1, d as i64]);
        let zt_t = z_item.transpose(0, 1).matmul(item) + zh_valid.transpose(0, 1).matmul(hist_flat);
        let w = inv.matmul(zt_t);
        let item_hat = z_item.matmul(w);
        let hist_hat = zh_flat
            .matmul(w)
            .reshape(&[bsz as i64, len as i64, d as i64]);
        let combine = Combine::new(
            "iv.weight",
            d,
            &self.weight_layers,
            self.alpha,
            self.dropout,
        );
        let mut re = emb.clone();
        re.set("item", combine.apply(g, item, item_hat).id);
        re.set("history", combine.apply(g, history, hist_hat).id);
        b.forward_from(g, &re)
    }
}

impl EstimatorImpl for IvLs {
    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        self.forward(g, bb)
    }

    fn prepare(&self, data: &TrainData) -> Result<()> {
        keep(&self.table, self.queries.read(data, "iv4rec")?, "iv4rec")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ridge_inverse_inverts_the_gram_matrix() {
        // Rows (1, 2), (3, -1), (0, 1) with weights 1, 1, 0 (the last is padding);
        // Z^T Z = [[10, -1], [-1, 5]], + ridge 0.5 I = [[10.5, -1], [-1, 5.5]],
        // det = 57.75 - 1 = 56.75, inverse = [[5.5, 1], [1, 10.5]] / 56.75.
        let inv = ridge_inverse(&[1.0, 2.0, 3.0, -1.0, 0.0, 1.0], &[1.0, 1.0, 0.0], 2, 0.5);
        let want = [5.5 / 56.75, 1.0 / 56.75, 1.0 / 56.75, 10.5 / 56.75];
        for (a, b) in inv.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{inv:?}");
        }
    }

    #[test]
    fn ridge_must_be_positive() {
        let e = make(&Params::parse("iv4rec", &params(), r#"{"ridge": 0}"#).unwrap())
            .err()
            .unwrap();
        assert!(e.contains("iv4rec") && e.contains("'ridge'"), "{e}");
    }
}
