//! Modality scores of a multi-modal backbone (MMGCN) for HCR and CR:
//! `Y(x) = <x_u, x_i>` on the fused representation of a set of modalities
//! (`G = mean`, section 4.1.3 of HCR), for a batch of (user, item) pairs or,
//! in an all-ranking batch, for every item at once.
//!
//! Reads the backbone's named outputs `user_modality:<m>` and, per pair,
//! `modality:<m>`, or, for every item, `all_modality:<m>` (`[n_items, d]`).

use causalrec_sdk::{Ctx, Emb, Result, Var};

/// The modalities of a hook-point map (names after `user_modality:`), sorted.
pub fn modalities(emb: &Emb) -> Vec<String> {
    let mut m: Vec<String> = emb
        .names()
        .into_iter()
        .filter_map(|n| n.strip_prefix("user_modality:").map(String::from))
        .collect();
    m.sort();
    m
}

/// The backbone's modalities, split into the exposure modality `e` and the
/// content modalities `c` (every other one); errors name what is there.
pub fn split<'a>(mods: &'a [String], exposure: &str, who: &str) -> Result<(&'a str, Vec<&'a str>)> {
    if mods.is_empty() {
        return Err(format!(
            "{who}: the backbone exposes no per-modality outputs (user_modality:<m>); use mmgcn with modality features"
        ));
    }
    let e = mods
        .iter()
        .find(|m| m.as_str() == exposure)
        .ok_or_else(|| {
            format!(
                "{who}: exposure modality '{exposure}' is not among the backbone's modalities ({})",
                mods.join(", ")
            )
        })?;
    let c: Vec<&str> = mods
        .iter()
        .filter(|m| m.as_str() != exposure)
        .map(String::as_str)
        .collect();
    if c.is_empty() {
        return Err(format!(
            "{who}: besides the exposure modality '{exposure}' the backbone needs at least one content modality"
        ));
    }
    Ok((e.as_str(), c))
}

/// Whether the map holds every item's modality representations (an
/// all-ranking batch of a backbone that provides them).
pub fn has_all_items(emb: &Emb) -> bool {
    emb.names().iter().any(|n| n.starts_with("all_modality:"))
}

/// Mean of the named outputs `<prefix><m>` over modalities `ms`.
fn fused<'c>(g: &'c Ctx<'_, '_>, emb: &Emb, prefix: &str, ms: &[&str]) -> Result<Var<'c>> {
    let mut sum: Option<Var<'c>> = None;
    for m in ms {
        let v = g.get(emb, &format!("{prefix}{m}"))?;
        sum = Some(sum.map_or(v, |s| s + v));
    }
    Ok(sum.ok_or("no modality to fuse")? * (1.0 / ms.len() as f64))
}

/// A user's representation fused over the modalities `ms` (`[B, d]`),
/// the user side of [`score`].
pub fn user_rep<'c>(g: &'c Ctx<'_, '_>, emb: &Emb, ms: &[&str]) -> Result<Var<'c>> {
    fused(g, emb, "user_modality:", ms)
}

/// `Y` on the modalities `ms`: `[B]` for pairs, `[B, n_items]` when the
/// map holds every item (`all_modality:<m>`).
pub fn score<'c>(g: &'c Ctx<'_, '_>, emb: &Emb, ms: &[&str]) -> Result<Var<'c>> {
    let u = user_rep(g, emb, ms)?;
    if emb.get(&format!("all_modality:{}", ms[0])).is_some() {
        let items = fused(g, emb, "all_modality:", ms)?;
        Ok(u.matmul(items.transpose(0, 1)))
    } else {
        let i = fused(g, emb, "modality:", ms)?;
        Ok((u * i).sum(-1))
    }
}

/// `ln sigmoid(x)`, stably.
pub fn log_sigmoid(x: Var<'_>) -> Var<'_> {
    -((-x).softplus())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exposure_and_content_split() {
        let mods = names(&["genre", "title", "year"]);
        let (e, c) = split(&mods, "title", "hcr").unwrap();
        assert_eq!(e, "title");
        assert_eq!(c, vec!["genre", "year"]);
        let err = split(&mods, "cover", "hcr").unwrap_err();
        assert!(
            err.contains("'cover'") && err.contains("genre, title, year"),
            "{err}"
        );
        let err = split(&names(&["title"]), "title", "hcr").unwrap_err();
        assert!(err.contains("content modality"), "{err}");
        assert!(split(&[], "title", "hcr").unwrap_err().contains("mmgcn"));
    }
}
