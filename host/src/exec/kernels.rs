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
//! backward reads its output, and so does the leaky ReLU (one op forward,
//! one backward), and FM's bi-interaction pooling runs as one
//! pass forward and one backward instead of seven ops, and dropout's mask
//! comes from a counter-based hash, in parallel, and DIN's Dice (batch
//! statistics, gate and product) is one op with a two-pass backward, and a
//! graph layer's message passing (gather along the edges, sum into the
//! targets) is one op that never makes the per-edge messages. On other devices, and where no gradient flows
//! through the broadcast operand, the executor keeps candle's own ops.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use num_traits::Float;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// The contiguous values of a CPU input of kernel `op`, of element type `T`.
fn values<'a, T: candle_core::WithDType>(
    op: &str,
    s: &'a CpuStorage,
    l: &Layout,
) -> Result<&'a [T]> {
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("{op}: the input must be contiguous")
    };
    Ok(&s.as_slice::<T>()?[a..b])
}

/// `$body` with `$T` the element type of the CPU storage `$s` (f32 or
/// f64), its result stored back as that type; other types are an error of
/// kernel `$op`.
macro_rules! per_float {
    ($op:expr, $s:expr, $T:ident => $body:expr) => {
        match $s {
            CpuStorage::F32(_) => {
                type $T = f32;
                CpuStorage::F32($body)
            }
            CpuStorage::F64(_) => {
                type $T = f64;
                CpuStorage::F64($body)
            }
            _ => candle_core::bail!("{}: only f32 and f64 run on this kernel", $op),
        }
    };
}

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

/// `f` of every element, in parallel from [`PAR_MIN`] elements.
fn map_par<T: Kernel>(src: &[T], f: impl Fn(T) -> T + Sync + Copy) -> Vec<T> {
    if src.len() < PAR_MIN {
        return src.iter().map(|&x| f(x)).collect();
    }
    written_par(src.len(), |start, d| {
        // Indexed over one length, with `f` (and what it holds) a local
        // copy, so the loop vectorises.
        let (s, f) = (&src[start..start + d.len()], f);
        for i in 0..d.len() {
            d[i].write(f(s[i]));
        }
    })
}

/// `f` of every pair of elements of `a` and `b` (one length), in parallel
/// from [`PAR_MIN`] elements.
fn zip_map_par<T: Kernel>(a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync + Copy) -> Vec<T> {
    if a.len() < PAR_MIN {
        return a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect();
    }
    written_par(a.len(), |start, d| {
        // As in `map_par`.
        let end = start + d.len();
        let (a, b, f) = (&a[start..end], &b[start..end], f);
        for i in 0..d.len() {
            d[i].write(f(a[i], b[i]));
        }
    })
}

/// A vector of `n` values written in parallel chunks of `PAR_MIN / 4` by
/// `write(start, chunk)`, which must write every value of its chunk (the
/// chunk holding values `start..start + chunk.len()`). The buffer is never
/// zeroed first: malloc hands back freed op buffers, and zeroing them cost
/// a pass over memory that is then written anyway.
fn written_par<T: Kernel>(
    n: usize,
    write: impl Fn(usize, &mut [std::mem::MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    let chunk = PAR_MIN / 4;
    let mut dst: Vec<T> = Vec::with_capacity(n);
    dst.spare_capacity_mut()[..n]
        .par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(c, d)| write(c * chunk, d));
    // SAFETY: the chunks cover `0..n` and `write` writes every value of
    // its chunk (its contract, kept by every caller).
    unsafe { dst.set_len(n) };
    dst
}

/// Leaky ReLU with negative slope `slope` as one CPU op (`x` where `x > 0`,
/// else `slope * x`), with `dx = dy` where `x > 0`, else `slope * dy`
/// (PyTorch's convention at 0), in one more; the executor's portable form
/// is five ops through two ReLUs. `None` where the kernel does not apply.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Option<Result<Tensor>> {
    fast(x).then(|| x.contiguous()?.apply_op1(LeakyRelu { slope }))
}

struct LeakyRelu {
    slope: f64,
}

impl FloatOp for LeakyRelu {
    fn run<T: Kernel>(&self, src: &[T], _dims: &[usize]) -> Vec<T> {
        let s = T::from(self.slope).unwrap_or_else(T::zero);
        map_par(src, move |x| if x > T::zero() { x } else { s * x })
    }
}

impl CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "leaky-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((self.on_storage(s, l)?, l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (x, g) = (arg.contiguous()?, grad.contiguous()?);
        Ok(Some(x.apply_op2_no_bwd(
            &g,
            &Grad(LeakyReluGrad { slope: self.slope }),
        )?))
    }
}

