//! Every op of `causalrec_sdk::ops` checked in f64: reverse-mode gradients
//! against central finite differences, plus value checks against hand
//! formulas and error cases.
//!
//! For a differentiable op `f = sum(op(inputs) * R)` with a fixed random `R`
//! of the output's shape (or just the output when it is a scalar); each float
//! input is a `candle_core::Var`, and each element of its gradient is compared
//! with `(f(x + h) - f(x - h)) / 2h`, `h = 1e-6`.
//!
//! Built with the host's `cuda` feature and run where a GPU is found, every
//! check also runs on CUDA and its output and analytic gradients must match
//! the CPU's (`cuda_matches_cpu`; scripts/cuda/run-gpu.sh runs this binary).

// Index loops mirror the formulas; slices of one cloned tensor read plainly.
#![allow(clippy::needless_range_loop, clippy::cloned_ref_to_slice_refs)]

use std::cell::RefCell;
use std::collections::BTreeSet;

use candle_core::{DType, Device, Tensor, Var};
use causalrec_host::exec::ops::{apply, OpEnv};
use causalrec_sdk::ops::{self, *};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Finite-difference step.
const H: f64 = 1e-6;
/// `|analytic - numeric| <= TOL * (1 + |analytic|)` per element.
const TOL: f64 = 1e-7;
/// GELU only: see `check`.
const GELU_TOL: f64 = 2e-6;

/// Every op code this file exercises; `every_op_code_is_tested` compares it
/// with `ops::ALL`, so a new op without a test here fails the suite.
const TESTED: &[u32] = &[
    ADD,
    SUB,
    MUL,
    DIV,
    MATMUL,
    NEG,
    EXP,
    LOG,
    SQRT,
    ABS,
    POW,
    SIGMOID,
    TANH,
    RELU,
    LEAKY_RELU,
    GELU,
    SOFTPLUS,
    SUM,
    MEAN,
    MAX,
    SOFTMAX,
    LOG_SOFTMAX,
    CONCAT,
    NARROW,
    RESHAPE,
    TRANSPOSE,
    PERMUTE,
    UNSQUEEZE,
    SQUEEZE,
    BROADCAST_AS,
    INDEX_SELECT,
    GATHER,
    INDEX_ADD,
    WHERE,
    MASKED_FILL,
    DROPOUT,
    LAYER_NORM,
    DETACH,
    BCE_WITH_LOGITS,
    MSE,
    BPR,
    CROSS_ENTROPY,
    AFFINE,
    SUM_ALL,
    MEAN_ALL,
    MIN,
    CLAMP,
    SQUARE,
    TO_FLOAT,
    MAXIMUM,
    MINIMUM,
    BI_INTERACTION,
    DICE,
    EDGE_SUM,
];

// ---------------------------------------------------------------- helpers

thread_local! {
    /// The device the helpers build tensors and run ops on (CPU, or CUDA
    /// while `cuda_matches_cpu` replays a check).
    static DEVICE: RefCell<Device> = const { RefCell::new(Device::Cpu) };
}

fn device() -> Device {
    DEVICE.with(|d| d.borrow().clone())
}

fn run_env(
    code: u32,
    inputs: &[Tensor],
    ints: &[i64],
    floats: &[f64],
    training: bool,
    seed: u64,
) -> Result<Tensor, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dev = device();
    let mut env = OpEnv {
        dtype: DType::F64,
        device: &dev,
        training,
        rng: &mut rng,
    };
    apply(code, inputs, ints, floats, &mut env)
}

fn run(code: u32, inputs: &[Tensor], ints: &[i64], floats: &[f64]) -> Result<Tensor, String> {
    run_env(code, inputs, ints, floats, false, 0)
}

/// `run`, panicking with the op's name on error.
fn op(code: u32, inputs: &[Tensor], ints: &[i64], floats: &[f64]) -> Tensor {
    run(code, inputs, ints, floats)
        .unwrap_or_else(|e| panic!("{} {ints:?} {floats:?}: {e}", op_name(code)))
}

fn t(shape: &[usize], vals: Vec<f64>) -> Tensor {
    Tensor::from_vec(vals, shape, &device()).unwrap()
}

fn u32t(shape: &[usize], vals: Vec<u32>) -> Tensor {
    Tensor::from_vec(vals, shape, &device()).unwrap()
}

fn vals(x: &Tensor) -> Vec<f64> {
    x.flatten_all()
        .and_then(|x| x.to_device(&Device::Cpu))
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Uniform values in `[lo, hi)`.
fn uniform(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| lo + (hi - lo) * r.random::<f64>()).collect()
}

/// Random signs with `|x|` in `[lo, hi)`: away from the kink at 0.
fn away(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let m = lo + (hi - lo) * r.random::<f64>();
            if r.random::<bool>() {
                m
            } else {
                -m
            }
        })
        .collect()
}

/// Pairwise distinct values in about `[-2, 2]`, spaced by at least `4 / n * 0.5`.
fn distinct(seed: u64, n: usize) -> Vec<f64> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let mut perm: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = r.random_range(0..=i);
        perm.swap(i, j);
    }
    let step = 4.0 / n as f64;
    perm.iter()
        .map(|&k| -2.0 + step * (k as f64 + 0.25 + 0.5 * r.random::<f64>()))
        .collect()
}

/// An input of a gradient check.
enum In {
    /// A float input to differentiate against: shape and values.
    Diff(Vec<usize>, Vec<f64>),
    /// A constant input (ids, masks, labels).
    Fixed(Tensor),
}

fn d(shape: &[usize], v: Vec<f64>) -> In {
    assert_eq!(numel(shape), v.len());
    In::Diff(shape.to_vec(), v)
}

/// The worst `|analytic - numeric| / (1 + |analytic|)` of the check.
type Worst = f64;

/// Check the gradients of `sum(f(inputs) * R)` against central differences.
/// Returns the output of `f` at the given inputs.
fn check_fn(label: &str, ins: &[In], f: &dyn Fn(&[Tensor]) -> Tensor) -> (Tensor, Worst) {
    check_fn_tol(label, ins, f, TOL)
}

/// `check_fn` with an explicit tolerance.
fn check_fn_tol(
    label: &str,
    ins: &[In],
    f: &dyn Fn(&[Tensor]) -> Tensor,
    tol: f64,
) -> (Tensor, Worst) {
    let (vars, base) = leaves(ins);
    let out = f(&base);
    assert_eq!(out.dtype(), DType::F64, "{label}: output dtype");
    let r = projection(&out);
    let scalar = |o: Tensor| -> Tensor {
        match &r {
            Some(r) => (o * r).unwrap().sum_all().unwrap(),
            None => o,
        }
    };
    let loss = scalar(out.clone());
    let grads = loss.backward().unwrap();
    let mut worst: f64 = 0.0;
    let mut checked = 0;
    for (k, i) in ins.iter().enumerate() {
        let (In::Diff(shape, v), Some(var)) = (i, &vars[k]) else {
            continue;
        };
        checked += 1;
        let g = match grads.get(var.as_tensor()) {
            Some(g) => {
                assert_eq!(g.dims(), &shape[..], "{label}: gradient shape of input {k}");
                vals(g)
            }
            None => vec![0.0; v.len()],
        };
        let eval = |x: Vec<f64>| -> f64 {
            let mut ts = base.clone();
            ts[k] = t(shape, x);
            scalar(f(&ts)).to_scalar::<f64>().unwrap()
        };
        for e in 0..v.len() {
            let mut p = v.clone();
            p[e] += H;
            let mut m = v.clone();
            m[e] -= H;
            let num = (eval(p) - eval(m)) / (2.0 * H);
            let ratio = (g[e] - num).abs() / (1.0 + g[e].abs());
            assert!(
                ratio <= tol,
                "{label}: d/d input{k}[{e}] analytic {} vs numeric {num} (ratio {ratio:e})",
                g[e]
            );
            worst = worst.max(ratio);
        }
    }
    assert!(checked > 0, "{label}: nothing to differentiate");
    #[cfg(feature = "cuda")]
    cuda_matches_cpu(label, ins, f, &out, &grads, &vars);
    (out, worst)
}

