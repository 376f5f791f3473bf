//! DecRS (Wang et al. KDD'21): backdoor adjustment over item groups.
//!
//! Two copies of the backbone are trained side by side, each with the
//! recipe's loss on the batch labels:
//! - role `rs`, the conventional model `P(Y | U, I)`;
//! - role `de`, the deconfounded model `P(Y | do(U), I)` (Eq. 9): its
//!   field list gets one more field, `M(d_bar, u)`, the group-level user
//!   representation under the confounder prior
//!   `d_bar = sum_u P(d_u) d_u` (Eq. 3-5). With learnable group
//!   embeddings `v_1..v_N` and the user-side fields `x_ub u_b`:
//!   - `operator: "fm"` (DecRS-FM, Eq. 8, the paper's default): the
//!     second-order FM over `[p(g_1) v_1, .., p(g_N) v_N, x_u1 u_1, ..]`,
//!     `0.5 * ((sum c)^2 - sum c^2)` as in the authors' code;
//!   - `operator: "ep"` (DecRS-EP, Eq. 7): `(sum_a p(g_a) v_a) ⊙ (sum_b x_ub u_b)`.
//!
//! Inference (`inference`):
//! - `fusion` (DecRS, Eq. 11): `(1 - eta_u) sigmoid(y_rs) + eta_u sigmoid(y_de)`
//!   with `eta_u` the normalised (Eq. 12, exponent `alpha`) symmetric KL
//!   between the group distributions of the first and second half of the
//!   user's training history (Eq. 10); the score is the logit of that
//!   probability;
//! - `deconfounded` ("DecRS (w/o)"): `y_de` only;
//! - `conventional`: `y_rs` only (the backbone trained alongside).
//!
//! Statistics come from the training positives in time order (`prepare`);
//! the item groups from the item column with role `group` (or `groups`).

use std::sync::Mutex;

use causalrec_sdk::groups::{normalise_drift, positives_part, training_histories, ItemGroups};
use causalrec_sdk::{
    Backbones, ComponentDef, Ctx, Emb, EstimatorImpl, Init, LossHandle, ParamSpec, Params, Result,
    TrainData, Var,
};

/// How M(d_bar, u) combines group and user representations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Operator {
    /// Eq. 7: element-wise product (DecRS-EP).
    ElementWise,
    /// Eq. 8: second-order FM (DecRS-FM).
    Fm,
}

/// Which score ranks items.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Inference {
    Fusion,
    Deconfounded,
    Conventional,
}

/// What `prepare` learns from the training data.
#[derive(Clone, Debug)]
pub struct Stats {
    /// The confounder prior d_bar, one weight per group.
    pub prior: Vec<f64>,
    /// eta_u (Eq. 10) per user.
    pub drift: Vec<f64>,
    /// Normalised eta_u (Eq. 12) per user.
    pub weight: Vec<f64>,
}

pub struct DecRs {
    operator: Operator,
    inference: Inference,
    alpha: f64,
    groups: String,
    init_std: f64,
    stats: Mutex<Option<Stats>>,
}

pub fn def() -> ComponentDef {
    ComponentDef::estimator(
        "decrs",
        "DecRS (Wang et al. 2021): backdoor adjustment over item groups on a field-interaction backbone, fused with the conventional model by interest drift",
        params(),
        make,
    )
    .with_estimand(
        "P(Y | do(U = u), c) by backdoor adjustment: the user's item-group distribution d, a confounder of the user representation and the score, integrated out (sum over d of P(d) P(Y | u, d, c))",
    )
}

fn params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new(
            "operator",
            "fm",
            "backdoor operator M(d_bar, u): fm (DecRS-FM, Eq. 8) or ep (DecRS-EP, Eq. 7)",
        ),
        ParamSpec::new(
            "inference",
            "fusion",
            "fusion (DecRS, Eq. 11), deconfounded (DecRS (w/o)) or conventional",
        ),
        ParamSpec::new(
            "alpha",
            0.2,
            "exponent of the drift normalisation (Eq. 12); small favours the deconfounded score",
        ),
        ParamSpec::new(
            "groups",
            "",
            "item column of the groups (empty: the item column with role 'group')",
        ),
        ParamSpec::new(
            "init_std",
            0.01,
            "standard deviation of the group embeddings' normal initialisation",
        ),
    ]
}