/// `dx` of the leaky ReLU from `x` and `dy`.
fn leaky_relu_grad<T: Kernel>(x: &[T], dy: &[T], slope: f64) -> Vec<T> {
    let s = T::from(slope).unwrap_or_else(T::zero);
    zip_map_par(x, dy, move |x, g| if x > T::zero() { g } else { s * g })
}

/// The backward of [`LeakyRelu`]: `(x, dy)` -> `dx`.
struct LeakyReluGrad {
    slope: f64,
}

impl GradKernel for LeakyReluGrad {
    const NAME: &'static str = "leaky-relu-grad";

    fn run<T: Kernel>(&self, x: &[T], dy: &[T], _dims: &[usize]) -> Vec<T> {
        leaky_relu_grad(x, dy, self.slope)
    }
}

/// A backward kernel `(x, dy) -> dx` (of `x`'s shape) for every element
/// type, run as a candle op by [`Grad`].
trait GradKernel: Send + Sync {
    const NAME: &'static str;
    fn run<T: Kernel>(&self, x: &[T], dy: &[T], dims: &[usize]) -> Vec<T>;
}

/// A [`GradKernel`] as a candle op on contiguous CPU inputs (f32, f64).
struct Grad<K>(K);

impl<K: GradKernel> candle_core::CustomOp2 for Grad<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let op = K::NAME;
        let out = per_float!(op, s1, T => self.0.run(
            values::<T>(op, s1, l1)?,
            values(op, s2, l2)?,
            l1.dims(),
        ));
        Ok((out, l1.shape().clone()))
    }
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

/// FM's bi-interaction pooling of `F` stacked fields, `[.., F, d]` ->
/// `[.., d]`: `0.5 * ((sum_f x_f)^2 - sum_f x_f^2)` in one pass, with the
/// backward `dx_f = dy * (sum_g x_g - x_f)` in one more (CPU, f32/f64);
/// `None` where the kernel does not apply (other devices, dtypes).
pub fn bi_interaction(stacked: &Tensor) -> Option<Result<Tensor>> {
    (fast(stacked) && stacked.rank() >= 2).then(|| stacked.contiguous()?.apply_op1(BiInteraction))
}

/// Bi-interaction pooling of separate fields `[.., d]` each, for inference
/// (no backward): read in place, so the `[.., F, d]` stack the training
/// kernel differentiates through is never made. `None` where it does not
/// apply (other devices or dtypes, fields of mixed dtypes or shapes).
pub fn bi_interaction_of_fields(fields: &[Tensor]) -> Option<Result<Tensor>> {
    let first = fields.first()?;
    let unlike = |f: &Tensor| f.dtype() != first.dtype() || f.shape() != first.shape();
    if !fast(first) || first.rank() == 0 || fields.iter().any(unlike) {
        return None;
    }
    Some(match first.dtype() {
        DType::F32 => bi_interaction_tensor::<f32>(fields),
        _ => bi_interaction_tensor::<f64>(fields),
    })
}

/// [`bi_interaction_of_fields`] of CPU fields of element type `T`.
fn bi_interaction_tensor<T: Kernel + candle_core::WithDType>(fields: &[Tensor]) -> Result<Tensor> {
    let fields: Vec<Tensor> = fields
        .iter()
        .map(|f| f.contiguous())
        .collect::<Result<_>>()?;
    let guards: Vec<_> = fields.iter().map(|f| f.storage_and_layout()).collect();
    let mut xs: Vec<&[T]> = Vec::with_capacity(guards.len());
    for (st, l) in &guards {
        let candle_core::Storage::Cpu(c) = &**st else {
            candle_core::bail!("bi-interaction: the fields must be on the CPU")
        };
        xs.push(values::<T>("bi-interaction", c, l)?);
    }
    let dims = fields[0].dims();
    let out = bi_interaction_fields(&xs, dims[dims.len() - 1]);
    Tensor::from_vec(out, dims, fields[0].device())
}

/// `0.5 * ((sum_f x_f)^2 - sum_f x_f^2)` per row of `d` of the fields `xs`.
fn bi_interaction_fields<T: Kernel>(xs: &[&[T]], d: usize) -> Vec<T> {
    let n = xs[0].len();
    if d == 0 {
        return vec![T::zero(); n];
    }
    let mut dst: Vec<T> = Vec::with_capacity(n);
    dst.spare_capacity_mut()[..n]
        .par_chunks_mut(d)
        .with_min_len(rows_per_task(xs.len(), d))
        .enumerate()
        .for_each_init(
            || PoolScratch::new(d),
            |scratch, (r, out)| pool_row(out, scratch, xs.iter().map(|x| &x[r * d..(r + 1) * d])),
        );
    // SAFETY: `n` is a multiple of `d` (every field is `[.., d]`), so the
    // chunks cover all `n` elements, and `pool_row` writes all of each.
    unsafe { dst.set_len(n) };
    dst
}

