//! CPU kernels for what candle runs slowly, as custom ops with a backward:
//! summing over a dimension that is not the last one, and broadcasting.
//!
//! candle's CPU sum over a non-last dimension maps every element's index
//! through a division per reduced dimension; and every broadcast in a
//! forward pass (a bias over a batch, a candidate over a history) is summed
//! back that way in the backward pass. DIN spent a quarter of its step there
//! (measured 2026-12-06). Here a contiguous tensor is viewed as
//! `[outer, n, inner]` and summed row by row (the inner loop vectorises), in
//! parallel over blocks; a broadcast is materialised (`expand`) and its
//! backward is that sum. And the sigmoid (which candle lacks; the
//! executor's portable form is three ops through tanh) runs as one op whose
//! backward reads its output. On other devices, and where no gradient flows
//! through the broadcast operand, the executor keeps candle's own ops.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use num_traits::Float;
use rayon::prelude::*;

/// Below this many elements a sum runs on one thread.
const PAR_MIN: usize = 1 << 16;
/// With fewer outer blocks than this, a large sum is split into partial
/// sums of `ROWS_PER_PART` rows.
const FEW_BLOCKS: usize = 8;
const ROWS_PER_PART: usize = 1024;

/// Sum of a contiguous `[outer, n, inner]` block over `n`, keeping the dimension.
struct SumDim {
    dim: usize,
}

/// `x` summed over `dim`, keeping it (size 1): the CPU kernel for a
/// contiguous `x` whose `dim` is not its last, candle's sum otherwise.
pub fn sum_keepdim(x: &Tensor, dim: usize) -> Result<Tensor> {
    if !fast(x) || dim + 1 >= x.rank() {
        return x.sum_keepdim(dim);
    }
    x.contiguous()?.apply_op1(SumDim { dim })
}

/// `x` broadcast to `shape`: materialised, with the sum back to `x`'s
/// shape as the backward (CPU, when a gradient flows through `x`); candle's
/// zero-copy broadcast otherwise.
pub fn expand(x: &Tensor, shape: &Shape) -> Result<Tensor> {
    if x.shape() == shape {
        return Ok(x.clone());
    }
    if !fast(x) || !x.track_op() {
        return x.broadcast_as(shape);
    }
    // Validates the shapes (and gives candle's error when they do not fit).
    x.broadcast_as(shape)?;
    x.contiguous()?.apply_op1(Expand {
        shape: shape.clone(),
    })
}

/// `f(a, b)` after broadcasting both to their common shape with [`expand`].
pub fn broadcast_binary(
    a: &Tensor,
    b: &Tensor,
    op: &'static str,
    f: fn(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    if a.shape() == b.shape() {
        return f(a, b);
    }
    let shape = a.shape().broadcast_shape_binary_op(b.shape(), op)?;
    f(&expand(a, &shape)?, &expand(b, &shape)?)
}

/// The logistic sigmoid as one CPU op (`1 / (1 + e^-x)`, computed from
/// `e^-|x|` so that it never overflows), with `dy/dx = y (1 - y)` from its
/// output; `None` where the kernel does not apply (other devices, dtypes).
pub fn sigmoid(x: &Tensor) -> Option<Result<Tensor>> {
    fast(x).then(|| x.apply_op1(Sigmoid))
}

struct Sigmoid;

fn logistic<T: Float>(x: T) -> T {
    let e = (-x.abs()).exp();
    if x >= T::zero() {
        T::one() / (T::one() + e)
    } else {
        e / (T::one() + e)
    }
}

fn map_par<T: Kernel>(src: &[T], f: fn(T) -> T) -> Vec<T> {
    if src.len() < PAR_MIN {
        return src.iter().map(|&x| f(x)).collect();
    }
    let mut dst = vec![T::zero(); src.len()];
    dst.par_chunks_mut(PAR_MIN / 4)
        .zip(src.par_chunks(PAR_MIN / 4))
        .for_each(|(d, s)| {
            for (d, &x) in d.iter_mut().zip(s) {
                *d = f(x);
            }
        });
    dst
}

impl FloatOp for Sigmoid {
    fn run<T: Kernel>(&self, src: &[T], _dims: &[usize]) -> Vec<T> {
        map_par(src, logistic)
    }
}

impl CustomOp1 for Sigmoid {
    fn name(&self) -> &'static str {
        "sigmoid"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((self.on_storage(s, l)?, l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.mul(&res.affine(-1.0, 1.0)?.mul(res)?)?))
    }
}