/// Replay a check on CUDA (when a GPU is found): the output and every
/// analytic gradient must match the CPU's to `1e-9 * (1 + |cpu|)` (f64;
/// CUDA's transcendental functions may differ from the CPU's in the last
/// digits). Inputs and the random projection `R` are the CPU's values.
#[cfg(feature = "cuda")]
fn cuda_matches_cpu(
    label: &str,
    ins: &[In],
    f: &dyn Fn(&[Tensor]) -> Tensor,
    cpu_out: &Tensor,
    cpu_grads: &candle_core::backprop::GradStore,
    cpu_vars: &[Option<Var>],
) {
    let Ok(cuda) = Device::new_cuda(0) else {
        return;
    };
    DEVICE.with(|d| *d.borrow_mut() = cuda);
    let (vars, base) = leaves(ins);
    let out = f(&base);
    let close = |what: &str, a: &[f64], b: &[f64]| {
        assert_eq!(a.len(), b.len(), "{label}: {what}: lengths on CPU and CUDA");
        for (e, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-9 * (1.0 + x.abs()) || (x.is_nan() && y.is_nan()),
                "{label}: {what}[{e}]: CPU {x} vs CUDA {y}"
            );
        }
    };
    close("output", &vals(cpu_out), &vals(&out));
    let loss = match projection(&out) {
        Some(r) => (out * r).unwrap().sum_all().unwrap(),
        None => out,
    };
    let grads = loss.backward().unwrap();
    for (k, (cv, gv)) in cpu_vars.iter().zip(&vars).enumerate() {
        if let (Some(cv), Some(gv)) = (cv, gv) {
            let a = cpu_grads.get(cv.as_tensor()).map(vals).unwrap_or_default();
            let b = grads.get(gv.as_tensor()).map(vals).unwrap_or_default();
            close(&format!("gradient of input {k}"), &a, &b);
        }
    }
    DEVICE.with(|d| *d.borrow_mut() = Device::Cpu);
}

/// The inputs of a check on the current device: a variable per
/// differentiated input, and every input's tensor.
fn leaves(ins: &[In]) -> (Vec<Option<Var>>, Vec<Tensor>) {
    ins.iter()
        .map(|i| match i {
            In::Diff(s, v) => {
                let var = Var::from_tensor(&t(s, v.clone())).unwrap();
                let x = var.as_tensor().clone();
                (Some(var), x)
            }
            In::Fixed(x) => (None, x.to_device(&device()).unwrap()),
        })
        .unzip()
}

/// The fixed random `R` of `sum(out * R)` (none for a scalar output).
fn projection(out: &Tensor) -> Option<Tensor> {
    (out.rank() > 0).then(|| t(out.dims(), uniform(0xA5A5, out.elem_count(), -1.0, 1.0)))
}

/// `check_fn` for a single op.
fn check(code: u32, ins: &[In], ints: &[i64], floats: &[f64]) -> Tensor {
    // candle's GELU backward uses 6-digit constants (0.797885 for sqrt(2/pi),
    // 0.398942, ...): its gradient is off by up to ~1e-6 relative, by design.
    let tol = if code == GELU { GELU_TOL } else { TOL };
    let label = format!("{} ints={ints:?} floats={floats:?}", op_name(code));
    let (out, worst) = check_fn_tol(&label, ins, &|ts| op(code, ts, ints, floats), tol);
    eprintln!("{label}: worst relative gradient error {worst:e}");
    out
}

fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// Stable `ln(1 + e^z)` in plain f64.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

// ---------------------------------------------------------------- coverage

#[test]
fn every_op_code_is_tested() {
    let all: BTreeSet<u32> = ops::ALL.iter().copied().collect();
    let tested: BTreeSet<u32> = TESTED.iter().copied().collect();
    let missing: Vec<&str> = all.difference(&tested).map(|&c| op_name(c)).collect();
    let unknown: Vec<u32> = tested.difference(&all).copied().collect();
    assert!(
        missing.is_empty(),
        "op codes without a test in grad_ops.rs: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "tested codes not in ops::ALL: {unknown:?}"
    );
    assert_eq!(TESTED.len(), tested.len(), "duplicates in TESTED");
}

// ---------------------------------------------------------------- binary

#[test]
fn grad_add_sub_mul_div_broadcast() {
    let shapes: &[(&[usize], &[usize])] = &[
        (&[3, 4], &[3, 4]),
        (&[3, 4], &[4]),
        (&[3, 4], &[3, 1]),
        (&[3, 1], &[4]),
        (&[2, 1, 4], &[3, 1]),
    ];
    for (n, &(sa, sb)) in shapes.iter().enumerate() {
        let s = n as u64 * 10;
        for code in [ADD, SUB, MUL, DIV] {
            let a = uniform(s + 1, numel(sa), -2.0, 2.0);
            let b = if code == DIV {
                away(s + 2, numel(sb), 0.5, 2.0)
            } else {
                uniform(s + 2, numel(sb), -2.0, 2.0)
            };
            let out = check(code, &[d(sa, a.clone()), d(sb, b.clone())], &[], &[]);
            // Value against a hand broadcast for the [3,4] x [4] case.
            if sa == [3, 4] && sb == [4] {
                let o = vals(&out);
                for i in 0..3 {
                    for j in 0..4 {
                        let (x, y) = (a[i * 4 + j], b[j]);
                        let want = match code {
                            ADD => x + y,
                            SUB => x - y,
                            MUL => x * y,
                            _ => x / y,
                        };
                        assert!((o[i * 4 + j] - want).abs() < 1e-15);
                    }
                }
            }
        }
    }
}

#[test]
fn grad_maximum_minimum() {
    // Distinct values across both operands: no ties.
    let all = distinct(3, 12 + 4);
    for code in [MAXIMUM, MINIMUM] {
        let out = check(
            code,
            &[d(&[3, 4], all[..12].to_vec()), d(&[4], all[12..].to_vec())],
            &[],
            &[],
        );
        let o = vals(&out);
        for i in 0..3 {
            for j in 0..4 {
                let (x, y) = (all[i * 4 + j], all[12 + j]);
                let want = if code == MAXIMUM { x.max(y) } else { x.min(y) };
                assert_eq!(o[i * 4 + j], want);
            }
        }
        let all2 = distinct(4, 12);
        check(
            code,
            &[
                d(&[3, 4], all2.clone()),
                d(&[3, 4], all2.iter().map(|x| -x).collect()),
            ],
            &[],
            &[],
        );
    }
}

#[test]
fn grad_matmul() {
    let cases: &[(&[usize], &[usize], &[usize])] = &[
        (&[3, 4], &[4, 5], &[3, 5]),
        (&[2, 3, 4], &[2, 4, 5], &[2, 3, 5]),
        (&[2, 3, 4], &[4, 5], &[2, 3, 5]),
        (&[3, 4], &[2, 4, 5], &[2, 3, 5]),
        (&[2, 1, 3, 4], &[3, 4, 2], &[2, 3, 3, 2]),
    ];
    for (n, &(sa, sb, so)) in cases.iter().enumerate() {
        let s = 100 + n as u64 * 2;
        let a = uniform(s, numel(sa), -1.0, 1.0);
        let b = uniform(s + 1, numel(sb), -1.0, 1.0);
        let out = check(MATMUL, &[d(sa, a.clone()), d(sb, b.clone())], &[], &[]);
        assert_eq!(out.dims(), so);
        if sa == [3, 4] && sb == [4, 5] {
            let o = vals(&out);
            for i in 0..3 {
                for j in 0..5 {
                    let want: f64 = (0..4).map(|k| a[i * 4 + k] * b[k * 5 + j]).sum();
                    assert!((o[i * 5 + j] - want).abs() < 1e-14);
                }
            }
        }
    }
    // A non-contiguous (transposed) operand.
    let (_, w) = check_fn(
        "MATMUL of a transposed operand",
        &[
            d(&[4, 3], uniform(120, 12, -1.0, 1.0)),
            d(&[4, 5], uniform(121, 20, -1.0, 1.0)),
        ],
        &|ts| {
            let at = op(TRANSPOSE, &ts[..1], &[0, 1], &[]);
            op(MATMUL, &[at, ts[1].clone()], &[], &[])
        },
    );
    eprintln!("MATMUL transposed: {w:e}");
    assert!(run(
        MATMUL,
        &[t(&[3], vec![1.0; 3]), t(&[3, 1], vec![1.0; 3])],
        &[],
        &[]
    )
    .is_err());
}

// ---------------------------------------------------------------- unary