fn make(p: &Params) -> Result<DecRs> {
    let operator = match p.string("operator")?.as_str() {
        "fm" => Operator::Fm,
        "ep" => Operator::ElementWise,
        other => return Err(format!("operator must be 'fm' or 'ep', got '{other}'")),
    };
    let inference = match p.string("inference")?.as_str() {
        "fusion" => Inference::Fusion,
        "deconfounded" => Inference::Deconfounded,
        "conventional" => Inference::Conventional,
        other => {
            return Err(format!(
                "inference must be 'fusion', 'deconfounded' or 'conventional', got '{other}'"
            ))
        }
    };
    let alpha = p.non_negative("alpha")?;
    let init_std = p.f64("init_std")?;
    if !(init_std > 0.0 && init_std.is_finite()) {
        return Err(format!("init_std must be > 0, got {init_std}"));
    }
    Ok(DecRs {
        operator,
        inference,
        alpha,
        groups: p.string("groups")?,
        init_std,
        stats: Mutex::new(None),
    })
}

/// The DecRS statistics of training data: prior, drift and its normalisation.
pub fn stats(data: &TrainData, groups: &str, alpha: f64) -> Result<Stats> {
    let g = ItemGroups::from_train_data(data, groups).map_err(|e| format!("decrs: {e}"))?;
    let part = positives_part(data);
    let seqs = training_histories(data)?;
    let prior = g.prior(&seqs);
    if prior.iter().all(|&p| p == 0.0) {
        return Err(format!(
            "decrs: no training interaction has an item with a group (part '{part}')"
        ));
    }
    let drift: Vec<f64> = seqs.iter().map(|s| g.drift(s)).collect();
    let weight = normalise_drift(&drift, alpha);
    Ok(Stats {
        prior,
        drift,
        weight,
    })
}

/// Whether a field of the hook point is user-side (`user` or `user.*`).
fn user_field(name: &str) -> bool {
    name == "user" || name.starts_with("user.")
}

/// M(d_bar, u) for the batch: `[B, d]`.
pub fn backdoor_field<'c>(
    g: &'c Ctx<'_, '_>,
    emb: &Emb,
    prior: &[f64],
    operator: Operator,
    init_std: f64,
) -> Result<Var<'c>> {
    let users: Vec<Var<'c>> = emb
        .fields
        .iter()
        .filter(|f| user_field(f.name.as_str()))
        .map(|f| g.var(f.var))
        .collect();
    if users.is_empty() {
        return Err(
            "decrs: the backbone's hook point has no user fields (needs a field-interaction backbone: fm, nfm, dcn)"
                .into(),
        );
    }
    let dim = users[0].dim(-1);
    let n = prior.len();
    let v = g.param("group_emb", &[n, dim], Init::normal(init_std));
    // p(g_a) v_a: [N, d]
    let weighted = v * g.constant(prior, &[n, 1]);
    let u = g.stack(&users, 1); // [B, K, d]
    Ok(match operator {
        Operator::ElementWise => u.sum(1) * weighted.sum_keepdim(0),
        Operator::Fm => {
            let sum = u.sum(1) + weighted.sum_keepdim(0);
            let sq = u.square().sum(1) + weighted.square().sum_keepdim(0);
            (sum.square() - sq) * 0.5
        }
    })
}

impl DecRs {
    fn stats(&self) -> Result<Stats> {
        self.stats
            .lock()
            .map_err(|_| "decrs: poisoned lock".to_string())?
            .clone()
            .ok_or_else(|| "decrs: prepare() was not called before training".into())
    }

    /// The conventional and the deconfounded logits of the batch.
    fn logits<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        bb: &Backbones<'_>,
        need_rs: bool,
        need_de: bool,
    ) -> Result<(Option<Var<'c>>, Option<Var<'c>>)> {
        let rs = if need_rs {
            Some(bb.get("rs")?.forward(g)?.0)
        } else {
            None
        };
        let de = if need_de {
            let b = bb.get("de")?;
            if !b.info().field_interaction {
                return Err(
                    "decrs: the 'de' backbone is not a field-interaction model (use fm, nfm or dcn)"
                        .into(),
                );
            }
            let mut emb = b.embed(g)?;
            let m = backdoor_field(g, &emb, &self.stats()?.prior, self.operator, self.init_std)?;
            emb.push_field("backdoor", m.id);
            Some(b.forward_from(g, &emb)?)
        } else {
            None
        };
        Ok((rs, de))
    }
}

impl EstimatorImpl for DecRs {
    fn roles(&self) -> Vec<String> {
        vec!["rs".into(), "de".into()]
    }

    fn prepare(&self, data: &TrainData) -> Result<()> {
        let s = stats(data, &self.groups, self.alpha)?;
        *self
            .stats
            .lock()
            .map_err(|_| "decrs: poisoned lock".to_string())? = Some(s);
        Ok(())
    }

