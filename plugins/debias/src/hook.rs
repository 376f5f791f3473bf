//! Rewrites of a backbone's hook-point map shared by the estimators here:
//! re-pairing users with other rows' items (CVIB's unobserved pairs) and
//! masking embedding coordinates (DIB's unbiased / biased components).

use causalrec_sdk::{Ctx, Emb, FieldSide, Result, Var};

/// True for a hook-point entry that belongs to the user side of an example:
/// `user`, `user_*` / `user.*` / `user_modality:*`, the history and its
/// mask, and the schema's user fields.
fn user_side(name: &str, user_fields: &[String]) -> bool {
    name == "user"
        || name.starts_with("user_")
        || name.starts_with("user.")
        || name.starts_with("history")
        || user_fields.iter().any(|f| f == name)
}

/// The hook-point map of the pairs (user of row `b`, item of row `b + 1 mod B`):
/// user-side entries stay, every other entry of batch width `B` (the item,
/// its biases and fields, context fields) is taken from the next row. An
/// entry that mixes both sides (FM's first-order sum `linear`) follows the
/// item. The batch rows are in random order, so these are random
/// (user, item) pairs from the batch's users and items.
pub fn shifted_pairs(g: &Ctx<'_, '_>, emb: &Emb) -> Result<Emb> {
    let b = g.input("user").dim(0);
    if b == 0 {
        return Err("the batch has no rows".into());
    }
    let user_fields: Vec<String> = g
        .schema()
        .fields
        .iter()
        .filter(|f| f.side == FieldSide::User)
        .map(|f| f.name.to_string())
        .collect();
    let next: Vec<f64> = (0..b).map(|r| ((r + 1) % b) as f64).collect();
    let ids = g.constant(&next, &[b]);
    let shift = |name: &str, v: Var<'_>| {
        if user_side(name, &user_fields) || v.dim(0) != b {
            v.id
        } else {
            v.index_select(ids, 0).id
        }
    };
    let mut out = emb.clone();
    for e in out.vars.iter_mut().chain(out.fields.iter_mut()) {
        e.var = shift(e.name.as_str(), g.var(e.var));
    }
    Ok(out)
}

/// Which coordinates of each embedding a [`masked`] map keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    /// Even coordinates (and the scalar entries: biases, first-order terms).
    Even,
    /// Odd coordinates only (scalar entries zeroed).
    Odd,
}

/// The hook-point map with every embedding (an entry of rank >= 2) masked
/// to the `half` of its last-dim coordinates; entries of rank 1 (biases,
/// `linear`) are kept by `Even` and zeroed by `Odd`; masks (`*mask`) stay.
pub fn masked(g: &Ctx<'_, '_>, emb: &Emb, half: Half) -> Result<Emb> {
    let keep = match half {
        Half::Even => 0,
        Half::Odd => 1,
    };
    let mut out = emb.clone();
    for e in out.vars.iter_mut().chain(out.fields.iter_mut()) {
        if e.name.as_str().ends_with("mask") {
            continue;
        }
        let v = g.var(e.var);
        let shape = v.shape();
        e.var = match shape.len() {
            0 => return Err(format!("hook point '{}' has no shape", e.name)),
            1 => match half {
                Half::Even => v.id,
                Half::Odd => (v * 0.0).id,
            },
            _ => {
                let d = shape[shape.len() - 1];
                let m: Vec<f64> = (0..d)
                    .map(|k| if k % 2 == keep { 1.0 } else { 0.0 })
                    .collect();
                (v * g.constant(&m, &[d])).id
            }
        };
    }
    Ok(out)
}