fn fast(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// `[outer, n, inner]` of `dims` around `dim`.
fn split(dims: &[usize], dim: usize) -> (usize, usize, usize) {
    let outer = dims[..dim].iter().product();
    let inner = dims[dim + 1..].iter().product();
    (outer, dims[dim], inner)
}

/// `dst[o, j] = sum_r src[o, r, j]` for a contiguous `src`.
fn sum_rows<T: Kernel>(src: &[T], outer: usize, n: usize, inner: usize) -> Vec<T> {
    let add = |acc: &mut [T], rows: &[T]| {
        for row in rows.chunks_exact(inner) {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a = *a + v;
            }
        }
    };
    let mut dst = vec![T::zero(); outer * inner];
    if inner == 0 {
        return dst;
    }
    let block = |o: usize| &src[o * n * inner..(o + 1) * n * inner];
    if src.len() < PAR_MIN {
        for (o, acc) in dst.chunks_exact_mut(inner).enumerate() {
            add(acc, block(o));
        }
        return dst;
    }
    if outer >= FEW_BLOCKS {
        // Each output row summed in row order, in parallel over the rows:
        // the same numbers on any number of threads.
        let min_rows = (PAR_MIN / (n * inner).max(1)).max(1);
        dst.par_chunks_mut(inner)
            .with_min_len(min_rows)
            .enumerate()
            .for_each(|(o, acc)| add(acc, block(o)));
        return dst;
    }
    // Few outer blocks (a sum over the leading dimension): partial sums over
    // runs of a fixed number of rows, in parallel, added in order (so the
    // rounding does not depend on the number of threads).
    for (o, acc) in dst.chunks_exact_mut(inner).enumerate() {
        let parts: Vec<Vec<T>> = block(o)
            .par_chunks(ROWS_PER_PART * inner)
            .map(|rows| {
                let mut p = vec![T::zero(); inner];
                add(&mut p, rows);
                p
            })
            .collect();
        for p in parts {
            add(acc, &p);
        }
    }
    dst
}

/// The element types the kernels run on (f32, f64).
trait Kernel: Float + Send + Sync {}
impl<T: Float + Send + Sync> Kernel for T {}

/// A kernel's CPU forward over the contiguous data of one input, for every
/// element type.
trait FloatOp: CustomOp1 {
    fn run<T: Kernel>(&self, src: &[T], dims: &[usize]) -> Vec<T>;

    /// [`FloatOp::run`] on `s` (f32 or f64, contiguous).
    fn on_storage(&self, s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
        let op = self.name();
        let (a, b) = match l.contiguous_offsets() {
            Some(o) => o,
            None => candle_core::bail!("{op}: the input must be contiguous"),
        };
        Ok(match s {
            CpuStorage::F32(v) => CpuStorage::F32(self.run(&v[a..b], l.dims())),
            CpuStorage::F64(v) => CpuStorage::F64(self.run(&v[a..b], l.dims())),
            _ => candle_core::bail!("{op}: only f32 and f64 run on this kernel"),
        })
    }
}

impl FloatOp for SumDim {
    fn run<T: Kernel>(&self, src: &[T], dims: &[usize]) -> Vec<T> {
        let (outer, n, inner) = split(dims, self.dim);
        sum_rows(src, outer, n, inner)
    }
}

impl CustomOp1 for SumDim {
    fn name(&self) -> &'static str {
        "sum-dim"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let mut out = l.dims().to_vec();
        out[self.dim] = 1;
        Ok((self.on_storage(s, l)?, Shape::from(out)))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.broadcast_as(arg.shape())?))
    }
}

/// Materialised broadcast of a contiguous input to `shape`.
struct Expand {
    shape: Shape,
}

impl Expand {
    /// The input's dims left-padded with 1 to the output's rank.
    fn padded(&self, input: &[usize]) -> Vec<usize> {
        let r = self.shape.rank();
        let mut p = vec![1; r - input.len()];
        p.extend_from_slice(input);
        p
    }
}