/// One task's scratch rows for [`pool_row`]: the running sum and sum of
/// squares of a row's fields.
struct PoolScratch<T> {
    sum: Vec<T>,
    sq: Vec<T>,
}

impl<T: Kernel> PoolScratch<T> {
    fn new(d: usize) -> Self {
        PoolScratch {
            sum: vec![T::zero(); d],
            sq: vec![T::zero(); d],
        }
    }
}

/// One row of bi-interaction pooling: `out = 0.5 * ((sum_f x_f)^2 - sum_f
/// x_f^2)` over the row's fields (each `out.len()` wide), summed in
/// `scratch`; every element of `out` is written (it need not be
/// initialised).
fn pool_row<'a, T: Kernel + 'a>(
    out: &mut [MaybeUninit<T>],
    scratch: &mut PoolScratch<T>,
    fields: impl Iterator<Item = &'a [T]>,
) {
    let (sum, sq) = (&mut scratch.sum, &mut scratch.sq);
    sum.fill(T::zero());
    sq.fill(T::zero());
    for field in fields {
        for ((a, s), &v) in sum.iter_mut().zip(sq.iter_mut()).zip(field) {
            *a = *a + v;
            *s = *s + v * v;
        }
    }
    let half = T::from(0.5).unwrap_or_else(T::zero);
    for ((o, &a), &s) in out.iter_mut().zip(sum.iter()).zip(sq.iter()) {
        o.write(half * (a * a - s));
    }
}

struct BiInteraction;

/// `[rows, F, d]` of a stacked `[.., F, d]`.
fn fields_of(dims: &[usize]) -> (usize, usize, usize) {
    let r = dims.len();
    (dims[..r - 2].iter().product(), dims[r - 2], dims[r - 1])
}

/// Rows of `d` processed by one task of the parallel kernels.
fn rows_per_task(f: usize, d: usize) -> usize {
    (PAR_MIN / (f * d).max(1)).max(1)
}

impl FloatOp for BiInteraction {
    fn run<T: Kernel>(&self, src: &[T], dims: &[usize]) -> Vec<T> {
        let (rows, f, d) = fields_of(dims);
        if d == 0 || f == 0 {
            return vec![T::zero(); rows * d];
        }
        let mut dst: Vec<T> = Vec::with_capacity(rows * d);
        dst.spare_capacity_mut()[..rows * d]
            .par_chunks_mut(d)
            .with_min_len(rows_per_task(f, d))
            .zip(src.par_chunks(f * d))
            .for_each_init(
                || PoolScratch::new(d),
                |scratch, (out, x)| pool_row(out, scratch, x.chunks_exact(d)),
            );
        // SAFETY: `src` holds `rows` chunks of `f * d` (its shape is
        // `dims`), paired one to one with the `rows` chunks of `d` of
        // `dst`, and `pool_row` writes all of each.
        unsafe { dst.set_len(rows * d) };
        dst
    }
}

impl CustomOp1 for BiInteraction {
    fn name(&self) -> &'static str {
        "bi-interaction"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let dims = l.dims();
        let mut out = dims[..dims.len() - 2].to_vec();
        out.push(dims[dims.len() - 1]);
        Ok((self.on_storage(s, l)?, Shape::from(out)))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let x = arg.contiguous()?;
        let g = grad.contiguous()?;
        Ok(Some(x.apply_op2_no_bwd(&g, &Grad(BiInteractionGrad))?))
    }
}

/// The backward of [`BiInteraction`]: `(x [.., F, d], dy [.., d])` -> `dx`.
struct BiInteractionGrad;

fn bi_interaction_grad<T: Kernel>(x: &[T], g: &[T], dims: &[usize]) -> Vec<T> {
    let (_, f, d) = fields_of(dims);
    if d == 0 || f == 0 {
        return vec![T::zero(); x.len()];
    }
    // Every row of `dx` is written below only if `dy` has its rows.
    assert_eq!(
        g.len() * f,
        x.len(),
        "bi-interaction-grad: dy's rows against x's"
    );
    // Written row by row, never zeroed first; one running sum per task.
    let mut dx: Vec<T> = Vec::with_capacity(x.len());
    dx.spare_capacity_mut()[..x.len()]
        .par_chunks_mut(f * d)
        .with_min_len(rows_per_task(f, d))
        .zip(x.par_chunks(f * d))
        .zip(g.par_chunks(d))
        .for_each_init(
            || vec![T::zero(); d],
            |sum, ((dx, x), g)| {
                sum.fill(T::zero());
                for field in x.chunks_exact(d) {
                    for (s, &v) in sum.iter_mut().zip(field) {
                        *s = *s + v;
                    }
                }
                for (dxf, xf) in dx.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                    for (((o, &v), &s), &gj) in dxf.iter_mut().zip(xf).zip(sum.iter()).zip(g) {
                        o.write(gj * (s - v));
                    }
                }
            },
        );
    // SAFETY: every row chunk `f * d` of `dx` was written whole above (the
    // rows of `x` and `g` match those of `dx`, `dims` being `x`'s shape).
    unsafe { dx.set_len(x.len()) };
    dx
}