#[test]
fn grad_unary() {
    let s = [3usize, 5];
    let n = 15;
    let general = uniform(200, n, -2.0, 2.0);
    let kinked = away(201, n, 0.05, 2.0);
    let positive = uniform(202, n, 0.2, 3.0);
    let cases: Vec<(u32, Vec<f64>, Vec<f64>)> = vec![
        (NEG, general.clone(), vec![]),
        (EXP, general.clone(), vec![]),
        (LOG, positive.clone(), vec![]),
        (SQRT, positive.clone(), vec![]),
        (ABS, kinked.clone(), vec![]),
        (POW, positive.clone(), vec![3.0]),
        (POW, positive.clone(), vec![0.5]),
        (POW, positive.clone(), vec![-1.5]),
        (POW, general.clone(), vec![2.0]),
        (SIGMOID, uniform(203, n, -6.0, 6.0), vec![]),
        (TANH, general.clone(), vec![]),
        (RELU, kinked.clone(), vec![]),
        (LEAKY_RELU, kinked.clone(), vec![0.1]),
        (LEAKY_RELU, kinked.clone(), vec![0.3]),
        (GELU, uniform(204, n, -4.0, 4.0), vec![]),
        (SOFTPLUS, uniform(205, n, -8.0, 8.0), vec![]),
        (SOFTPLUS, away(206, n, 20.0, 40.0), vec![]),
        (SQUARE, general.clone(), vec![]),
        (AFFINE, general.clone(), vec![-1.5, 0.25]),
        // Inside and well outside the bounds (gradient 0 there), never at them.
        (CLAMP, distinct(207, n), vec![-0.9, 1.1]),
    ];
    for (code, x, floats) in cases {
        let out = check(code, &[d(&s, x.clone())], &[], &floats);
        let o = vals(&out);
        for (i, &xi) in x.iter().enumerate() {
            let want = match code {
                NEG => -xi,
                EXP => xi.exp(),
                LOG => xi.ln(),
                SQRT => xi.sqrt(),
                ABS => xi.abs(),
                POW => xi.powf(floats[0]),
                SIGMOID => 1.0 / (1.0 + (-xi).exp()),
                TANH => xi.tanh(),
                RELU => xi.max(0.0),
                LEAKY_RELU => {
                    if xi > 0.0 {
                        xi
                    } else {
                        floats[0] * xi
                    }
                }
                GELU => {
                    let c = (2.0 / std::f64::consts::PI).sqrt();
                    0.5 * xi * (1.0 + (c * (xi + 0.044715 * xi.powi(3))).tanh())
                }
                SOFTPLUS => softplus(xi),
                SQUARE => xi * xi,
                AFFINE => xi * floats[0] + floats[1],
                CLAMP => xi.clamp(floats[0], floats[1]),
                _ => unreachable!(),
            };
            assert!(
                (o[i] - want).abs() <= 1e-12 * (1.0 + want.abs()),
                "{} value at {xi}: {} vs {want}",
                op_name(code),
                o[i]
            );
        }
    }
}

#[test]
fn values_by_hand() {
    let ln2 = std::f64::consts::LN_2;
    let zero = t(&[1], vec![0.0]);
    assert_eq!(vals(&op(SIGMOID, &[zero.clone()], &[], &[])), vec![0.5]);
    let sp = vals(&op(SOFTPLUS, &[zero.clone()], &[], &[]))[0];
    assert!((sp - ln2).abs() < 1e-15, "softplus(0) = {sp}");
    let bce = op(
        BCE_WITH_LOGITS,
        &[zero.clone(), t(&[1], vec![1.0])],
        &[],
        &[],
    );
    assert!((bce.to_scalar::<f64>().unwrap() - ln2).abs() < 1e-15);
    let bce0 = op(
        BCE_WITH_LOGITS,
        &[zero.clone(), t(&[1], vec![0.0])],
        &[],
        &[],
    );
    assert!((bce0.to_scalar::<f64>().unwrap() - ln2).abs() < 1e-15);
    let bpr = op(BPR, &[t(&[1], vec![1.0]), zero.clone()], &[], &[]);
    let want = (1.0 + (-1.0f64).exp()).ln();
    assert!((bpr.to_scalar::<f64>().unwrap() - want).abs() < 1e-15);
    // Large arguments stay finite.
    let big = t(&[4], vec![-800.0, -40.0, 40.0, 800.0]);
    let s = vals(&op(SIGMOID, &[big.clone()], &[], &[]));
    assert_eq!(s[0], 0.0);
    assert_eq!(s[3], 1.0);
    let sp = vals(&op(SOFTPLUS, &[big], &[], &[]));
    assert_eq!(sp[0], 0.0);
    assert_eq!(sp[3], 800.0);
    assert!(sp.iter().all(|v| v.is_finite()));
    // Cross-entropy of uniform logits over 4 classes is ln 4.
    let ce = op(
        CROSS_ENTROPY,
        &[t(&[2, 4], vec![3.0; 8]), u32t(&[2], vec![0, 3])],
        &[],
        &[],
    );
    assert!((ce.to_scalar::<f64>().unwrap() - 4f64.ln()).abs() < 1e-14);
    // Layer norm of [1, 2, 3] with eps 0: [-sqrt(1.5), 0, sqrt(1.5)].
    let ln = vals(&op(
        LAYER_NORM,
        &[t(&[1, 3], vec![1.0, 2.0, 3.0])],
        &[],
        &[0.0],
    ));
    let r = 1.5f64.sqrt();
    assert_close(&ln, &[-r, 0.0, r], 1e-14, "layer_norm");
}

// ---------------------------------------------------------------- reductions

#[test]
fn grad_reductions() {
    let s2 = [3usize, 4];
    let s3 = [2usize, 3, 4];
    for code in [SUM, MEAN, MAX, MIN] {
        for dim in [0i64, 1, -1, -2] {
            for keep in [0i64, 1] {
                let x = distinct(300 + dim.unsigned_abs(), 12);
                let out = check(code, &[d(&s2, x.clone())], &[dim, keep], &[]);
                let dd = if dim < 0 {
                    (2 + dim) as usize
                } else {
                    dim as usize
                };
                let mut want_shape = s2.to_vec();
                if keep != 0 {
                    want_shape[dd] = 1;
                } else {
                    want_shape.remove(dd);
                }
                assert_eq!(
                    out.dims(),
                    &want_shape[..],
                    "{} dim {dim} keep {keep}",
                    op_name(code)
                );
                // Values against a hand reduction.
                let o = vals(&out);
                let lanes: Vec<Vec<f64>> = if dd == 0 {
                    (0..4)
                        .map(|j| (0..3).map(|i| x[i * 4 + j]).collect())
                        .collect()
                } else {
                    (0..3).map(|i| x[i * 4..i * 4 + 4].to_vec()).collect()
                };
                for (k, lane) in lanes.iter().enumerate() {
                    let want = match code {
                        SUM => lane.iter().sum::<f64>(),
                        MEAN => lane.iter().sum::<f64>() / lane.len() as f64,
                        MAX => lane.iter().cloned().fold(f64::MIN, f64::max),
                        _ => lane.iter().cloned().fold(f64::MAX, f64::min),
                    };
                    assert!((o[k] - want).abs() < 1e-14);
                }
            }
        }
        for dim in [1i64, -3] {
            check(code, &[d(&s3, distinct(310, 24))], &[dim, 0], &[]);
        }
        // Keepdim defaults to off when the attribute is absent.
        let out = op(code, &[t(&s2, distinct(311, 12))], &[1], &[]);
        assert_eq!(out.dims(), &[3]);
    }
    check(SUM_ALL, &[d(&s3, uniform(320, 24, -1.0, 1.0))], &[], &[]);
    check(MEAN_ALL, &[d(&s3, uniform(321, 24, -1.0, 1.0))], &[], &[]);
    let x = uniform(322, 24, -1.0, 1.0);
    let sa = op(SUM_ALL, &[t(&s3, x.clone())], &[], &[]);
    let ma = op(MEAN_ALL, &[t(&s3, x.clone())], &[], &[]);
    assert_eq!(sa.rank(), 0);
    let total: f64 = x.iter().sum();
    assert!((sa.to_scalar::<f64>().unwrap() - total).abs() < 1e-14);
    assert!((ma.to_scalar::<f64>().unwrap() - total / 24.0).abs() < 1e-14);
}

