//! Basic losses: BCE with logits, BPR over the batch's (positive, negative) pairs, MSE.

use causalrec_sdk::{ComponentDef, Ctx, LossImpl, Result, Var};

fn main_pred<'c>(preds: &[(String, Var<'c>)]) -> Result<Var<'c>> {
    preds
        .iter()
        .find(|(n, _)| n == "logit")
        .or(preds.first())
        .map(|(_, v)| *v)
        .ok_or_else(|| "loss received no predictions".to_string())
}

pub struct Bce;
pub struct Bpr;
pub struct Mse;

impl LossImpl for Bce {
    fn compute<'c>(
        &self,
        _g: &'c Ctx<'_, '_>,
        preds: &[(String, Var<'c>)],
        labels: Var<'c>,
        weights: Option<Var<'c>>,
    ) -> Result<Var<'c>> {
        Ok(main_pred(preds)?.bce_with_logits(labels, weights))
    }
}

impl LossImpl for Mse {
    fn compute<'c>(
        &self,
        _g: &'c Ctx<'_, '_>,
        preds: &[(String, Var<'c>)],
        labels: Var<'c>,
        weights: Option<Var<'c>>,
    ) -> Result<Var<'c>> {
        Ok(main_pred(preds)?.mse(labels, weights))
    }
}

impl LossImpl for Bpr {
    fn compute<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        preds: &[(String, Var<'c>)],
        _labels: Var<'c>,
        _w: Option<Var<'c>>,
    ) -> Result<Var<'c>> {
        if !g.has_input("pos_row") {
            return Err("bpr needs pairwise batches: train with negatives >= 1".into());
        }
        let s = main_pred(preds)?;
        let pos = s.index_select(g.input("pos_row"), 0);
        let neg = s.index_select(g.input("neg_row"), 0);
        Ok(pos.bpr(neg))
    }
}

pub fn bce_def() -> ComponentDef {
    ComponentDef::loss(
        "bce",
        "Binary cross-entropy with logits (optionally weighted)",
        vec![],
        |_| Ok(Bce),
    )
}
pub fn bpr_def() -> ComponentDef {
    ComponentDef::loss(
        "bpr",
        "Bayesian personalised ranking: -ln sigmoid(s_pos - s_neg) over sampled pairs",
        vec![],
        |_| Ok(Bpr),
    )
}
pub fn mse_def() -> ComponentDef {
    ComponentDef::loss(
        "mse",
        "Mean squared error of the prediction against the label (optionally weighted)",
        vec![],
        |_| Ok(Mse),
    )
}