impl GradKernel for BiInteractionGrad {
    const NAME: &'static str = "bi-interaction-grad";

    fn run<T: Kernel>(&self, x: &[T], dy: &[T], dims: &[usize]) -> Vec<T> {
        bi_interaction_grad(x, dy, dims)
    }
}

/// Inverted dropout at rate `p` as one CPU op: element `i` is kept (scaled
/// by `1 / (1 - p)`) when a counter-based hash of `(seed, i)` clears the
/// rate (to 2^-32), so the mask needs no state and no sequential random stream: it is
/// made in parallel, the same on any number of threads, and the backward
/// makes it again from the seed instead of keeping it. [`dropout_mask`] is
/// the same mask as a tensor, for the other devices.
pub fn dropout(x: &Tensor, p: f64, seed: u64) -> Option<Result<Tensor>> {
    fast(x).then(|| x.contiguous()?.apply_op1(Dropout::new(p, seed)))
}

/// The mask of [`dropout`] (0 or `1 / (1 - p)` per element), `n` values.
pub fn dropout_mask(n: usize, p: f64, seed: u64) -> Vec<f32> {
    let d = Dropout::new(p, seed);
    (0..n)
        .map(|i| if d.keeps(i) { d.scale as f32 } else { 0.0 })
        .collect()
}

#[derive(Clone, Copy)]
struct Dropout {
    /// An element is dropped when its 32-bit hash falls below this.
    threshold: u64,
    scale: f64,
    /// The two 32-bit keys of the hash (from the 64-bit seed).
    keys: [u32; 2],
}

/// MurmurHash3's 32-bit finaliser: a bijection that mixes every input bit
/// into every output bit.
#[inline(always)]
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^ (h >> 16)
}

impl Dropout {
    fn new(p: f64, seed: u64) -> Self {
        Dropout {
            threshold: (p * (1u64 << 32) as f64).round() as u64,
            scale: 1.0 / (1.0 - p),
            keys: [seed as u32, (seed >> 32) as u32],
        }
    }

    /// Whether element `i` is kept: two keyed rounds of [`fmix32`] over the
    /// index (32-bit arithmetic, so the mask vectorises).
    #[inline(always)]
    fn keeps(&self, i: usize) -> bool {
        let h = fmix32((i as u32).wrapping_mul(0x9E37_79B9) ^ self.keys[0]);
        fmix32(h ^ self.keys[1]) as u64 >= self.threshold
    }

    /// `d[j] = s[j] * mask[start + j]`, every element of `d` written.
    #[inline(always)]
    fn mask_into<T: Kernel>(&self, d: &mut [MaybeUninit<T>], s: &[T], start: usize) {
        let scale = T::from(self.scale).unwrap_or_else(T::one);
        for (j, (d, &x)) in d.iter_mut().zip(s).enumerate() {
            // A select, not a branch on a coin flip.
            let m = if self.keeps(start + j) {
                scale
            } else {
                T::zero()
            };
            d.write(x * m);
        }
    }

    /// [`Dropout::mask_into`] compiled for AVX2 (8-wide 32-bit multiplies).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn mask_into_avx2<T: Kernel>(&self, d: &mut [MaybeUninit<T>], s: &[T], start: usize) {
        self.mask_into(d, s, start)
    }
}

impl FloatOp for Dropout {
    /// Written into fresh memory, never zeroed first ([`written_par`]).
    fn run<T: Kernel>(&self, src: &[T], _dims: &[usize]) -> Vec<T> {
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        written_par(src.len(), |start, d| {
            let s = &src[start..start + d.len()];
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: the CPU has AVX2 (checked above).
                return unsafe { self.mask_into_avx2(d, s, start) };
            }
            self.mask_into(d, s, start)
        })
    }
}

impl CustomOp1 for Dropout {
    fn name(&self) -> &'static str {
        "dropout"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((self.on_storage(s, l)?, l.shape().clone()))
    }

    /// The same mask on the gradient: `dy * mask`.
    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(self)?))
    }
}

