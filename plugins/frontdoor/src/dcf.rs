//! DCF, the deconfounded recommender (Wang, Liang, Charlin, Blei, "The
//! Deconfounded Recommender: A Causal Inference Approach to
//! Recommendation" / "Causal Inference for Recommender Systems", RecSys
//! 2020), the hidden-confounder baseline of HCR's Table 2.
//!
//! DCF fits an exposure model to which items users were exposed to, takes
//! its expected exposure `a_hat_ui` as a substitute for the unobserved
//! confounder, and fits the outcome (rating) model conditionally on it:
//! `r_ui ~ theta_u^T beta_i + gamma_u a_hat_ui + ...`, so that a user's
//! rating no longer credits items for what only made them likely to be
//! exposed. In the paper the exposure model is Poisson factorization and is
//! fit first. HCR's adaptation (section 4.1.2): "no exposure data is
//! provided ... we use the click and like feedback to substitute exposures
//! and ratings, respectively. We implement DCF based on MMGCN."
//!
//! Here, with two backbones (MMGCN in the paper's setting):
//! - exposure model (role `exposure`): logit `x_ui`, trained with the
//!   recipe's loss against the click label (`label`) over the whole batch
//!   (clicks and sampled or logged non-clicks);
//! - substitute confounder `a_hat_ui = sigma(x_ui)`, the predicted click
//!   (exposure) probability, **detached**: the paper fits the exposure
//!   model first and holds it fixed while fitting the outcome model; here
//!   both are trained jointly and the stop-gradient keeps the outcome loss
//!   from moving the exposure model;
//! - outcome model (role `outcome`): logit
//!   `y_ui = f_out(u, i) + gamma_u * a_hat_ui`, with `gamma_u` a learned
//!   per-user weight (table `gamma`, width 1, zero-initialised: the
//!   training starts from the plain outcome model), trained by
//!   cross-entropy against the like label (input `like`) on the clicked
//!   examples only (the ratings exist for exposed items only; the weights
//!   average over the batch's clicks, [`prob::clicked_only`]).
//!
//! Ranking: the outcome model's prediction including the substitute term,
//! `f_out(u, i) + gamma_u * a_hat_ui` (DCF predicts conditionally on the
//! substitute confounder). `score_all` combines both backbones' all-item
//! scores when each can give them (MMGCN can), else `None` and the host
//! scores pairs.
//!
//! Choices: the paper's Gaussian/Poisson outcome likelihood on ratings
//! becomes a Bernoulli likelihood on the binary like; the per-item
//! intercept `b_i` and further covariates are left to the backbone; the
//! exposure fit is joint with a stop-gradient rather than sequential.

use causalrec_sdk::{
    Backbones, ComponentDef, Ctx, EstimatorImpl, Init, LossHandle, ParamSpec, Params, Result, Var,
};

use crate::prob::{self, bce_each, click_like};

pub struct Dcf {
    like: String,
}

fn params() -> Vec<ParamSpec> {
    vec![ParamSpec::new(
        "like",
        "like",
        "batch input of the like label (`like` for click batches, `inter.<column>` for labelled rows)",
    )]
}

pub fn def() -> ComponentDef {
    ComponentDef::estimator(
        "dcf",
        "DCF (Wang et al. 2020): deconfounded recommender; an exposure model fit to clicks gives a substitute confounder a_hat, the like model is fit conditionally on it (+ gamma_u a_hat)",
        params(),
        make,
    )
    .with_estimand(
        "E[Y | do(u, i)] under unobserved confounders of exposure and outcome, adjusted for by a substitute confounder inferred from the exposures",
    )
}

fn make(p: &Params) -> Result<Dcf> {
    let like = p.string("like")?;
    if like.is_empty() {
        return Err(
            "dcf: like must name the batch input of the like label (e.g. like or inter.like)"
                .into(),
        );
    }
    Ok(Dcf { like })
}

/// `gamma_u` of the batch's users (`[B, 1]`).
fn gamma<'c>(g: &'c Ctx<'_, '_>) -> Var<'c> {
    g.embedding("gamma", g.schema().n_users as usize, 1, Init::ZEROS);
    g.lookup("gamma", g.input("user"))
}

impl EstimatorImpl for Dcf {
    fn roles(&self) -> Vec<String> {
        vec!["exposure".into(), "outcome".into()]
    }

    fn train_step<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        bb: &Backbones<'_>,
        loss: &LossHandle<'_>,
    ) -> Result<Vec<(String, Var<'c>)>> {
        let (click, like) = click_like(g, &self.like, "dcf")?;
        let x = bb.get("exposure")?.forward(g)?.0;
        let a_hat = x.sigmoid().detach();
        let y = bb.get("outcome")?.forward(g)?.0 + gamma(g).squeeze(1) * a_hat;
        let exposure = loss.compute(g, &[("logit", x)], click, g.try_input("weight"))?;
        let outcome = (bce_each(y, like) * prob::clicked_only(click)).mean_all();
        Ok(vec![
            ("exposure".into(), exposure),
            ("outcome".into(), outcome),
        ])
    }

    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        let a_hat = bb.get("exposure")?.forward(g)?.0.sigmoid();
        Ok(bb.get("outcome")?.forward(g)?.0 + gamma(g).squeeze(1) * a_hat)
    }

    fn score_all<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Option<Var<'c>>> {
        let Some(x) = bb.get("exposure")?.forward_all(g)? else {
            return Ok(None);
        };
        let Some(y) = bb.get("outcome")?.forward_all(g)? else {
            return Ok(None);
        };
        // gamma_u `[B, 1]` broadcasts over the items.
        Ok(Some(y + gamma(g) * x.sigmoid()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked() {
        let parse = |ron: &str| make(&Params::parse("dcf", &params(), ron).unwrap());
        assert_eq!(parse("{}").unwrap().like, "like");
        assert_eq!(
            parse(r#"{"like": "inter.like"}"#).unwrap().like,
            "inter.like"
        );
        let e = parse(r#"{"like": ""}"#).err().unwrap();
        assert!(e.contains("dcf") && e.contains("like"), "{e}");
        // An unknown parameter is refused by the schema, naming it.
        let e = Params::parse("dcf", &params(), r#"{"clip": 0.5}"#)
            .err()
            .unwrap();
        assert!(e.contains("clip"), "{e}");
    }
}
