//! The CPU fast paths of the vendored candle-core (vendor/README.md), each
//! against the values written out by hand or by plain loops in f64:
//! materialising an inner broadcast (`[n, 1]` -> `[n, d]`), ReLU's one-pass
//! backward (sequential and parallel sizes, the value at 0), the weight
//! gradient of a matrix product whose batch rows are split over threads,
//! and the first gradient of an `index_select` input scattered in one pass.

use candle_core::{DType, Device, Tensor, Var};

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

/// A deterministic pseudo-random value in [-1, 1) for index `i`.
fn noise(i: usize, salt: u64) -> f64 {
    let mut z = (i as u64)
        .wrapping_add(salt)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z ^= z >> 31;
    z = z.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^= z >> 29;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

fn tensor(shape: &[usize], salt: u64, dtype: DType) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|i| noise(i, salt)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

#[test]
fn an_inner_broadcast_is_copied_as_runs_of_each_value() {
    let col = Tensor::new(&[[1f32], [2.], [3.]], &Device::Cpu).unwrap();
    let wide = col.broadcast_as((3, 4)).unwrap().contiguous().unwrap();
    assert_eq!(
        values(&wide),
        [1., 1., 1., 1., 2., 2., 2., 2., 3., 3., 3., 3.]
    );
    // Two broadcast inner dims, and a scalar broadcast to everything.
    let cube = col
        .reshape((3, 1, 1))
        .unwrap()
        .broadcast_as((3, 2, 2))
        .unwrap()
        .contiguous()
        .unwrap();
    assert_eq!(
        values(&cube),
        [1., 1., 1., 1., 2., 2., 2., 2., 3., 3., 3., 3.]
    );
    let s = Tensor::new(7f32, &Device::Cpu).unwrap();
    assert_eq!(
        values(&s.broadcast_as((2, 3)).unwrap().contiguous().unwrap()),
        [7.; 6]
    );
    // A transposed outer part: the runs follow the view's order.
    let m = Tensor::new(&[[1f32, 2.], [3., 4.]], &Device::Cpu).unwrap();
    let t = m
        .t()
        .unwrap()
        .unsqueeze(2)
        .unwrap()
        .broadcast_as((2, 2, 3))
        .unwrap()
        .contiguous()
        .unwrap();
    assert_eq!(values(&t), [1., 1., 1., 3., 3., 3., 2., 2., 2., 4., 4., 4.]);
    // A broadcast middle dim (not innermost) and a narrowed source.
    let row = Tensor::new(&[[1f32, 2., 3.]], &Device::Cpu).unwrap();
    let mid = row.broadcast_as((2, 3)).unwrap().contiguous().unwrap();
    assert_eq!(values(&mid), [1., 2., 3., 1., 2., 3.]);
    let narrowed = Tensor::new(&[[9f32], [1.], [2.]], &Device::Cpu)
        .unwrap()
        .narrow(0, 1, 2)
        .unwrap()
        .broadcast_as((2, 3))
        .unwrap()
        .contiguous()
        .unwrap();
    assert_eq!(values(&narrowed), [1., 1., 1., 2., 2., 2.]);
}

#[test]
fn relu_backward_is_the_gradient_where_the_input_is_at_least_zero() {
    // 7 elements (one pass) and 2^17 (split over threads), f32 and f64.
    for (n, dtype) in [
        (7, DType::F32),
        (1 << 17, DType::F32),
        (1 << 17, DType::F64),
    ] {
        let mut xv: Vec<f64> = (0..n).map(|i| noise(i, 1)).collect();
        xv[0] = 0.0;
        xv[1] = -0.0;
        let x = Var::from_tensor(
            &Tensor::from_vec(xv.clone(), n, &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap(),
        )
        .unwrap();
        let r = tensor(&[n], 2, dtype);
        let f = (x.relu().unwrap() * &r).unwrap().sum_all().unwrap();
        let g = values(f.backward().unwrap().get(&x).unwrap());
        let rv = values(&r);
        for i in 0..n {
            let want = if xv[i] >= 0.0 { rv[i] } else { 0.0 };
            assert_eq!(g[i], want, "element {i} of {n} ({dtype:?}): x = {}", xv[i]);
        }
    }
}

#[test]
fn a_long_matrix_products_weight_gradient_is_the_sum_over_its_rows() {
    // [k, m] x [m, n] with k long enough for the split, and k not a
    // multiple of the thread count; in a pool of 3 threads, so that the
    // split runs on a machine of any size.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    pool.install(weight_gradients_match_the_sums);
}

fn weight_gradients_match_the_sums() {
    for (k, m, n) in [(8193, 16, 8), (5000, 3, 1)] {
        let x = tensor(&[k, m], 3, DType::F64);
        let w = Var::from_tensor(&tensor(&[m, n], 4, DType::F64)).unwrap();
        let r = tensor(&[k, n], 5, DType::F64);
        let f = (x.matmul(&w).unwrap() * &r).unwrap().sum_all().unwrap();
        let g = values(f.backward().unwrap().get(&w).unwrap());
        let (xv, rv) = (values(&x), values(&r));
        for a in 0..m {
            for b in 0..n {
                let want: f64 = (0..k).map(|i| xv[i * m + a] * rv[i * n + b]).sum();
                let got = g[a * n + b];
                assert!(
                    (got - want).abs() <= 1e-9 * (1.0 + want.abs()),
                    "dW[{a}, {b}] for k = {k}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn index_select_backward_sums_the_rows_of_repeated_ids() {
    // Ids with repeats in both selects (the backward reaches either one
    // first), u32 and i64, f32 and f64; the table used by two selects (the
    // second gradient is added to the first).
    for (dtype, wide_ids) in [(DType::F32, false), (DType::F64, true), (DType::F32, true)] {
        let (rows, d) = (5, 3);
        let table = Var::from_tensor(&tensor(&[rows, d], 6, dtype)).unwrap();
        let ids_of = |v: &[u32]| {
            let t = Tensor::new(v, &Device::Cpu).unwrap();
            if wide_ids {
                t.to_dtype(DType::I64).unwrap()
            } else {
                t
            }
        };
        let (a, b) = ([4u32, 0, 4, 2, 4, 0], [1u32, 4, 1]);
        let ra = tensor(&[a.len(), d], 7, dtype);
        let rb = tensor(&[b.len(), d], 8, dtype);
        let fa = (table.index_select(&ids_of(&a), 0).unwrap() * &ra).unwrap();
        let fb = (table.index_select(&ids_of(&b), 0).unwrap() * &rb).unwrap();
        let f = (fa.sum_all().unwrap() + fb.sum_all().unwrap()).unwrap();
        let g = values(f.backward().unwrap().get(&table).unwrap());
        let (rav, rbv) = (values(&ra), values(&rb));
        let mut want = vec![0.0; rows * d];
        for (k, &r) in a.iter().enumerate() {
            for j in 0..d {
                want[r as usize * d + j] += rav[k * d + j];
            }
        }
        for (k, &r) in b.iter().enumerate() {
            for j in 0..d {
                want[r as usize * d + j] += rbv[k * d + j];
            }
        }
        for (i, (g, w)) in g.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6 * (1.0 + w.abs()),
                "element {i} ({dtype:?}): {g} vs {w}"
            );
        }
        // Row 3 is selected by neither: its gradient is zero.
        assert!(g[3 * d..4 * d].iter().all(|&v| v == 0.0));
    }
}
