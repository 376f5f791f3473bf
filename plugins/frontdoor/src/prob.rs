//! Binary cross-entropy on probabilities given as log-probabilities, for
//! models whose prediction is a product of probabilities (HCR's
//! `f = Y(z) * sigma(Y(e))`, ESMM's `pCTCVR = pCTR * pCVR`), and the batch
//! inputs the multi-task click/like estimators read.

use causalrec_sdk::{Ctx, Result, Var};

/// `mean_b w_b * -(y_b ln p_b + (1 - y_b) ln(1 - p_b))` with `logp = ln p`
/// (`ln(1 - p)` floored at `ln 1e-12`); `w = None` weighs every example 1.
pub fn bce_log_prob<'c>(logp: Var<'c>, y: Var<'c>, w: Option<Var<'c>>) -> Var<'c> {
    let log1m = (-logp.exp() + 1.0).clamp(1e-12, 1.0).log();
    let l = -(y * logp + (-y + 1.0) * log1m);
    match w {
        Some(w) => (l * w).mean_all(),
        None => l.mean_all(),
    }
}

/// Per-example BCE with logits, `softplus(x) - x y` (`[B]`, not reduced).
pub fn bce_each<'c>(x: Var<'c>, y: Var<'c>) -> Var<'c> {
    x.softplus() - x * y
}

/// Weights that average over the clicked examples only: `c / mean(c)`
/// (all zero when the batch has no click).
pub fn clicked_only<'c>(click: Var<'c>) -> Var<'c> {
    click / click.mean_all().clamp(1e-12, f64::INFINITY)
}

/// The click label (`label`) and the like label (input `like`, e.g. `like`
/// in implicit click batches or `inter.like` in pointwise batches) of the batch.
pub fn click_like<'c>(g: &'c Ctx<'_, '_>, like: &str, who: &str) -> Result<(Var<'c>, Var<'c>)> {
    let l = g.try_input(like).ok_or_else(|| {
        format!(
            "{who}: the batch has no like input '{like}' (train on clicks with dataset(.., #{{train_positives: \"all\"}}) for `like`, or name the like column as \"inter.<column>\" in pointwise data)"
        )
    })?;
    Ok((g.input("label"), l))
}
