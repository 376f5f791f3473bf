//! IPS and SNIPS: the recipe's loss weighted by inverse propensities; the
//! estimator struct is shared with Rel ([`crate::rel`]), which uses the
//! same propensities on the labels instead.
//!
//! The propensities come from [`causalrec_sdk::propensity::Propensity`]
//! (sources `naive_bayes`, `column`, `group`, `popularity`, `position`; see
//! there for each and for which examples a source reweights). The weighted
//! loss is `mean_b w_b * l_b`; `snips` divides the weights by their batch
//! mean (self-normalised IPS). `clip` bounds propensities from below
//! (0 = no clipping).

use causalrec_sdk::propensity::Propensity;

use crate::rel::rel_loss;
use causalrec_sdk::{
    Backbones, ComponentDef, Ctx, EstimatorImpl, LossHandle, Params, Result, TrainData, Var,
};

/// How the propensities enter the objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    /// The recipe's loss weighted by `1 / p`.
    Ips,
    /// IPS with the weights divided by their batch mean.
    Snips,
    /// Rel's log loss on the labels `y / p` ([`crate::rel::rel_loss`]).
    Rel,
}

pub struct Ips {
    propensity: Propensity,
    objective: Objective,
}

pub fn make(p: &Params, objective: Objective) -> Result<Ips> {
    Ok(Ips {
        propensity: Propensity::from_params(p)?,
        objective,
    })
}

pub fn ips_def() -> ComponentDef {
    ComponentDef::estimator(
        "ips",
        "Inverse propensity scoring: the loss weighted by 1/propensity (naive-Bayes, logged, group, popularity or position propensities)",
        Propensity::param_specs(),
        |p| make(p, Objective::Ips),
    )
    .with_estimand(
        "the loss over all user-item pairs as if every pair were observed, E_{u,i}[l(y_ui, y_hat_ui)], estimated by weighting each observed example by 1 / P(observed); unbiased when the propensities are right",
    )
}

pub fn snips_def() -> ComponentDef {
    ComponentDef::estimator(
        "snips",
        "Self-normalised IPS: inverse-propensity weights divided by their batch mean",
        Propensity::param_specs(),
        |p| make(p, Objective::Snips),
    )
    .with_estimand(
        "the same full-population loss as IPS, with the inverse-propensity weights self-normalised per batch (consistent, lower variance)",
    )
}

impl EstimatorImpl for Ips {
    fn prepare(&self, data: &TrainData) -> Result<()> {
        self.propensity.prepare(data)
    }

    fn train_step<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        bb: &Backbones<'_>,
        loss: &LossHandle<'_>,
    ) -> Result<Vec<(String, Var<'c>)>> {
        let logit = self.score(g, bb)?;
        let y = g.input("label");
        let w = match self.objective {
            Objective::Rel => {
                let theta = self.propensity.propensity(g)?;
                return Ok(vec![("rel".into(), rel_loss(logit, y, theta))]);
            }
            Objective::Ips => self.propensity.weights(g)?,
            Objective::Snips => {
                let w = self.propensity.weights(g)?;
                w / w.mean_all()
            }
        };
        let l = loss.compute(g, &[("logit", logit)], y, Some(w))?;
        Ok(vec![("loss".into(), l)])
    }

    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        Ok(bb.main()?.forward(g)?.0)
    }

    fn score_all<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Option<Var<'c>>> {
        bb.main()?.forward_all(g)
    }
}