/// DIN's Dice (Zhou et al. 2018, Eq. 9) with the batch's statistics, as one
/// CPU op: `y = s (alpha + p (1 - alpha))`, `p = sigmoid((s - E[s]) /
/// sqrt(Var[s] + eps))`, `E` and `Var` per unit (column of `s [N, H]`) over
/// the rows weighted by `weight [N, 1]` (0 / 1; the count clamped to at
/// least 1). The backward runs through the statistics as batch norm's does,
/// in two passes. `None` where the kernel does not apply.
pub fn dice(s: &Tensor, alpha: &Tensor, weight: &Tensor, eps: f64) -> Option<Result<Tensor>> {
    (fast(s) && s.rank() == 2 && s.dtype() == alpha.dtype() && s.dtype() == weight.dtype()).then(
        || {
            s.contiguous()?
                .apply_op3(&alpha.contiguous()?, &weight.contiguous()?, Dice { eps })
        },
    )
}

struct Dice {
    eps: f64,
}

/// Per-column sums over the rows of an `[n, h]` computation: `f(i, acc)`
/// adds row `i`'s terms into `acc` (`k * h` sums). Rows are summed in
/// blocks of `ROWS_PER_PART`, in parallel, the blocks added in order (the
/// same numbers on any number of threads).
fn column_sums<T: Kernel>(
    n: usize,
    h: usize,
    k: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) -> Vec<T> {
    let parts: Vec<Vec<T>> = (0..n.div_ceil(ROWS_PER_PART))
        .into_par_iter()
        .map(|b| {
            let mut acc = vec![T::zero(); k * h];
            for i in b * ROWS_PER_PART..((b + 1) * ROWS_PER_PART).min(n) {
                f(i, &mut acc);
            }
            acc
        })
        .collect();
    let mut total = vec![T::zero(); k * h];
    for p in parts {
        for (t, v) in total.iter_mut().zip(p) {
            *t = *t + v;
        }
    }
    total
}

/// Dice's statistics of `s [n, h]` under row weights `w [n]`: per column
/// the mean and `1 / sqrt(var + eps)`, and `1 / count`.
fn dice_stats<T: Kernel>(s: &[T], w: &[T], h: usize, eps: f64) -> (Vec<T>, Vec<T>, T) {
    let n = w.len();
    let count = w.iter().fold(T::zero(), |a, &x| a + x).max(T::one());
    let inv = T::one() / count;
    let sum: Vec<T> = column_sums(n, h, 1, |i, acc| {
        for (a, &x) in acc.iter_mut().zip(&s[i * h..(i + 1) * h]) {
            *a = *a + x * w[i];
        }
    });
    let mean: Vec<T> = sum.iter().map(|&x| x * inv).collect();
    let sq: Vec<T> = column_sums(n, h, 1, |i, acc| {
        for ((a, &x), &m) in acc.iter_mut().zip(&s[i * h..(i + 1) * h]).zip(&mean) {
            *a = *a + (x - m) * (x - m) * w[i];
        }
    });
    let e = T::from(eps).unwrap_or_else(T::zero);
    let r = sq
        .iter()
        .map(|&v| T::one() / (v * inv + e).sqrt())
        .collect();
    (mean, r, inv)
}

fn dice_forward<T: Kernel>(s: &[T], alpha: &[T], w: &[T], eps: f64) -> Vec<T> {
    let h = alpha.len();
    let (mean, r, _) = dice_stats(s, w, h, eps);
    let mut y = vec![T::zero(); s.len()];
    y.par_chunks_mut(h)
        .with_min_len(rows_per_task(1, h))
        .zip(s.par_chunks(h))
        .for_each(|(y, s)| {
            for ((((y, &x), &m), &r), &a) in y.iter_mut().zip(s).zip(&mean).zip(&r).zip(alpha) {
                let p = logistic((x - m) * r);
                *y = x * (a + p * (T::one() - a));
            }
        });
    y
}