// ---------------------------------------------------------------- softmax

#[test]
fn grad_softmax_unmasked() {
    for code in [SOFTMAX, LOG_SOFTMAX] {
        for (shape, dim) in [
            (vec![3usize, 5], -1i64),
            (vec![3, 5], 0),
            (vec![2, 3, 4], 1),
        ] {
            let n = numel(&shape);
            let out = check(code, &[d(&shape, uniform(400, n, -3.0, 3.0))], &[dim], &[]);
            let p = if code == SOFTMAX {
                out
            } else {
                out.exp().unwrap()
            };
            let sums = vals(
                &p.sum(if dim < 0 {
                    shape.len() - 1
                } else {
                    dim as usize
                })
                .unwrap(),
            );
            assert_close(&sums, &vec![1.0; sums.len()], 1e-14, "softmax row sums");
        }
        // Shift by a large constant: still exact (max-shifted).
        let x = uniform(401, 5, -1.0, 1.0);
        let a = vals(&op(code, &[t(&[1, 5], x.clone())], &[-1], &[]));
        let b = vals(&op(
            code,
            &[t(&[1, 5], x.iter().map(|v| v + 1000.0).collect())],
            &[-1],
            &[],
        ));
        assert_close(&a, &b, 1e-12, "softmax shift invariance");
    }
}

#[test]
fn grad_softmax_masked() {
    let (b, l) = (3usize, 6usize);
    let mask: Vec<u32> = vec![
        1, 1, 0, 1, 0, 1, //
        0, 1, 1, 1, 1, 1, //
        1, 0, 0, 0, 0, 1,
    ];
    let keep: Vec<f64> = mask.iter().map(|&m| m as f64).collect();
    let x = uniform(410, b * l, -3.0, 3.0);
    let m_u32 = u32t(&[b, l], mask.clone());
    let m_f64 = t(&[b, l], keep.clone());
    for m in [m_u32.clone(), m_f64.clone()] {
        let p = check(
            SOFTMAX,
            &[d(&[b, l], x.clone()), In::Fixed(m.clone())],
            &[-1],
            &[],
        );
        let pv = vals(&p);
        for i in 0..b {
            let row = &pv[i * l..(i + 1) * l];
            let mut s = 0.0;
            let z: f64 = (0..l)
                .filter(|&j| mask[i * l + j] != 0)
                .map(|j| x[i * l + j].exp())
                .sum();
            for j in 0..l {
                if mask[i * l + j] == 0 {
                    assert_eq!(row[j], 0.0, "masked probability at ({i}, {j})");
                } else {
                    let want = x[i * l + j].exp() / z;
                    assert!((row[j] - want).abs() < 1e-14);
                }
                s += row[j];
            }
            assert!((s - 1.0).abs() < 1e-14, "row {i} sums to {s}");
        }
        // Log-softmax: masked entries are very negative; weigh them by 0 so that
        // f stays O(1) and the difference quotient is meaningful.
        let keep_t = m_f64.clone();
        let (lp, w) = check_fn(
            "LOG_SOFTMAX masked",
            &[d(&[b, l], x.clone()), In::Fixed(m.clone())],
            &|ts| op(LOG_SOFTMAX, ts, &[-1], &[]).mul(&keep_t).unwrap(),
        );
        eprintln!("LOG_SOFTMAX masked: {w:e}");
        let raw = vals(&op(
            LOG_SOFTMAX,
            &[t(&[b, l], x.clone()), m.clone()],
            &[-1],
            &[],
        ));
        let lpv = vals(&lp);
        for i in 0..b {
            let s: f64 = (0..l)
                .filter(|&j| mask[i * l + j] != 0)
                .map(|j| lpv[i * l + j].exp())
                .sum();
            assert!((s - 1.0).abs() < 1e-14);
            for j in 0..l {
                if mask[i * l + j] == 0 {
                    assert!(
                        raw[i * l + j] < -1e8,
                        "masked log-probability {}",
                        raw[i * l + j]
                    );
                    assert_eq!(raw[i * l + j].exp(), 0.0);
                } else {
                    assert!((raw[i * l + j].exp() - pv[i * l + j]).abs() < 1e-14);
                }
            }
        }
    }
    // A mask broadcast over a middle dim: x [2, 3, 4], mask [2, 1, 4].
    let mb = t(&[2, 1, 4], vec![1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0]);
    let p = check(
        SOFTMAX,
        &[d(&[2, 3, 4], uniform(411, 24, -2.0, 2.0)), In::Fixed(mb)],
        &[-1],
        &[],
    );
    let pv = vals(&p);
    for (k, &v) in pv.iter().enumerate() {
        let (bi, j) = (k / 12, k % 4);
        let masked = (bi == 0 && j == 1) || (bi == 1 && (j == 0 || j == 3));
        if masked {
            assert_eq!(v, 0.0);
        }
    }
}

// ---------------------------------------------------------------- shapes

#[test]
fn bi_interaction_is_the_sum_of_pairwise_products_with_its_gradient() {
    // Three fields [2, 3, 4] (rows 2 x 3, d = 4) and two of [5, 4].
    let fields: Vec<Vec<f64>> = (0..3).map(|k| uniform(900 + k, 24, -1.0, 1.0)).collect();
    let ins: Vec<In> = fields.iter().map(|v| d(&[2, 3, 4], v.clone())).collect();
    let out = check(BI_INTERACTION, &ins, &[], &[]);
    assert_eq!(out.dims(), &[2, 3, 4]);
    // By hand: x0 x1 + x0 x2 + x1 x2, element by element.
    let want: Vec<f64> = (0..24)
        .map(|j| {
            fields[0][j] * fields[1][j] + fields[0][j] * fields[2][j] + fields[1][j] * fields[2][j]
        })
        .collect();
    assert_close(&vals(&out), &want, 1e-12, "bi-interaction of three fields");
    check(
        BI_INTERACTION,
        &[
            d(&[5, 4], uniform(910, 20, -2.0, 2.0)),
            d(&[5, 4], uniform(911, 20, -2.0, 2.0)),
        ],
        &[],
        &[],
    );
    // One field has no pair: zeros.
    let one = op(
        BI_INTERACTION,
        &[t(&[2, 4], uniform(912, 8, -1.0, 1.0))],
        &[],
        &[],
    );
    assert_eq!(vals(&one), vec![0.0; 8]);
    // Fields of different shapes are an error that says so.
    let e = run(
        BI_INTERACTION,
        &[t(&[2, 4], vec![0.0; 8]), t(&[2, 3], vec![0.0; 6])],
        &[],
        &[],
    )
    .unwrap_err();
    assert!(e.contains("one shape"), "{e}");
}

#[test]
fn edge_sum_is_index_select_then_index_add_with_its_gradient() {
    // x [5, 3]; six edges into 4 target rows (row 2 has none).
    let x = uniform(930, 15, -1.0, 1.0);
    let (src, tgt) = (vec![0u32, 2, 0, 4, 1, 1], vec![1u32, 0, 1, 3, 3, 0]);
    let out = check(
        EDGE_SUM,
        &[
            d(&[5, 3], x.clone()),
            In::Fixed(u32t(&[6], src.clone())),
            In::Fixed(u32t(&[6], tgt.clone())),
        ],
        &[4],
        &[],
    );
    assert_eq!(out.dims(), &[4, 3]);
    let mut want = vec![0.0; 12];
    for (&s, &t) in src.iter().zip(&tgt) {
        for j in 0..3 {
            want[t as usize * 3 + j] += x[s as usize * 3 + j];
        }
    }
    assert_close(&vals(&out), &want, 1e-15, "edge sum by hand");
    assert_eq!(&vals(&out)[6..9], &[0.0; 3], "a row without edges is zero");
    // The same as the two ops it replaces, with float ids (as plugins send them).
    let xt = t(&[5, 3], x.clone());
    let f = |v: &[u32]| t(&[v.len()], v.iter().map(|&i| f64::from(i)).collect());
    let msg = op(INDEX_SELECT, &[xt.clone(), f(&src)], &[0], &[]);
    let two = op(
        INDEX_ADD,
        &[t(&[4, 3], vec![0.0; 12]), f(&tgt), msg],
        &[0],
        &[],
    );
    let one = op(EDGE_SUM, &[xt.clone(), f(&src), f(&tgt)], &[4], &[]);
    assert_eq!(vals(&one), vals(&two));
    // Many edges per target and more than one thread's share of rows.
    let (n, rows, e) = (300, 200, 5000);
    let src: Vec<u32> = (0..e).map(|k| (k * 7919 % n) as u32).collect();
    let tgt: Vec<u32> = (0..e).map(|k| (k * 104_729 % rows) as u32).collect();
    check(
        EDGE_SUM,
        &[
            d(&[n, 2], uniform(931, n * 2, -1.0, 1.0)),
            In::Fixed(u32t(&[e], src)),
            In::Fixed(u32t(&[e], tgt)),
        ],
        &[rows as i64],
        &[],
    );
    // Bad edges are errors that name what is wrong.
    let ids = |v: Vec<u32>| u32t(&[v.len()], v);
    for (s, tg, rows, needle) in [
        (vec![5], vec![0], 4, "source id 5"),
        (vec![0], vec![4], 4, "target id 4"),
        (vec![0, 1], vec![0], 4, "same edges"),
    ] {
        let e = run(EDGE_SUM, &[xt.clone(), ids(s), ids(tg)], &[rows], &[]).unwrap_err();
        assert!(e.contains(needle), "{e}");
    }
    let e = run(EDGE_SUM, &[xt, ids(vec![0]), ids(vec![0])], &[-1], &[]).unwrap_err();
    assert!(e.contains(">= 0"), "{e}");
}