impl FloatOp for Expand {
    fn run<T: Kernel>(&self, src: &[T], input: &[usize]) -> Vec<T> {
        let out = self.shape.dims();
        let pad = self.padded(input);
        let r = out.len();
        // Contiguous strides of the padded input, 0 on broadcast dims.
        let mut strides = vec![0usize; r];
        let mut acc = 1;
        for d in (0..r).rev() {
            strides[d] = if pad[d] == 1 { 0 } else { acc };
            acc *= pad[d];
        }
        let total: usize = out.iter().product();
        let mut dst = Vec::with_capacity(total);
        if r == 0 {
            dst.extend_from_slice(&src[..1]);
            return dst;
        }
        let last = out[r - 1];
        let mut idx = vec![0usize; r - 1];
        let rows = total / last.max(1);
        for _ in 0..rows {
            let base: usize = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
            if strides[r - 1] == 0 {
                dst.extend(std::iter::repeat_n(src[base], last));
            } else {
                dst.extend_from_slice(&src[base..base + last]);
            }
            for d in (0..r - 1).rev() {
                idx[d] += 1;
                if idx[d] < out[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        dst
    }
}

impl CustomOp1 for Expand {
    fn name(&self) -> &'static str {
        "expand"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((self.on_storage(s, l)?, self.shape.clone()))
    }

    /// The gradient summed over the broadcast dimensions, back to the input's shape.
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let pad = self.padded(arg.dims());
        let mut g = grad.contiguous()?;
        for (d, (&p, &o)) in pad.iter().zip(self.shape.dims()).enumerate() {
            if p == 1 && o != 1 {
                g = sum_keepdim(&g, d)?;
            }
        }
        Ok(Some(g.reshape(arg.shape())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn ramp(dims: &[usize]) -> Tensor {
        (positive(dims) - 0.5).unwrap()
    }

    /// Values in [0, 1): long sums without cancellation, so that two
    /// summation orders agree to f32 rounding.
    fn positive(dims: &[usize]) -> Tensor {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32) * 0.01).collect();
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
    }

    fn close(a: &Tensor, b: &Tensor) {
        assert_eq!(a.dims(), b.dims());
        let (a, b) = (
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn sums_match_candle_on_every_dimension_and_size() {
        // Small (one thread) and large (parallel over many outer blocks, and
        // partial sums for few).
        for dims in [
            vec![3, 4, 5],
            vec![70_000, 3],
            vec![2, 40_000, 3],
            vec![5, 3, 9000],
        ] {
            let x = positive(&dims);
            for d in 0..dims.len() {
                close(&sum_keepdim(&x, d).unwrap(), &x.sum_keepdim(d).unwrap());
            }
        }
    }

    #[test]
    fn sums_are_the_same_bits_on_any_number_of_threads() {
        let x = ramp(&[70_000, 3]);
        let y = ramp(&[64, 300, 8]);
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let a = sum_keepdim(&x, 0).unwrap().flatten_all().unwrap();
                let b = sum_keepdim(&y, 1).unwrap().flatten_all().unwrap();
                (a.to_vec1::<f32>().unwrap(), b.to_vec1::<f32>().unwrap())
            })
        };
        let one = on(1);
        for t in [2, 3, 8] {
            assert_eq!(on(t), one, "{t} threads");
        }
    }

    #[test]
    fn expand_matches_broadcast_and_its_gradient_is_the_sum() {
        let out = Shape::from(vec![4, 3, 5]);
        for input in [
            vec![5],
            vec![1, 5],
            vec![4, 1, 5],
            vec![4, 3, 1],
            vec![1, 3, 1],
            vec![1],
        ] {
            let x = Var::from_tensor(&ramp(&input)).unwrap();
            let e = expand(x.as_tensor(), &out).unwrap();
            close(&e, &x.as_tensor().broadcast_as(&out).unwrap());
            // d/dx sum(w * expand(x)) = w summed over the broadcast dims.
            let w = ramp(out.dims());
            let ours = e.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
            let theirs = x
                .as_tensor()
                .broadcast_mul(&w)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            close(
                ours.get(x.as_tensor()).unwrap(),
                theirs.get(x.as_tensor()).unwrap(),
            );
        }
    }

    #[test]
    fn sigmoid_matches_the_tanh_form_and_its_gradient() {
        // Large enough for the parallel path, with extreme values.
        let mut v: Vec<f32> = (0..70_000).map(|i| (i as f32 - 35_000.0) * 1e-3).collect();
        v.extend([-200.0f32, 200.0, -90.0, 90.0]);
        let x =
            Var::from_tensor(&Tensor::from_vec(v.clone(), v.len(), &Device::Cpu).unwrap()).unwrap();
        let ours = sigmoid(x.as_tensor()).unwrap().unwrap();
        let tanh_form = (x.as_tensor() * 0.5)
            .unwrap()
            .tanh()
            .unwrap()
            .affine(0.5, 0.5)
            .unwrap();
        let (a, b) = (
            ours.to_vec1::<f32>().unwrap(),
            tanh_form.to_vec1::<f32>().unwrap(),
        );
        for (i, (p, q)) in a.iter().zip(&b).enumerate() {
            assert!(
                p.is_finite() && (p - q).abs() <= 1e-6,
                "x = {}: {p} vs {q}",
                v[i]
            );
        }
        let w = ramp(&[v.len()]);
        let g1 = ours.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = tanh_form
            .mul(&w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let (g1, g2) = (
            g1.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
            g2.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
        );
        for (p, q) in g1.iter().zip(&g2) {
            assert!((p - q).abs() <= 1e-6, "{p} vs {q}");
        }
    }

    #[test]
    fn broadcast_binary_gradients_match_candle() {
        let a = Var::from_tensor(&ramp(&[6, 1, 4])).unwrap();
        let b = Var::from_tensor(&ramp(&[5, 1])).unwrap();
        let ours = broadcast_binary(a.as_tensor(), b.as_tensor(), "mul", Tensor::mul).unwrap();
        let theirs = a.as_tensor().broadcast_mul(b.as_tensor()).unwrap();
        close(&ours, &theirs);
        let g1 = ours.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = theirs.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&a, &b] {
            close(
                g1.get(v.as_tensor()).unwrap(),
                g2.get(v.as_tensor()).unwrap(),
            );
        }
    }
}
