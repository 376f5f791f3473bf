//! The naive estimator (the CT baseline): train the backbone on the labels with
//! the recipe's loss, score by the backbone's logit.

use causalrec_sdk::{Backbones, ComponentDef, Ctx, EstimatorImpl, Result, Var};

pub struct Naive;

pub fn def() -> ComponentDef {
    ComponentDef::estimator(
        "naive",
        "Conventional training (CT): the loss on observed labels, ranking by the backbone's logit",
        vec![],
        |_| Ok(Naive),
    )
    .with_estimand(
        "the associational E[Y | u, i] of the logged examples (no adjustment: whatever biases the log carries)",
    )
}

impl EstimatorImpl for Naive {
    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        Ok(bb.main()?.forward(g)?.0)
    }

    fn score_all<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Option<Var<'c>>> {
        bb.main()?.forward_all(g)
    }
}