#[test]
fn dice_with_batch_statistics_by_hand_and_its_gradient() {
    // One unit, s = [1, 3]: mean 2, variance 1, so z = [-1, 1] (up to eps),
    // alpha 0.5: [p0 + (1 - p0) 0.5, 3 p1 + (1 - p1) 1.5] = [0.634471, 2.596588].
    let y = op(
        DICE,
        &[t(&[2, 1], vec![1.0, 3.0]), t(&[1], vec![0.5])],
        &[],
        &[1e-8],
    );
    assert_close(&vals(&y), &[0.634471, 2.596588], 1e-6, "dice by hand");
    // A padding row (weight 0) is left out of the statistics but still activated.
    let yw = op(
        DICE,
        &[
            t(&[3, 1], vec![1.0, 3.0, 10.0]),
            t(&[1], vec![0.5]),
            t(&[3, 1], vec![1.0, 1.0, 0.0]),
        ],
        &[],
        &[1e-8],
    );
    let v = vals(&yw);
    assert_close(&v[..2], &[0.634471, 2.596588], 1e-6, "dice weighted");
    // z = (10 - 2) / 1 = 8: p = sigmoid(8).
    let p = 1.0 / (1.0 + (-8.0f64).exp());
    assert_close(
        &v[2..],
        &[10.0 * (0.5 + 0.5 * p)],
        1e-6,
        "dice on a padding row",
    );
    // Gradients of s and alpha through the batch statistics, with and without weights.
    check(
        DICE,
        &[
            d(&[6, 3], uniform(1200, 18, -2.0, 2.0)),
            d(&[3], uniform(1201, 3, 0.1, 0.9)),
        ],
        &[],
        &[1e-8],
    );
    check(
        DICE,
        &[
            d(&[5, 4], uniform(1202, 20, -2.0, 2.0)),
            d(&[4], uniform(1203, 4, 0.1, 0.9)),
            In::Fixed(t(&[5, 1], vec![1.0, 0.0, 1.0, 1.0, 0.0])),
        ],
        &[],
        &[1e-3],
    );
    // Shapes that do not fit are errors that say which.
    let e = run(
        DICE,
        &[t(&[2, 3], vec![0.0; 6]), t(&[2], vec![0.0; 2])],
        &[],
        &[1e-8],
    )
    .unwrap_err();
    assert!(e.contains("alpha must be [3]"), "{e}");
}

#[test]
fn grad_shape_ops() {
    let x24 = || uniform(500, 24, -1.0, 1.0);
    // CONCAT: three inputs along dim 1 and along -2.
    let out = check(
        CONCAT,
        &[
            d(&[2, 1, 4], uniform(501, 8, -1.0, 1.0)),
            d(&[2, 3, 4], x24()),
            d(&[2, 2, 4], uniform(502, 16, -1.0, 1.0)),
        ],
        &[1],
        &[],
    );
    assert_eq!(out.dims(), &[2, 6, 4]);
    check(
        CONCAT,
        &[
            d(&[2, 3], uniform(503, 6, -1.0, 1.0)),
            d(&[4, 3], uniform(504, 12, -1.0, 1.0)),
        ],
        &[-2],
        &[],
    );
    // NARROW.
    let out = check(NARROW, &[d(&[2, 3, 4], x24())], &[2, 1, 2], &[]);
    assert_eq!(out.dims(), &[2, 3, 2]);
    assert_eq!(vals(&out)[..2], x24()[1..3]);
    check(NARROW, &[d(&[2, 3, 4], x24())], &[-2, 0, 2], &[]);
    // RESHAPE with and without -1.
    let out = check(RESHAPE, &[d(&[2, 3, 4], x24())], &[-1, 2], &[]);
    assert_eq!(out.dims(), &[12, 2]);
    assert_eq!(vals(&out), x24());
    let out = check(RESHAPE, &[d(&[2, 3, 4], x24())], &[4, -1, 3], &[]);
    assert_eq!(out.dims(), &[4, 2, 3]);
    check(RESHAPE, &[d(&[2, 3, 4], x24())], &[24], &[]);
    // TRANSPOSE, PERMUTE.
    let out = check(TRANSPOSE, &[d(&[2, 3, 4], x24())], &[0, -1], &[]);
    assert_eq!(out.dims(), &[4, 3, 2]);
    let out = check(PERMUTE, &[d(&[2, 3, 4], x24())], &[1, 2, 0], &[]);
    assert_eq!(out.dims(), &[3, 4, 2]);
    let ov = vals(&out.contiguous().unwrap());
    let x = x24();
    // out[j, k, i] = x[i, j, k]
    for i in 0..2 {
        for j in 0..3 {
            for k in 0..4 {
                assert_eq!(ov[j * 8 + k * 2 + i], x[i * 12 + j * 4 + k]);
            }
        }
    }
    check(PERMUTE, &[d(&[2, 3, 4], x24())], &[-1, 0, 1], &[]);
    // UNSQUEEZE at the front, the end (-1), and the middle.
    for (dim, shape) in [
        (0i64, vec![1usize, 2, 3, 4]),
        (-1, vec![2, 3, 4, 1]),
        (1, vec![2, 1, 3, 4]),
        (3, vec![2, 3, 4, 1]),
    ] {
        let out = check(UNSQUEEZE, &[d(&[2, 3, 4], x24())], &[dim], &[]);
        assert_eq!(out.dims(), &shape[..], "unsqueeze {dim}");
    }
    // SQUEEZE.
    let out = check(
        SQUEEZE,
        &[d(&[2, 1, 4], uniform(505, 8, -1.0, 1.0))],
        &[1],
        &[],
    );
    assert_eq!(out.dims(), &[2, 4]);
    let out = check(
        SQUEEZE,
        &[d(&[2, 4, 1], uniform(506, 8, -1.0, 1.0))],
        &[-1],
        &[],
    );
    assert_eq!(out.dims(), &[2, 4]);
    // BROADCAST_AS (gradient sums over the broadcast dims).
    let out = check(
        BROADCAST_AS,
        &[d(&[3, 1], uniform(507, 3, -1.0, 1.0))],
        &[2, 3, 4],
        &[],
    );
    assert_eq!(out.dims(), &[2, 3, 4]);
    check(
        BROADCAST_AS,
        &[d(&[4], uniform(508, 4, -1.0, 1.0))],
        &[3, 4],
        &[],
    );
}

// ---------------------------------------------------------------- indexing