/// Dice's backward: `[n + 1, h]`, the gradient of `s` in the first `n`
/// rows and of `alpha` in the last. With `z = (s - E s) / sqrt(Var s + eps)`,
/// `p = sigmoid(z)` and `a = dL/dz = dy s (1 - alpha) p (1 - p)`:
/// `ds = dy (alpha + p (1 - alpha)) + r (a - w / count (sum a + z sum a z))`
/// (the sums over rows, per unit; `r = 1 / sqrt(Var s + eps)`), and
/// `dalpha = sum dy s (1 - p)`.
fn dice_backward<T: Kernel>(s: &[T], alpha: &[T], w: &[T], g: &[T], eps: f64) -> Vec<T> {
    let (n, h) = (w.len(), alpha.len());
    let (mean, r, inv) = dice_stats(s, w, h, eps);
    let rows = rows_per_task(1, h);
    // z and p per element, once (the exponential is the costly part).
    let (mut z, mut p) = (vec![T::zero(); s.len()], vec![T::zero(); s.len()]);
    z.par_chunks_mut(h)
        .with_min_len(rows)
        .zip(p.par_chunks_mut(h))
        .zip(s.par_chunks(h))
        .for_each(|((z, p), s)| {
            for ((((z, p), &x), &m), &r) in z.iter_mut().zip(p.iter_mut()).zip(s).zip(&mean).zip(&r)
            {
                *z = (x - m) * r;
                *p = logistic(*z);
            }
        });
    // a, in the output's rows for now.
    let mut out = vec![T::zero(); (n + 1) * h];
    let (ds, dalpha) = out.split_at_mut(n * h);
    ds.par_chunks_mut(h)
        .with_min_len(rows)
        .zip(g.par_chunks(h).zip(s.par_chunks(h)).zip(p.par_chunks(h)))
        .for_each(|(a, ((g, s), p))| {
            for ((((a, &g), &x), &p), &al) in a.iter_mut().zip(g).zip(s).zip(p).zip(alpha) {
                *a = g * x * (T::one() - al) * p * (T::one() - p);
            }
        });
    // Per unit: sum a, sum a z, and alpha's gradient sum dy s (1 - p).
    let sums = column_sums(n, h, 3, |i, acc| {
        let row = i * h..(i + 1) * h;
        let (sa, rest) = acc.split_at_mut(h);
        let (saz, sd) = rest.split_at_mut(h);
        for (((sa, saz), &a), &z) in sa
            .iter_mut()
            .zip(saz.iter_mut())
            .zip(&ds[row.clone()])
            .zip(&z[row.clone()])
        {
            *sa = *sa + a;
            *saz = *saz + a * z;
        }
        for (((sd, &g), &x), &p) in sd
            .iter_mut()
            .zip(&g[row.clone()])
            .zip(&s[row.clone()])
            .zip(&p[row])
        {
            *sd = *sd + g * x * (T::one() - p);
        }
    });
    let (sa, rest) = sums.split_at(h);
    let (saz, sd) = rest.split_at(h);
    dalpha.copy_from_slice(sd);
    ds.par_chunks_mut(h)
        .with_min_len(rows)
        .enumerate()
        .for_each(|(i, d)| {
            let row = i * h..(i + 1) * h;
            let wi = w[i] * inv;
            let terms = g[row.clone()].iter().zip(&p[row.clone()]).zip(&z[row]);
            for (((((d, ((&g, &p), &z)), &al), &r), &sa), &saz) in
                d.iter_mut().zip(terms).zip(alpha).zip(&r).zip(sa).zip(saz)
            {
                let direct = g * (al + p * (T::one() - al));
                *d = direct + r * (*d - wi * (sa + z * saz));
            }
        });
    out
}

impl candle_core::CustomOp3 for Dice {
    fn name(&self) -> &'static str {
        "dice"
    }

    fn cpu_fwd(
        &self,
        s: &CpuStorage,
        ls: &Layout,
        alpha: &CpuStorage,
        la: &Layout,
        w: &CpuStorage,
        lw: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let op = self.name();
        let y = per_float!(op, s, T => dice_forward(
            values::<T>(op, s, ls)?,
            values(op, alpha, la)?,
            values(op, w, lw)?,
            self.eps,
        ));
        Ok((y, ls.shape().clone()))
    }

    fn bwd(
        &self,
        s: &Tensor,
        alpha: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, h) = s.dims2()?;
        let packed = s.apply_op3_no_bwd(
            &w.contiguous()?,
            &grad.contiguous()?,
            &DiceGrad {
                alpha: alpha.contiguous()?,
                eps: self.eps,
            },
        )?;
        let ds = packed.narrow(0, 0, n)?;
        let dalpha = packed.narrow(0, n, 1)?.reshape(h)?;
        Ok((Some(ds), Some(dalpha), None))
    }
}

/// [`Dice`]'s backward over `(s, weight, dy)`, `alpha` held: `[n + 1, h]`.
struct DiceGrad {
    alpha: Tensor,
    eps: f64,
}

impl candle_core::CustomOp3 for DiceGrad {
    fn name(&self) -> &'static str {
        "dice-grad"
    }

    fn cpu_fwd(
        &self,
        s: &CpuStorage,
        ls: &Layout,
        w: &CpuStorage,
        lw: &Layout,
        g: &CpuStorage,
        lg: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, h) = ls.shape().dims2()?;
        let (a, la) = self.alpha.storage_and_layout();
        let candle_core::Storage::Cpu(a) = &*a else {
            candle_core::bail!("dice-grad: alpha must be on the CPU")
        };
        let op = self.name();
        let out = per_float!(op, s, T => dice_backward(
            values::<T>(op, s, ls)?,
            values(op, a, la)?,
            values(op, w, lw)?,
            values(op, g, lg)?,
            self.eps,
        ));
        Ok((out, Shape::from((n + 1, h))))
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

