//! CP2Rec's bias-disentangling operators (Liu et al. MM'23) run on the
//! host executor and compared with the equations written out by hand:
//! PROJ's `z - proj(z, c)` (Eq. 5-6), COS's mean |cos| (Eq. 4), and CLUB's
//! upper bound (Eq. 8, with the explicit I x I double sum over Gaussian
//! log-densities) and fitting loss.

mod common;

use causalrec_proxy::club::Club;
use causalrec_proxy::cp2rec::{mean_abs_cos, project_out};
use common::with_ctx;

const B: usize = 3;
const D: usize = 2;
const Z: [[f64; D]; B] = [[1.0, 2.0], [-0.5, 0.3], [2.0, -1.0]];
const C: [[f64; D]; B] = [[0.5, 0.0], [1.0, 1.0], [-0.2, 0.4]];

fn flat(x: &[[f64; D]; B]) -> Vec<f64> {
    x.iter().flatten().copied().collect()
}

#[test]
fn proj_and_cos_match_the_equations() {
    with_ctx(|g| {
        let z = g.constant(&flat(&Z), &[B, D]);
        let c = g.constant(&flat(&C), &[B, D]);
        let got = g.values(project_out(z, c)).unwrap();
        let mut cos_sum = 0.0;
        for b in 0..B {
            let (zz, cc) = (Z[b], C[b]);
            let dot = zz[0] * cc[0] + zz[1] * cc[1];
            let cn = cc[0] * cc[0] + cc[1] * cc[1];
            for k in 0..D {
                // Eq. 5-6: z - (z . c / |c|) (c / |c|)
                let want = zz[k] - dot / cn * cc[k];
                assert!(
                    (got[b * D + k] - want).abs() < 1e-9,
                    "[{b}][{k}]: {} vs {want} ({got:?})",
                    got[b * D + k]
                );
            }
            let purified = [got[b * D], got[b * D + 1]];
            assert!((purified[0] * cc[0] + purified[1] * cc[1]).abs() < 1e-9);
            cos_sum += (dot / ((zz[0] * zz[0] + zz[1] * zz[1]).sqrt() * cn.sqrt())).abs();
        }
        let cos = g.values(mean_abs_cos(z, c)).unwrap()[0];
        assert!(
            (cos - cos_sum / B as f64).abs() < 1e-9,
            "{cos} vs {}",
            cos_sum / B as f64
        );
    });
}

/// `log N(y; mu, exp(logvar))` summed over dimensions.
fn log_density(y: &[f64], mu: &[f64], logvar: &[f64]) -> f64 {
    (0..y.len())
        .map(|k| {
            -0.5 * (2.0 * std::f64::consts::PI).ln()
                - 0.5 * logvar[k]
                - (y[k] - mu[k]).powi(2) / (2.0 * logvar[k].exp())
        })
        .sum()
}

#[test]
fn club_upper_bound_and_fit_loss_match_the_double_sum() {
    with_ctx(|g| {
        let z = g.constant(&flat(&Z), &[B, D]);
        let c = g.constant(&flat(&C), &[B, D]);
        let club = Club {
            name: "club".into(),
            dim: D,
            hidden: 4,
        };
        let bound = g.values(club.upper_bound(g, z, c)).unwrap()[0];
        let fit = g.values(club.fit_loss(g, z, c)).unwrap()[0];
        let (mu, lv) = club.gaussian(g, z, false);
        let (mu, lv) = (g.values(mu).unwrap(), g.values(lv).unwrap());
        let row = |v: &[f64], i: usize| v[i * D..(i + 1) * D].to_vec();
        // Eq. 8: 1/I sum_i [log q(c_i | z_i) - 1/I sum_j log q(c_j | z_i)]
        let mut want = 0.0;
        let mut nll = 0.0;
        for (i, ci) in C.iter().enumerate() {
            let (m, l) = (row(&mu, i), row(&lv, i));
            let own = log_density(ci, &m, &l);
            let others: f64 = (0..B).map(|j| log_density(&C[j], &m, &l)).sum::<f64>() / B as f64;
            want += own - others;
            nll += (0..D)
                .map(|k| (ci[k] - m[k]).powi(2) / l[k].exp() + l[k])
                .sum::<f64>();
        }
        want /= B as f64;
        assert!((bound - want).abs() < 1e-12, "{bound} vs {want}");
        assert!(
            (fit - nll / B as f64).abs() < 1e-12,
            "{fit} vs {}",
            nll / B as f64
        );
        // the q network is not trivial: the log-variance head is not all 0
        assert!(lv.iter().any(|x| x.abs() > 1e-6), "{lv:?}");
    });
}
