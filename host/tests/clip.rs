//! Gradient clipping (`clip_grad_norm`): the global L2 norm over the dense
//! gradients and the touched rows' summed gradients, checked against a hand
//! computation of one SGD step; a norm under the limit leaves the step as it is.

use candle_core::{DType, Device, Tensor};
use causalrec_host::exec::store::OptimConfig;
use causalrec_host::exec::{Leaf, Model};
use causalrec_sdk::Init;

/// A model with a dense `w = [1, 1]` and a 3 x 2 table of 0.5, one SGD
/// (lr 0.1) step on `sum(w * [3, 4]) + sum(rows[0, 2] * [[1, 2], [3, 4]]) +
/// sum(rows[2] * [[5, 6]])`: gradients w: [3, 4], row 0: [1, 2], row 2 (two
/// lookups, summed): [8, 10]; ||g||^2 = 9 + 16 + 1 + 4 + 64 + 100 = 194.
fn step(clip: Option<f64>) -> (Vec<f32>, Vec<f32>) {
    let optim = OptimConfig {
        kind: "sgd".into(),
        lr: 0.1,
        ..OptimConfig::default()
    };
    let dev = Device::Cpu;
    let mut m = Model::new(1, DType::F32, dev.clone(), optim);
    m.clip_grad_norm = clip;
    let w = m.dense.get_or_init("w", &[2], Init::constant(1.0)).unwrap();
    m.tables.declare("t", 3, 2, Init::constant(0.5)).unwrap();
    let leaf = |rows: Vec<u32>| {
        let x = m.tables.gather("t", &rows, DType::F32, &dev).unwrap();
        Leaf {
            table: "t".into(),
            rows,
            dim: 2,
            var: x,
        }
    };
    let (a, b) = (leaf(vec![0, 2]), leaf(vec![2]));
    let c = |v: &[f32], shape: &[usize]| Tensor::from_slice(v, shape, &dev).unwrap();
    let loss = (w.as_tensor() * c(&[3., 4.], &[2]))
        .unwrap()
        .sum_all()
        .unwrap();
    let la = (a.var.as_tensor() * c(&[1., 2., 3., 4.], &[2, 2]))
        .unwrap()
        .sum_all()
        .unwrap();
    let lb = (b.var.as_tensor() * c(&[5., 6.], &[1, 2]))
        .unwrap()
        .sum_all()
        .unwrap();
    let loss = ((loss + la).unwrap() + lb).unwrap();
    m.apply_grads(&loss, &[a, b]).unwrap();
    let w: Vec<f32> = m.dense.params["w"].as_tensor().to_vec1().unwrap();
    (w, m.tables.tables["t"].data().to_vec())
}

fn close(got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((*g as f64 - w).abs() < 1e-6, "got {got:?}, want {want:?}");
    }
}

#[test]
fn clipped_sgd_step_matches_the_hand_computation() {
    let norm = 194f64.sqrt();
    let s = 1.0 / norm; // clip 1.0
    let (w, t) = step(Some(1.0));
    close(&w, &[1.0 - 0.1 * 3.0 * s, 1.0 - 0.1 * 4.0 * s]);
    close(
        &t,
        &[
            0.5 - 0.1 * s,
            0.5 - 0.2 * s,
            0.5,
            0.5,
            0.5 - 0.8 * s,
            0.5 - 1.0 * s,
        ],
    );
    // The clipped update's own norm: lr * clip.
    let du: f64 = w
        .iter()
        .chain(&t)
        .zip([1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
        .map(|(x, x0)| (*x as f64 - x0).powi(2))
        .sum();
    assert!((du.sqrt() - 0.1).abs() < 1e-6, "{}", du.sqrt());
}

#[test]
fn a_norm_under_the_limit_is_not_clipped() {
    let plain = step(None);
    assert_eq!(step(Some(14.0)), plain); // 14 > sqrt(194) = 13.93
    close(&plain.0, &[1.0 - 0.3, 1.0 - 0.4]);
    close(&plain.1, &[0.4, 0.3, 0.5, 0.5, 0.5 - 0.8, 0.5 - 1.0]);
}