/// Message passing as one op: `[rows, d]`, row `t` the sum of the rows
/// `sources[e]` of `x` (`[N, d]`) over the edges with `targets[e] = t`, in
/// edge order (the order, and so the bits, of candle's `index_add` of
/// `index_select`ed messages), in parallel over target rows; the backward
/// is the same op over the reversed edges. The `[E, d]` messages of
/// `index_select` + `index_add` (and their gradients) are never made: a
/// graph layer's edges outnumber its nodes 15 to 1 in MMGCN's batch
/// subgraphs. Ids must be in range (the executor checks them). `None`
/// where the kernel does not apply (other devices, dtypes, ranks).
pub fn edge_sum(
    x: &Tensor,
    sources: &[u32],
    targets: &[u32],
    rows: usize,
) -> Option<Result<Tensor>> {
    (fast(x) && x.rank() == 2).then(|| {
        let op = EdgeSum::new(sources.into(), targets.into(), rows);
        x.contiguous()?.apply_op1(op)
    })
}

/// [`edge_sum`]'s op: its edges, and per target row the sources of its
/// edges in edge order (`offsets[t]..offsets[t + 1]` of `by_target`).
struct EdgeSum {
    sources: std::sync::Arc<[u32]>,
    targets: std::sync::Arc<[u32]>,
    rows: usize,
    offsets: Vec<usize>,
    by_target: Vec<u32>,
}

impl EdgeSum {
    fn new(sources: std::sync::Arc<[u32]>, targets: std::sync::Arc<[u32]>, rows: usize) -> Self {
        // A stable counting sort of the edges by target.
        let mut offsets = vec![0usize; rows + 1];
        for &t in targets.iter() {
            offsets[t as usize + 1] += 1;
        }
        for t in 0..rows {
            offsets[t + 1] += offsets[t];
        }
        let mut next = offsets[..rows].to_vec();
        let mut by_target = vec![0u32; targets.len()];
        for (&t, &s) in targets.iter().zip(sources.iter()) {
            by_target[next[t as usize]] = s;
            next[t as usize] += 1;
        }
        EdgeSum {
            sources,
            targets,
            rows,
            offsets,
            by_target,
        }
    }
}

impl FloatOp for EdgeSum {
    fn run<T: Kernel>(&self, x: &[T], dims: &[usize]) -> Vec<T> {
        let d = dims[1];
        let mut out = vec![T::zero(); self.rows * d];
        if d == 0 {
            return out;
        }
        let per_row = (self.by_target.len() / self.rows.max(1)).max(1) * d;
        #[cfg(target_arch = "x86_64")]
        let avx = std::arch::is_x86_feature_detected!("avx");
        out.par_chunks_mut(d)
            .with_min_len((PAR_MIN / per_row).max(1))
            .enumerate()
            .for_each(|(t, acc)| {
                let sources = &self.by_target[self.offsets[t]..self.offsets[t + 1]];
                #[cfg(target_arch = "x86_64")]
                if avx {
                    // SAFETY: the CPU has AVX (checked above).
                    return unsafe { add_rows_avx(acc, x, sources) };
                }
                add_rows(acc, x, sources)
            });
        out
    }
}

/// `acc += x[s]` for each row `s` of `sources` (rows of `acc.len()`), in order.
#[inline(always)]
fn add_rows<T: Kernel>(acc: &mut [T], x: &[T], sources: &[u32]) {
    let d = acc.len();
    for &s in sources {
        let row = &x[s as usize * d..(s as usize + 1) * d];
        for i in 0..d {
            acc[i] = acc[i] + row[i];
        }
    }
}

/// [`add_rows`] compiled for AVX (8-wide adds; no fused multiply-add, so
/// the same bits).
///
/// # Safety
/// The CPU must support AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn add_rows_avx<T: Kernel>(acc: &mut [T], x: &[T], sources: &[u32]) {
    add_rows(acc, x, sources)
}