#[test]
fn grad_index_select() {
    // Repeated ids accumulate.
    let ids = u32t(&[5], vec![4, 1, 4, 0, 4]);
    let x = uniform(600, 15, -1.0, 1.0);
    let out = check(
        INDEX_SELECT,
        &[d(&[5, 3], x.clone()), In::Fixed(ids.clone())],
        &[0],
        &[],
    );
    assert_eq!(out.dims(), &[5, 3]);
    assert_eq!(vals(&out)[..3], x[12..15]);
    check(
        INDEX_SELECT,
        &[
            d(&[5, 3], x.clone()),
            In::Fixed(u32t(&[4], vec![2, 2, 0, 1])),
        ],
        &[-1],
        &[],
    );
    // Ids given as I64 also work.
    let ids64 = Tensor::from_vec(vec![4i64, 1, 4, 0, 4], 5, &Device::Cpu).unwrap();
    let o64 = op(INDEX_SELECT, &[t(&[5, 3], x.clone()), ids64], &[0], &[]);
    assert_eq!(vals(&o64), vals(&out));
    // 2-D ids are rejected.
    assert!(run(
        INDEX_SELECT,
        &[t(&[5, 3], x), u32t(&[1, 2], vec![0, 1])],
        &[0],
        &[]
    )
    .is_err());
}

#[test]
fn grad_gather() {
    let x = uniform(610, 12, -1.0, 1.0);
    let ids = u32t(&[3, 2], vec![3, 3, 0, 2, 1, 1]);
    let out = check(
        GATHER,
        &[d(&[3, 4], x.clone()), In::Fixed(ids.clone())],
        &[1],
        &[],
    );
    let o = vals(&out);
    assert_eq!(o, vec![x[3], x[3], x[4], x[6], x[9], x[9]]);
    let ids0 = u32t(&[2, 4], vec![0, 2, 2, 1, 2, 2, 0, 0]);
    check(GATHER, &[d(&[3, 4], x.clone()), In::Fixed(ids0)], &[0], &[]);
    check(GATHER, &[d(&[3, 4], x), In::Fixed(ids)], &[-1], &[]);
}

#[test]
fn grad_index_add() {
    // Scatter-sum with repeated ids, gradient wrt both init and src.
    let init = uniform(620, 15, -1.0, 1.0);
    let src = uniform(621, 12, -1.0, 1.0);
    let ids = vec![0u32, 2, 0, 4];
    let out = check(
        INDEX_ADD,
        &[
            d(&[5, 3], init.clone()),
            In::Fixed(u32t(&[4], ids.clone())),
            d(&[4, 3], src.clone()),
        ],
        &[0],
        &[],
    );
    let mut want = init.clone();
    for (k, &r) in ids.iter().enumerate() {
        for j in 0..3 {
            want[r as usize * 3 + j] += src[k * 3 + j];
        }
    }
    assert_close(&vals(&out), &want, 1e-15, "index_add values");
    // Along dim 1.
    check(
        INDEX_ADD,
        &[
            d(&[3, 4], uniform(622, 12, -1.0, 1.0)),
            In::Fixed(u32t(&[3], vec![3, 3, 1])),
            d(&[3, 3], uniform(623, 9, -1.0, 1.0)),
        ],
        &[-1],
        &[],
    );
}

#[test]
fn grad_where_masked_fill() {
    let cond = vec![1u32, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1];
    let a = uniform(700, 12, -1.0, 1.0);
    let b = uniform(701, 4, -1.0, 1.0);
    for c in [
        u32t(&[3, 4], cond.clone()),
        t(&[3, 4], cond.iter().map(|&v| v as f64 * 2.5).collect()),
    ] {
        let out = check(
            WHERE,
            &[In::Fixed(c), d(&[3, 4], a.clone()), d(&[4], b.clone())],
            &[],
            &[],
        );
        let o = vals(&out);
        for k in 0..12 {
            let want = if cond[k] != 0 { a[k] } else { b[k % 4] };
            assert_eq!(o[k], want);
        }
    }
    // cond broadcast: [3, 1].
    check(
        WHERE,
        &[
            In::Fixed(u32t(&[3, 1], vec![1, 0, 1])),
            d(&[3, 4], a.clone()),
            d(&[3, 4], uniform(702, 12, -1.0, 1.0)),
        ],
        &[],
        &[],
    );
    // MASKED_FILL: value where mask != 0, gradient 0 there.
    let mask = u32t(&[3, 4], cond.clone());
    let out = check(
        MASKED_FILL,
        &[d(&[3, 4], a.clone()), In::Fixed(mask)],
        &[],
        &[7.5],
    );
    let o = vals(&out);
    for k in 0..12 {
        assert_eq!(o[k], if cond[k] != 0 { 7.5 } else { a[k] });
    }
    // Mask broadcast over rows.
    check(
        MASKED_FILL,
        &[d(&[3, 4], a), In::Fixed(t(&[4], vec![0.0, 1.0, 0.0, 1.0]))],
        &[],
        &[-3.0],
    );
}

// ---------------------------------------------------------------- layer norm

#[test]
fn grad_layer_norm() {
    let x = uniform(800, 18, -2.0, 2.0);
    let out = check(LAYER_NORM, &[d(&[3, 6], x.clone())], &[], &[1e-5]);
    let o = vals(&out);
    for i in 0..3 {
        let row = &x[i * 6..(i + 1) * 6];
        let mu = row.iter().sum::<f64>() / 6.0;
        let var = row.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / 6.0;
        for j in 0..6 {
            let want = (row[j] - mu) / (var + 1e-5).sqrt();
            assert!((o[i * 6 + j] - want).abs() < 1e-12);
        }
    }
    let g = uniform(801, 6, 0.5, 1.5);
    let b = uniform(802, 6, -0.5, 0.5);
    let out2 = check(
        LAYER_NORM,
        &[
            d(&[3, 6], x.clone()),
            d(&[6], g.clone()),
            d(&[6], b.clone()),
        ],
        &[],
        &[1e-5],
    );
    let o2 = vals(&out2);
    for k in 0..18 {
        assert!((o2[k] - (o[k] * g[k % 6] + b[k % 6])).abs() < 1e-12);
    }
    // Default eps, 3-D input.
    check(
        LAYER_NORM,
        &[d(&[2, 2, 5], uniform(803, 20, -2.0, 2.0))],
        &[],
        &[],
    );
    // A gain without a bias is an error.
    assert!(run(LAYER_NORM, &[t(&[3, 6], x), t(&[6], g)], &[], &[1e-5]).is_err());
}

// ---------------------------------------------------------------- losses

#[test]
fn grad_bce_with_logits() {
    let logits = vec![-40.0, -3.0, -0.7, -0.1, 0.2, 1.5, 4.0, 40.0];
    let labels = vec![1.0, 0.0, 1.0, 1.0, 0.0, 0.3, 1.0, 0.0];
    let weights = vec![0.5, 1.0, 2.0, 1.5, 0.25, 1.0, 3.0, 0.75];
    let n = logits.len() as f64;
    let per: Vec<f64> = logits
        .iter()
        .zip(&labels)
        .map(|(&x, &y)| y * softplus(-x) + (1.0 - y) * softplus(x))
        .collect();
    let want = per.iter().sum::<f64>() / n;
    let want_w = per.iter().zip(&weights).map(|(l, w)| l * w).sum::<f64>() / n;

    let out = check(
        BCE_WITH_LOGITS,
        &[d(&[8], logits.clone()), In::Fixed(t(&[8], labels.clone()))],
        &[],
        &[],
    );
    let v = out.to_scalar::<f64>().unwrap();
    assert!(v.is_finite());
    assert!((v - want).abs() < 1e-13 * want, "bce {v} vs {want}");
    // Gradient of every float input, labels and weights included.
    let out = check(
        BCE_WITH_LOGITS,
        &[
            d(&[8], logits.clone()),
            d(&[8], labels.clone()),
            d(&[8], weights.clone()),
        ],
        &[],
        &[],
    );
    let v = out.to_scalar::<f64>().unwrap();
    assert!(v.is_finite());
    assert!(
        (v - want_w).abs() < 1e-13 * want_w,
        "weighted bce {v} vs {want_w}"
    );
    // Gradient wrt logits by hand: w * (sigmoid(x) - y) / n (finite at +-40).
    let x = Var::from_tensor(&t(&[8], logits.clone())).unwrap();
    let l = op(
        BCE_WITH_LOGITS,
        &[
            x.as_tensor().clone(),
            t(&[8], labels.clone()),
            t(&[8], weights.clone()),
        ],
        &[],
        &[],
    );
    let g = vals(l.backward().unwrap().get(x.as_tensor()).unwrap());
    for k in 0..8 {
        let s = 1.0 / (1.0 + (-logits[k]).exp());
        let want = weights[k] * (s - labels[k]) / n;
        assert!(
            (g[k] - want).abs() < 1e-15,
            "bce grad {k}: {} vs {want}",
            g[k]
        );
    }
    // 2-D logits, U32 labels.
    check(
        BCE_WITH_LOGITS,
        &[
            d(&[2, 3], uniform(900, 6, -3.0, 3.0)),
            In::Fixed(u32t(&[2, 3], vec![1, 0, 0, 1, 1, 0])),
        ],
        &[],
        &[],
    );
    // Shape mismatches are errors.
    assert!(run(
        BCE_WITH_LOGITS,
        &[t(&[8], logits.clone()), t(&[4], vec![0.0; 4])],
        &[],
        &[]
    )
    .is_err());
    assert!(run(
        BCE_WITH_LOGITS,
        &[t(&[8], logits), t(&[8], labels), t(&[2], vec![1.0; 2])],
        &[],
        &[]
    )
    .is_err());
}

