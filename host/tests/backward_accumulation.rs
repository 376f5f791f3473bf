//! candle's backward pass as vendored (vendor/candle-core): a node's first
//! gradient is stored as it is, later ones are added to it. These cases pin
//! what that must keep: a tensor consumed twice by one op, one gradient
//! tensor handed to two inputs and then summed on, a first gradient that is
//! a strided view (stored contiguous), and a narrowed input.

use candle_core::{Device, Tensor, Var};

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn x() -> Var {
    let v: Vec<f32> = (0..12).map(|i| 0.25 * i as f32 - 1.0).collect();
    Var::from_vec(v, (3, 4), &Device::Cpu).unwrap()
}

/// Assert that `f`'s gradient with respect to `x` is `c * x`.
fn assert_grad_is_multiple(f: &Tensor, x: &Var, c: f32) {
    let g = f.backward().unwrap();
    let want: Vec<f32> = values(x.as_tensor()).iter().map(|v| c * v).collect();
    assert_close(&values(g.get(x).unwrap()), &want);
}

fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
            "element {k}: {g} vs {w}"
        );
    }
}

#[test]
fn a_tensor_added_to_itself_gets_both_gradients() {
    // f = sum((x + x) * x), df/dx = 4x.
    let x = x();
    let f = ((x.as_tensor() + x.as_tensor()).unwrap() * x.as_tensor())
        .unwrap()
        .sum_all()
        .unwrap();
    assert_grad_is_multiple(&f, &x, 4.0);
}

#[test]
fn one_gradient_handed_to_both_inputs_of_a_sum_is_not_changed_by_either() {
    // h = 2x + 3x; f = sum(h * h) = sum(25 x^2), df/dx = 50x. The add hands
    // the same gradient tensor to 2x and to 3x; each is then scaled and
    // summed into x's gradient.
    let x = x();
    let a = (x.as_tensor() * 2.0).unwrap();
    let b = (x.as_tensor() * 3.0).unwrap();
    let h = (&a + &b).unwrap();
    let f = (&h * &h).unwrap().sum_all().unwrap();
    assert_grad_is_multiple(&f, &x, 50.0);
}

#[test]
fn a_strided_first_gradient_is_stored_contiguous_with_its_values() {
    // f = sum(w * x^T): x's only gradient is w^T, a transposed view.
    let x = x();
    let w: Vec<f32> = (0..12).map(|i| (i * i) as f32 * 0.1).collect();
    let w = Tensor::from_vec(w, (4, 3), &Device::Cpu).unwrap();
    let f = (&w * x.as_tensor().t().unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let g = f.backward().unwrap();
    let gx = g.get(&x).unwrap();
    assert!(gx.is_contiguous(), "the stored gradient must be contiguous");
    assert_eq!(gx.dims(), &[3, 4]);
    assert_close(&values(gx), &values(&w.t().unwrap().contiguous().unwrap()));
}

#[test]
fn a_narrowed_input_gets_its_rows_gradient_and_zeros_elsewhere() {
    // f = sum(x[1..3]^2) + sum(x): df/dx = 1 + 2x on rows 1 and 2, 1 on row 0.
    let x = x();
    let y = x.as_tensor().narrow(0, 1, 2).unwrap();
    let f = ((&y * &y).unwrap().sum_all().unwrap() + x.as_tensor().sum_all().unwrap()).unwrap();
    let g = f.backward().unwrap();
    let want: Vec<f32> = values(x.as_tensor())
        .iter()
        .enumerate()
        .map(|(k, v)| if k >= 4 { 1.0 + 2.0 * v } else { 1.0 })
        .collect();
    assert_close(&values(g.get(&x).unwrap()), &want);
}
