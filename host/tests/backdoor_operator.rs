//! DecRS's backdoor operator M(d_bar, u) (Eq. 7 and Eq. 8 of Wang et al.
//! KDD'21) run on the host executor and compared with the equations
//! written out as explicit sums over groups and user features.

mod common;

use causalrec_backdoor::decrs::{backdoor_field, Operator};
use causalrec_sdk::{Ctx, Emb, Init};
use common::with_ctx;

const B: usize = 2;
const D: usize = 3;
/// Two user-side fields (`user`, `user.age`) and one item field, per example.
const USER: [[f64; D]; B] = [[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]];
const AGE: [[f64; D]; B] = [[0.2, -0.4, 1.5], [-2.0, 1.0, 0.25]];
const ITEM: [[f64; D]; B] = [[9.0, 9.0, 9.0], [7.0, 7.0, 7.0]];
const PRIOR: [f64; 2] = [0.7, 0.3];

/// M for each example by the equations, with group embeddings `v` `[N][D]`.
fn by_hand(op: Operator, v: &[Vec<f64>]) -> Vec<[f64; D]> {
    (0..B)
        .map(|b| {
            let users = [USER[b], AGE[b]];
            let mut m = [0.0; D];
            for k in 0..D {
                match op {
                    // Eq. 7: sum_a sum_b p(g_a) v_a ⊙ x_ub u_b
                    Operator::ElementWise => {
                        for (a, va) in v.iter().enumerate() {
                            for u in &users {
                                m[k] += PRIOR[a] * va[k] * u[k];
                            }
                        }
                    }
                    // Eq. 8: pairwise interactions over w_a c_a = [p(g) v .., u ..]
                    Operator::Fm => {
                        let mut c: Vec<f64> = v
                            .iter()
                            .enumerate()
                            .map(|(a, va)| PRIOR[a] * va[k])
                            .collect();
                        c.extend(users.iter().map(|u| u[k]));
                        for i in 0..c.len() {
                            for j in i + 1..c.len() {
                                m[k] += c[i] * c[j];
                            }
                        }
                    }
                }
            }
            m
        })
        .collect()
}

fn check(op: Operator) {
    with_ctx(|ctx| check_on(ctx, op));
}

fn check_on(ctx: &Ctx<'_, '_>, op: Operator) {
    let flat = |x: &[[f64; D]; B]| x.iter().flatten().copied().collect::<Vec<f64>>();
    let mut emb = Emb::default();
    emb.push_field("user", ctx.constant(&flat(&USER), &[B, D]).id);
    emb.push_field("item", ctx.constant(&flat(&ITEM), &[B, D]).id);
    emb.push_field("user.age", ctx.constant(&flat(&AGE), &[B, D]).id);
    let m = backdoor_field(ctx, &emb, &PRIOR, op, 0.5).expect("operator");
    let got = ctx.values(m).expect("values");
    // The group embeddings the operator created (random normal, std 0.5).
    let v = ctx
        .values(ctx.param("group_emb", &[2, D], Init::ZEROS))
        .unwrap();
    let v: Vec<Vec<f64>> = v.chunks(D).map(<[f64]>::to_vec).collect();
    assert!(v.iter().flatten().any(|&x| x.abs() > 1e-3), "{v:?}");
    let want = by_hand(op, &v);
    assert_eq!(got.len(), B * D);
    for b in 0..B {
        for k in 0..D {
            let (x, y) = (got[b * D + k], want[b][k]);
            assert!((x - y).abs() < 1e-12, "{op:?} [{b}][{k}]: {x} vs {y}");
        }
    }
}

#[test]
fn element_wise_operator_matches_eq7() {
    check(Operator::ElementWise);
}

#[test]
fn fm_operator_matches_eq8() {
    check(Operator::Fm);
}

#[test]
fn no_user_fields_is_an_error() {
    with_ctx(|ctx| {
        let mut emb = Emb::default();
        emb.push_field("item", ctx.constant(&[1.0, 2.0], &[1, 2]).id);
        let e = backdoor_field(ctx, &emb, &PRIOR, Operator::Fm, 0.1).unwrap_err();
        assert!(e.contains("no user fields"), "{e}");
    });
}