#[test]
fn grad_mse() {
    let p = uniform(910, 6, -2.0, 2.0);
    let y = uniform(911, 6, -2.0, 2.0);
    let w = uniform(912, 6, 0.1, 2.0);
    let out = check(
        MSE,
        &[d(&[2, 3], p.clone()), d(&[2, 3], y.clone())],
        &[],
        &[],
    );
    let want: f64 = p.iter().zip(&y).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / 6.0;
    assert!((out.to_scalar::<f64>().unwrap() - want).abs() < 1e-14);
    let out = check(
        MSE,
        &[
            d(&[2, 3], p.clone()),
            d(&[2, 3], y.clone()),
            d(&[2, 3], w.clone()),
        ],
        &[],
        &[],
    );
    let want: f64 = (0..6).map(|k| w[k] * (p[k] - y[k]).powi(2)).sum::<f64>() / 6.0;
    assert!((out.to_scalar::<f64>().unwrap() - want).abs() < 1e-14);
    assert!(run(MSE, &[t(&[2, 3], p), t(&[6], y)], &[], &[]).is_err());
}

#[test]
fn grad_bpr() {
    let pos = uniform(920, 7, -3.0, 3.0);
    let neg = uniform(921, 7, -3.0, 3.0);
    let out = check(BPR, &[d(&[7], pos.clone()), d(&[7], neg.clone())], &[], &[]);
    let want: f64 = pos
        .iter()
        .zip(&neg)
        .map(|(p, n)| softplus(n - p))
        .sum::<f64>()
        / 7.0;
    assert!((out.to_scalar::<f64>().unwrap() - want).abs() < 1e-14);
    // Large margins stay finite.
    let v = op(
        BPR,
        &[t(&[2], vec![-500.0, 500.0]), t(&[2], vec![500.0, -500.0])],
        &[],
        &[],
    );
    assert!((v.to_scalar::<f64>().unwrap() - 500.0).abs() < 1e-12);
}

#[test]
fn grad_cross_entropy() {
    let logits = uniform(930, 20, -3.0, 3.0);
    let cls = vec![4u32, 0, 2, 2];
    let out = check(
        CROSS_ENTROPY,
        &[
            d(&[4, 5], logits.clone()),
            In::Fixed(u32t(&[4], cls.clone())),
        ],
        &[],
        &[],
    );
    let mut want = 0.0;
    for i in 0..4 {
        let row = &logits[i * 5..(i + 1) * 5];
        let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
        want += lse - row[cls[i] as usize];
    }
    want /= 4.0;
    assert!((out.to_scalar::<f64>().unwrap() - want).abs() < 1e-14);
    // Large logits stay finite.
    let v = op(
        CROSS_ENTROPY,
        &[t(&[1, 3], vec![1000.0, 0.0, -1000.0]), u32t(&[1], vec![0])],
        &[],
        &[],
    );
    assert!(v.to_scalar::<f64>().unwrap().abs() < 1e-12);
    assert!(run(
        CROSS_ENTROPY,
        &[t(&[5], logits[..5].to_vec()), u32t(&[1], vec![0])],
        &[],
        &[]
    )
    .is_err());
}

// ---------------------------------------------------------------- special

#[test]
fn detach_stops_gradient() {
    let x = Var::from_tensor(&t(&[2, 3], uniform(1000, 6, -1.0, 1.0))).unwrap();
    let y = op(DETACH, &[x.as_tensor().clone()], &[], &[]);
    assert_eq!(vals(&y), vals(x.as_tensor()));
    // Only the detached path: no gradient at all reaches x.
    let l = op(SUM_ALL, &[op(SQUARE, &[y.clone()], &[], &[])], &[], &[]);
    let grads = l.backward().unwrap();
    if let Some(g) = grads.get(x.as_tensor()) {
        assert!(vals(g).iter().all(|&v| v == 0.0));
    }
    // Mixed: d/dx sum(2x + detach(x)^2) = 2 exactly.
    let two_x = op(AFFINE, &[x.as_tensor().clone()], &[], &[2.0, 0.0]);
    let sq = op(SQUARE, &[y], &[], &[]);
    let l = op(SUM_ALL, &[op(ADD, &[two_x, sq], &[], &[])], &[], &[]);
    let g = vals(l.backward().unwrap().get(x.as_tensor()).unwrap());
    assert!(g.iter().all(|&v| v == 2.0), "{g:?}");
}

#[test]
fn dropout() {
    let ones = t(&[100, 100], vec![1.0; 10_000]);
    // Inference: identity.
    let y = run_env(DROPOUT, &[ones.clone()], &[], &[0.5], false, 1).unwrap();
    assert_eq!(vals(&y), vec![1.0; 10_000]);
    // Training: inverted dropout keeps the mean, drops about half.
    let y = run_env(DROPOUT, &[ones.clone()], &[], &[0.5], true, 1).unwrap();
    let v = vals(&y);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let zeros = v.iter().filter(|&&x| x == 0.0).count();
    assert!((mean - 1.0).abs() < 0.05, "mean {mean}");
    assert!((4_500..=5_500).contains(&zeros), "{zeros} zeros");
    assert!(v.iter().all(|&x| x == 0.0 || x == 2.0));
    // Rate 0 in training is the identity; rate 1 is an error.
    let y = run_env(DROPOUT, &[ones.clone()], &[], &[0.0], true, 1).unwrap();
    assert_eq!(vals(&y), vec![1.0; 10_000]);
    assert!(run_env(DROPOUT, &[ones], &[], &[1.0], true, 1).is_err());
    // Same seed, same mask.
    let x = t(&[4, 5], uniform(1100, 20, 0.5, 1.5));
    let a = run_env(DROPOUT, &[x.clone()], &[], &[0.3], true, 7).unwrap();
    let b = run_env(DROPOUT, &[x.clone()], &[], &[0.3], true, 7).unwrap();
    assert_eq!(vals(&a), vals(&b));
    // Gradient: identity outside training (FD check) ...
    check(
        DROPOUT,
        &[d(&[4, 5], uniform(1101, 20, -1.0, 1.0))],
        &[],
        &[0.5],
    );
    // ... and the mask itself in training (fixed rng seed, so FD sees the same mask).
    let (_, w) = check_fn(
        "DROPOUT training",
        &[d(&[4, 5], uniform(1102, 20, 0.5, 1.5))],
        &|ts| run_env(DROPOUT, ts, &[], &[0.5], true, 9).unwrap(),
    );
    eprintln!("DROPOUT training: {w:e}");
}

#[test]
fn to_float() {
    let ids = u32t(
        &[2, 3],
        vec![0, 1, 7, 4_000_000_000, 123_456_789, 16_777_217],
    );
    let f = op(TO_FLOAT, &[ids], &[], &[]);
    assert_eq!(f.dtype(), DType::F64);
    assert_eq!(f.dims(), &[2, 3]);
    assert_eq!(
        vals(&f),
        vec![0.0, 1.0, 7.0, 4_000_000_000.0, 123_456_789.0, 16_777_217.0]
    );
    let u8s = Tensor::from_vec(vec![0u8, 1, 255], 3, &Device::Cpu).unwrap();
    assert_eq!(vals(&op(TO_FLOAT, &[u8s], &[], &[])), vec![0.0, 1.0, 255.0]);
    // Already float: unchanged, still differentiable.
    check(TO_FLOAT, &[d(&[3], vec![0.5, -1.5, 2.0])], &[], &[]);
}