    /// Both models on the batch labels with the recipe's loss (Eq. 9 for `de`).
    fn train_step<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        bb: &Backbones<'_>,
        loss: &LossHandle<'_>,
    ) -> Result<Vec<(String, Var<'c>)>> {
        let need_rs = self.inference != Inference::Deconfounded;
        let need_de = self.inference != Inference::Conventional;
        let (rs, de) = self.logits(g, bb, need_rs, need_de)?;
        let mut terms = Vec::new();
        if let Some(rs) = rs {
            terms.push(("rs".into(), loss.on_labels(g, rs)?));
        }
        if let Some(de) = de {
            terms.push(("de".into(), loss.on_labels(g, de)?));
        }
        Ok(terms)
    }

    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        match self.inference {
            Inference::Conventional => Ok(self.logits(g, bb, true, false)?.0.ok_or("no rs")?),
            Inference::Deconfounded => Ok(self.logits(g, bb, false, true)?.1.ok_or("no de")?),
            Inference::Fusion => {
                let (rs, de) = self.logits(g, bb, true, true)?;
                let (rs, de) = (rs.ok_or("no rs")?, de.ok_or("no de")?);
                let w = self.stats()?.weight;
                let eta = g.constant(&w, &[w.len()]).index_select(g.input("user"), 0);
                // Eq. 11 on probabilities, returned as a logit.
                let p = rs.sigmoid() * (eta * -1.0 + 1.0) + de.sigmoid() * eta;
                let p = p.clamp(1e-7, 1.0 - 1e-7);
                Ok(p.log() - (p * -1.0 + 1.0).log())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use causalrec_sdk::{DataColumn, DataPart};

    /// 2 users, 3 items; item groups: 0 -> {a}, 1 -> {b}, 2 -> {a, b}.
    fn data() -> TrainData {
        TrainData {
            n_users: 2,
            n_items: 3,
            // user 0: items 0, 0, 1 at times 1, 2, 3; user 1: item 2
            user: vec![0, 0, 1, 0].into(),
            item: vec![0, 1, 2, 0].into(),
            inter: vec![DataColumn {
                name: "timestamp".into(),
                role: "timestamp".into(),
                doubles: vec![1.0, 3.0, 0.0, 2.0].into(),
                ..DataColumn::default()
            }]
            .into(),
            items: vec![DataColumn {
                name: "genre".into(),
                role: "group".into(),
                vocab: vec!["".into(), "a".into(), "b".into()].into(),
                tokens: vec![1, 2, 1, 2].into(),
                offsets: vec![0, 1, 2, 4].into(),
                ..DataColumn::default()
            }]
            .into(),
            parts: vec![DataPart {
                name: "train_positive".into(),
                rows: vec![0, 1, 2, 3].into(),
            }]
            .into(),
            ..TrainData::default()
        }
    }

    #[test]
    fn prior_and_drift_hand_computed() {
        let s = stats(&data(), "", 0.5).unwrap();
        // user 0: d = (2 * [1,0] + [0,1]) / 3, |H| = 3; user 1: [.5,.5], |H| = 1
        // d_bar = 3/4 * [2/3, 1/3] + 1/4 * [1/2, 1/2] = [5/8, 3/8]
        assert!((s.prior[0] - 0.625).abs() < 1e-12 && (s.prior[1] - 0.375).abs() < 1e-12);
        // user 0 in time order: 0, 0 | 1 -> halves {0} and {0, 1}
        // p = [1, 0], q = [.5, .5]:
        // KL(p||.99q+.01p) = ln(1 / .505); KL(q||.99p+.01q) = .5 ln(.5/.995) + .5 ln(.5/.005)
        let want = (1.0f64 / 0.505).ln() + 0.5 * (0.5f64 / 0.995).ln() + 0.5 * 100f64.ln();
        assert!((s.drift[0] - want).abs() < 1e-12, "{:?}", s.drift);
        assert_eq!(s.drift[1], 0.0);
        assert_eq!(s.weight, vec![1.0, 0.0]);
    }

    #[test]
    fn errors_name_the_problem() {
        let e = stats(&data(), "year", 0.2).unwrap_err();
        assert!(
            e.contains("decrs") && e.contains("item column 'year'"),
            "{e}"
        );
        let p = Params::parse("decrs", &params(), r#"{"operator": "xx"}"#).unwrap();
        let e = make(&p).err().unwrap();
        assert!(e.contains("operator must be 'fm' or 'ep'"), "{e}");
    }
}