impl CustomOp1 for EdgeSum {
    fn name(&self) -> &'static str {
        "edge-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = l.dims()[1];
        Ok((self.on_storage(s, l)?, Shape::from((self.rows, d))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // dx[s] = sum of dy[targets[e]] over the edges with sources[e] = s.
        let back = EdgeSum::new(self.targets.clone(), self.sources.clone(), arg.dims()[0]);
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&back)?))
    }
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
        Ok(per_float!(op, s, T => self.run(values::<T>(op, s, l)?, l.dims())))
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
    fn bi_interaction_matches_candle_ops_and_its_gradient() {
        // [3, 2, 4, 5]: rows 3 x 2, four fields of width 5.
        let x = Var::from_tensor(&ramp(&[3, 2, 4, 5])).unwrap();
        let ours = bi_interaction(x.as_tensor()).unwrap().unwrap();
        let s = x.sum(2).unwrap();
        let theirs =
            ((s.sqr().unwrap() - x.sqr().unwrap().sum(2).unwrap()).unwrap() * 0.5).unwrap();
        close(&ours, &theirs);
        let w = ramp(&[3, 2, 5]);
        close(
            &weighted_grad(&ours, &w, &x),
            &weighted_grad(&theirs, &w, &x),
        );
    }

    #[test]
    fn bi_interaction_of_separate_fields_matches_the_stacked_kernel() {
        // Rows 3 x 2 (one thread), then 700 x 3 (parallel), fields of width 5
        // and one strided (transposed) field; f32 and f64.
        for rows in [[3usize, 2], [700, 3]] {
            let fields: Vec<Tensor> = (0..4)
                .map(|f| {
                    let t = ramp(&[rows[0], rows[1], 5]);
                    (t + 0.1 * f as f64).unwrap()
                })
                .collect();
            let mut given = fields.clone();
            given[2] = fields[2].t().unwrap().contiguous().unwrap().t().unwrap();
            assert!(!given[2].is_contiguous());
            let stacked = Tensor::stack(&fields, 2).unwrap();
            let want = bi_interaction(&stacked).unwrap().unwrap();
            close(&bi_interaction_of_fields(&given).unwrap().unwrap(), &want);
            let f64s: Vec<Tensor> = given
                .iter()
                .map(|t| t.to_dtype(DType::F64).unwrap())
                .collect();
            let got = bi_interaction_of_fields(&f64s).unwrap().unwrap();
            assert_eq!(got.dtype(), DType::F64);
            close(&got.to_dtype(DType::F32).unwrap(), &want);
        }
        // Mixed dtypes or shapes are not this kernel's.
        let mixed = [ramp(&[2, 3]), ramp(&[2, 3]).to_dtype(DType::F64).unwrap()];
        assert!(bi_interaction_of_fields(&mixed).is_none());
        assert!(bi_interaction_of_fields(&[ramp(&[2, 3]), ramp(&[3, 2])]).is_none());
    }

    #[test]
    fn leaky_relu_matches_candle_ops_and_its_gradient_on_many_threads() {
        // 300 x 700 values of both signs, none 0 (where the gradient
        // conventions differ), past the parallel threshold.
        let v: Vec<f32> = (0..300 * 700)
            .map(|i| ((i * 37 % 101) as f32 - 50.5) * 0.01)
            .collect();
        let x = Var::from_vec(v, (300, 700), &Device::Cpu).unwrap();
        let ours = leaky_relu(x.as_tensor(), 0.2).unwrap().unwrap();
        let t = x.as_tensor();
        let theirs =
            (t.relu().unwrap() - (t.neg().unwrap().relu().unwrap() * 0.2).unwrap()).unwrap();
        close(&ours, &theirs);
        let w = ramp(&[300, 700]);
        close(
            &weighted_grad(&ours, &w, &x),
            &weighted_grad(&theirs, &w, &x),
        );
    }

    /// The gradient of `sum(y * w)` with respect to `x`.
    fn weighted_grad(y: &Tensor, w: &Tensor, x: &Var) -> Tensor {
        let g = (y * w).unwrap().sum_all().unwrap().backward().unwrap();
        g.get(x.as_tensor()).unwrap().clone()
    }

    #[test]
    fn dropout_kernel_is_the_mask_times_x_forward_and_backward() {
        let x = Var::from_tensor(&positive(&[300, 700])).unwrap();
        let (p, seed) = (0.3, 42);
        let y = dropout(x.as_tensor(), p, seed).unwrap().unwrap();
        let mask =
            Tensor::from_vec(dropout_mask(300 * 700, p, seed), (300, 700), &Device::Cpu).unwrap();
        close(&y, &(x.as_tensor() * &mask).unwrap());
        // About 30% dropped (210,000 draws: 4 sigma is 0.4%).
        let m = mask.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let dropped = m.iter().filter(|&&v| v == 0.0).count() as f64 / m.len() as f64;
        assert!((dropped - p).abs() < 0.004, "{dropped}");
        assert!(m.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
        // The backward is the same mask; another seed is another mask.
        let w = ramp(&[300, 700]);
        close(&weighted_grad(&y, &w, &x), &(&w * &mask).unwrap());
        assert_ne!(dropout_mask(1000, p, seed), dropout_mask(1000, p, seed + 1));
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