/// Binary ops accept integer operands (masks, labels) and cast them.
#[test]
fn binary_ops_cast_integer_inputs() {
    let x = t(&[2, 2], vec![0.5, 1.5, -2.0, 3.0]);
    let m = u32t(&[2, 2], vec![1, 0, 2, 1]);
    assert_eq!(
        vals(&op(MUL, &[x.clone(), m.clone()], &[], &[])),
        vec![0.5, 0.0, -4.0, 3.0]
    );
    assert_eq!(vals(&op(ADD, &[m, x], &[], &[])), vec![1.5, 1.5, 0.0, 4.0]);
}

// ---------------------------------------------------------------- errors

#[test]
fn errors_are_returned_not_panicked() {
    let x = t(&[2, 3], uniform(1200, 6, -1.0, 1.0));
    let e = run(SQUEEZE, &[x.clone()], &[1], &[]).unwrap_err();
    assert!(e.contains("squeeze"), "{e}");
    let e = run(RESHAPE, &[x.clone()], &[4, 2], &[]).unwrap_err();
    assert!(e.contains("reshape"), "{e}");
    assert!(run(RESHAPE, &[x.clone()], &[-1, 4], &[]).is_err());
    assert!(run(RESHAPE, &[x.clone()], &[-1, -1], &[]).is_err());
    assert!(run(RESHAPE, &[x.clone()], &[-2, -3], &[]).is_err());
    let e = run(9999, &[x.clone()], &[], &[]).unwrap_err();
    assert!(e.contains("op code 9999"), "{e}");
    // Dims out of range, positive and negative.
    for code in [SUM, MEAN, MAX, MIN, SOFTMAX, LOG_SOFTMAX] {
        for dim in [2i64, 5, -3] {
            let e = run(code, &[x.clone()], &[dim, 0], &[]).unwrap_err();
            assert!(
                e.contains("out of range"),
                "{} dim {dim}: {e}",
                op_name(code)
            );
        }
    }
    assert!(run(TRANSPOSE, &[x.clone()], &[0, 2], &[]).is_err());
    assert!(run(PERMUTE, &[x.clone()], &[0, 3], &[]).is_err());
    assert!(run(PERMUTE, &[x.clone()], &[0, 0], &[]).is_err());
    assert!(run(UNSQUEEZE, &[x.clone()], &[3], &[]).is_err());
    assert!(run(UNSQUEEZE, &[x.clone()], &[-4], &[]).is_err());
    assert!(run(NARROW, &[x.clone()], &[1, 2, 2], &[]).is_err());
    assert!(run(NARROW, &[x.clone()], &[1, -1, 1], &[]).is_err());
    assert!(run(CONCAT, &[x.clone(), t(&[2, 2], vec![0.0; 4])], &[0], &[]).is_err());
    assert!(run(INDEX_SELECT, &[x.clone(), u32t(&[1], vec![0])], &[2], &[]).is_err());
    assert!(run(INDEX_SELECT, &[x.clone(), u32t(&[1], vec![9])], &[0], &[]).is_err());
    assert!(run(BROADCAST_AS, &[x.clone()], &[3, 3], &[]).is_err());
    assert!(run(ADD, &[x.clone(), t(&[4], vec![0.0; 4])], &[], &[]).is_err());
    // Missing inputs and attributes.
    assert!(run(ADD, &[x.clone()], &[], &[]).is_err());
    assert!(run(ADD, &[], &[], &[]).is_err());
    let e = run(SUM, &[x.clone()], &[], &[]).unwrap_err();
    assert!(e.contains("missing integer attribute"), "{e}");
    let e = run(POW, &[x.clone()], &[], &[]).unwrap_err();
    assert!(e.contains("missing float attribute"), "{e}");
    assert!(run(CLAMP, &[x.clone()], &[], &[0.0]).is_err());
    assert!(run(AFFINE, &[x.clone()], &[], &[]).is_err());
    assert!(run(WHERE, &[x.clone(), x.clone()], &[], &[]).is_err());
}

#[test]
fn edge_cases_return_errors() {
    let x = t(&[2, 3], uniform(1300, 6, -1.0, 1.0));
    // A scalar has no dim 0 (SQUEEZE of a scalar used to panic on `dims()[0]`).
    let s = Tensor::new(1.5f64, &Device::Cpu).unwrap();
    for code in [
        SQUEEZE,
        SUM,
        MEAN,
        MAX,
        MIN,
        SOFTMAX,
        LOG_SOFTMAX,
        NARROW,
        TRANSPOSE,
        CONCAT,
    ] {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(code, &[s.clone()], &[0, 0, 1], &[])
        }));
        let r = r.unwrap_or_else(|_| panic!("{} of a scalar panicked", op_name(code)));
        assert!(r.is_err(), "{} of a scalar: {r:?}", op_name(code));
    }
    // Unsqueezing a scalar is fine.
    assert_eq!(op(UNSQUEEZE, &[s.clone()], &[-1], &[]).dims(), &[1]);
    // Out-of-range ids.
    let e = run(GATHER, &[x.clone(), u32t(&[2, 1], vec![0, 7])], &[1], &[]).unwrap_err();
    assert!(e.contains('7'), "{e}");
    let e = run(
        INDEX_ADD,
        &[x.clone(), u32t(&[1], vec![5]), t(&[1, 3], vec![1.0; 3])],
        &[0],
        &[],
    )
    .unwrap_err();
    assert!(e.contains('5'), "{e}");
    assert!(run(
        CROSS_ENTROPY,
        &[x.clone(), u32t(&[2], vec![0, 3])],
        &[],
        &[]
    )
    .is_err());
    // Shape and dtype mismatches.
    assert!(run(MATMUL, &[x.clone(), x.clone()], &[], &[]).is_err());
    assert!(run(BPR, &[t(&[2, 1], vec![0.0; 2]), x.clone()], &[], &[]).is_err());
    assert!(run(CONCAT, &[x.clone(), u32t(&[2, 3], vec![1; 6])], &[0], &[]).is_err());
    assert!(run(
        WHERE,
        &[u32t(&[2, 3], vec![1; 6]), x.clone(), t(&[2], vec![0.0; 2])],
        &[],
        &[]
    )
    .is_err());
    assert!(run(
        MASKED_FILL,
        &[x.clone(), u32t(&[2], vec![1; 2])],
        &[],
        &[0.0]
    )
    .is_err());
    assert!(run(BROADCAST_AS, &[x.clone()], &[-1, 3], &[]).is_err());
    assert!(run(RESHAPE, &[x.clone()], &[0, -1], &[]).is_err());
}

#[test]
fn fully_masked_rows() {
    // Row 0 fully masked: softmax gives zeros (no NaN), log-softmax stays very
    // negative (it used to read +69 = -ln(1e-30)), and no gradient reaches it.
    let m = u32t(&[2, 3], vec![0, 0, 0, 1, 0, 1]);
    let xv = uniform(1310, 6, -1.0, 1.0);
    let p = vals(&op(
        SOFTMAX,
        &[t(&[2, 3], xv.clone()), m.clone()],
        &[-1],
        &[],
    ));
    assert_eq!(p[..3], [0.0, 0.0, 0.0]);
    assert!((p[3] + p[5] - 1.0).abs() < 1e-15 && p[4] == 0.0);
    let lp = vals(&op(
        LOG_SOFTMAX,
        &[t(&[2, 3], xv.clone()), m.clone()],
        &[-1],
        &[],
    ));
    for k in [0, 1, 2, 4] {
        assert!(lp[k] <= -1e8, "masked log-probability {k}: {}", lp[k]);
    }
    assert!((lp[3].exp() + lp[5].exp() - 1.0).abs() < 1e-15);
    for code in [SOFTMAX, LOG_SOFTMAX] {
        let x = Var::from_tensor(&t(&[2, 3], xv.clone())).unwrap();
        let y = op(code, &[x.as_tensor().clone(), m.clone()], &[-1], &[]);
        let r = t(&[2, 3], vec![1.0, -2.0, 0.5, 0.0, 0.0, 0.7]);
        let l = y.mul(&r).unwrap().sum_all().unwrap();
        let g = vals(l.backward().unwrap().get(x.as_tensor()).unwrap());
        assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
        assert_eq!(g[..3], [0.0, 0.0, 0.0], "{}", op_name(code));
        assert_eq!(g[4], 0.0);
    }
}
