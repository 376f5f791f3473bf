//! The op set of [`causalrec_sdk::ops`] on candle tensors.
//!
//! Every op is built from candle primitives that have reverse-mode gradients,
//! choosing numerically stable forms (sigmoid through tanh, softplus and BCE
//! through `|x|`, masked softmax with a detached max).

use candle_core::{DType, Device, Shape, Tensor, D};
use causalrec_sdk::ops::*;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::kernels;

/// What an op needs besides its inputs.
pub struct OpEnv<'a> {
    pub dtype: DType,
    pub device: &'a Device,
    pub training: bool,
    pub rng: &'a mut ChaCha8Rng,
}

pub type OpResult = Result<Tensor, String>;

fn err(e: candle_core::Error) -> String {
    // candle errors carry a backtrace in Display for some variants; keep the first line.
    e.to_string()
        .lines()
        .next()
        .unwrap_or("candle error")
        .to_string()
}

fn dim_of(t: &Tensor, d: i64) -> Result<usize, String> {
    let r = t.rank() as i64;
    let i = if d < 0 { r + d } else { d };
    // A scalar has no dims: `i >= r` (not `r.max(1)`), else SQUEEZE of a
    // scalar indexed `dims()[0]` and panicked.
    if i < 0 || i >= r {
        return Err(format!(
            "dim {d} out of range for a tensor of rank {r} (shape {:?})",
            t.dims()
        ));
    }
    Ok(i as usize)
}

fn want(inputs: &[Tensor], lo: usize, hi: usize) -> Result<(), String> {
    if inputs.len() < lo || inputs.len() > hi {
        return Err(format!("expects {lo}..={hi} inputs, got {}", inputs.len()));
    }
    Ok(())
}

fn int(ints: &[i64], i: usize) -> Result<i64, String> {
    ints.get(i)
        .copied()
        .ok_or_else(|| format!("missing integer attribute #{i}"))
}

fn float(floats: &[f64], i: usize) -> Result<f64, String> {
    floats
        .get(i)
        .copied()
        .ok_or_else(|| format!("missing float attribute #{i}"))
}

/// Broadcast every tensor to their common shape.
pub fn bcast(ts: &[&Tensor]) -> Result<Vec<Tensor>, String> {
    let mut shape: Shape = ts[0].shape().clone();
    for t in &ts[1..] {
        shape = shape
            .broadcast_shape_binary_op(t.shape(), "broadcast")
            .map_err(err)?;
    }
    ts.iter()
        .map(|t| t.broadcast_as(&shape).map_err(err))
        .collect()
}

/// A float view of a tensor (ids and masks arrive as integers).
fn as_float(t: &Tensor, dtype: DType) -> OpResult {
    if t.dtype() == dtype {
        Ok(t.clone())
    } else {
        t.to_dtype(dtype).map_err(err)
    }
}

fn ids(t: &Tensor) -> OpResult {
    match t.dtype() {
        DType::U32 | DType::I64 | DType::U8 => t.contiguous().map_err(err),
        _ => t
            .to_dtype(DType::U32)
            .and_then(|t| t.contiguous())
            .map_err(err),
    }
}

/// A 1-D id tensor's ids (integer or whole float values, as [`ids`] reads them).
fn id_list(t: &Tensor) -> Result<Vec<u32>, String> {
    if t.rank() != 1 {
        return Err(format!("ids must be 1-D, got {:?}", t.dims()));
    }
    let t = ids(t)?;
    match t.dtype() {
        DType::I64 => t
            .to_vec1::<i64>()
            .map_err(err)?
            .into_iter()
            .map(|i| u32::try_from(i).map_err(|_| format!("id {i} is not a row index")))
            .collect(),
        DType::U32 => t.to_vec1::<u32>().map_err(err),
        _ => t
            .to_dtype(DType::U32)
            .and_then(|t| t.to_vec1::<u32>())
            .map_err(err),
    }
}

/// Numerically stable sigmoid: one CPU kernel ([`kernels::sigmoid`]),
/// elsewhere `(tanh(x/2) + 1) / 2`.
pub fn sigmoid(x: &Tensor) -> OpResult {
    if let Some(y) = kernels::sigmoid(x) {
        return y.map_err(err);
    }
    (x * 0.5)
        .and_then(|h| h.tanh())
        .and_then(|t| t.affine(0.5, 0.5))
        .map_err(err)
}

/// Stable `ln(1 + exp(x)) = relu(x) + ln(1 + exp(-|x|))`.
pub fn softplus(x: &Tensor) -> OpResult {
    let tail = x
        .abs()
        .and_then(|a| a.neg())
        .and_then(|a| a.exp())
        .and_then(|e| e.affine(1.0, 1.0))
        .and_then(|e| e.log());
    tail.and_then(|t| x.relu()?.add(&t)).map_err(err)
}

fn mask_bool(mask: &Tensor, like: &Tensor) -> OpResult {
    let m = mask.broadcast_as(like.shape()).map_err(err)?;
    m.ne(0u32)
        .or_else(|_| m.to_dtype(DType::F32)?.ne(0f32))
        .map_err(err)
}

fn filled_like(x: &Tensor, v: f64) -> OpResult {
    Tensor::full(v, x.shape(), x.device())
        .and_then(|t| t.to_dtype(x.dtype()))
        .map_err(err)
}

/// Masked, max-shifted softmax pieces: `(shifted logits, exp weights)`.
fn softmax_parts(
    x: &Tensor,
    dim: usize,
    mask: Option<&Tensor>,
) -> Result<(Tensor, Tensor), String> {
    let (filled, keep) = match mask {
        Some(m) => {
            let b = mask_bool(m, x)?;
            let neg = filled_like(x, -1e9)?;
            let keep = b.to_dtype(x.dtype()).map_err(err)?;
            (b.where_cond(x, &neg).map_err(err)?, Some(keep))
        }
        None => (x.clone(), None),
    };
    let m = filled.max_keepdim(dim).map_err(err)?.detach();
    let shifted = filled.broadcast_sub(&m).map_err(err)?;
    let mut e = shifted.exp().map_err(err)?;
    if let Some(k) = keep {
        e = e.mul(&k).map_err(err)?;
    }
    Ok((shifted, e))
}

/// Apply op `code`.
pub fn apply(
    code: u32,
    inputs: &[Tensor],
    ints: &[i64],
    floats: &[f64],
    env: &mut OpEnv<'_>,
) -> OpResult {
    let dt = env.dtype;
    let x = inputs.first().ok_or("expects at least one input")?;
    let binary =
        |name: &'static str, f: fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>| -> OpResult {
            want(inputs, 2, 2)?;
            let a = as_float(&inputs[0], dt)?;
            let b = as_float(&inputs[1], dt)?;
            kernels::broadcast_binary(&a, &b, name, f).map_err(err)
        };
    match code {
        ADD => binary("broadcast_add", Tensor::add),
        SUB => binary("broadcast_sub", Tensor::sub),
        MUL => binary("broadcast_mul", Tensor::mul),
        DIV => binary("broadcast_div", Tensor::div),
        MAXIMUM => binary("broadcast_maximum", |a, b| a.maximum(b)),
        MINIMUM => binary("broadcast_minimum", |a, b| a.minimum(b)),
        MATMUL => {
            want(inputs, 2, 2)?;
            let (a, b) = (&inputs[0], &inputs[1]);
            if a.rank() < 2 || b.rank() < 2 {
                return Err(format!(
                    "needs rank >= 2, got {:?} x {:?}",
                    a.dims(),
                    b.dims()
                ));
            }
            let r = if a.rank() == b.rank() && a.dims()[..a.rank() - 2] == b.dims()[..b.rank() - 2]
            {
                a.matmul(b)
                    .or_else(|_| a.contiguous()?.matmul(&b.contiguous()?))
            } else {
                a.broadcast_matmul(b)
                    .or_else(|_| a.contiguous()?.broadcast_matmul(&b.contiguous()?))
            };
            r.map_err(err)
        }
        NEG => x.neg().map_err(err),
        EXP => x.exp().map_err(err),
        LOG => x.log().map_err(err),
        SQRT => x.sqrt().map_err(err),
        ABS => x.abs().map_err(err),
        POW => {
            let e = float(floats, 0)?;
            if e == 2.0 { x.sqr() } else { x.powf(e) }.map_err(err)
        }
        SIGMOID => sigmoid(x),
        TANH => x.tanh().map_err(err),
        RELU => x.relu().map_err(err),
        LEAKY_RELU => {
            let s = float(floats, 0)?;
            if let Some(y) = kernels::leaky_relu(x, s) {
                return y.map_err(err);
            }
            let neg = x
                .neg()
                .and_then(|n| n.relu())
                .and_then(|n| n * s)
                .map_err(err)?;
            x.relu().and_then(|p| p.sub(&neg)).map_err(err)
        }
        GELU => x.gelu().map_err(err),
        SOFTPLUS => softplus(x),
        SUM | MEAN | MAX | MIN => {
            let d = dim_of(x, int(ints, 0)?)?;
            let keep = ints.get(1).copied().unwrap_or(0) != 0;
            let drop = |t: candle_core::Result<Tensor>| if keep { t } else { t?.squeeze(d) };
            let r = match code {
                SUM => drop(kernels::sum_keepdim(x, d)),
                MEAN => drop(
                    kernels::sum_keepdim(x, d)
                        .and_then(|s| s.affine(1.0 / x.dims()[d] as f64, 0.0)),
                ),
                _ => match (code, keep) {
                    (MAX, true) => x.max_keepdim(d),
                    (MAX, false) => x.max(d),
                    (_, true) => x.min_keepdim(d),
                    (_, false) => x.min(d),
                },
            };
            r.map_err(err)
        }
        SOFTMAX => {
            want(inputs, 1, 2)?;
            let d = dim_of(x, int(ints, 0)?)?;
            let (_, e) = softmax_parts(x, d, inputs.get(1))?;
            let s = e
                .sum_keepdim(d)
                .and_then(|s| s.clamp(1e-30, f64::INFINITY))
                .map_err(err)?;
            e.broadcast_div(&s).map_err(err)
        }
        LOG_SOFTMAX => {
            want(inputs, 1, 2)?;
            let d = dim_of(x, int(ints, 0)?)?;
            let (shifted, e) = softmax_parts(x, d, inputs.get(1))?;
            let lse = e
                .sum_keepdim(d)
                .and_then(|s| s.clamp(1e-30, f64::INFINITY))
                .and_then(|s| s.log())
                .map_err(err)?;
            let out = shifted.broadcast_sub(&lse).map_err(err)?;
            match inputs.get(1) {
                // Masked entries read -1e9; without this a fully masked row
                // gave `0 - ln(1e-30) = +69` (a positive log-probability).
                Some(m) => mask_bool(m, x)?
                    .where_cond(&out, &filled_like(x, -1e9)?)
                    .map_err(err),
                None => Ok(out),
            }
        }
        BI_INTERACTION => {
            let fields: Vec<Tensor> = inputs
                .iter()
                .map(|x| as_float(x, dt))
                .collect::<Result<_, _>>()?;
            if fields.iter().any(|f| f.shape() != x.shape()) || x.rank() == 0 {
                return Err(format!(
                    "the fields must share one shape [.., d], got {:?}",
                    fields.iter().map(|f| f.dims().to_vec()).collect::<Vec<_>>()
                ));
            }
            // Nothing to differentiate (inference): pool the fields in place.
            if !fields.iter().any(Tensor::track_op) {
                if let Some(r) = kernels::bi_interaction_of_fields(&fields) {
                    return r.map_err(err);
                }
            }
            let at = x.rank() - 1;
            let stacked = Tensor::stack(&fields, at).map_err(err)?;
            match kernels::bi_interaction(&stacked) {
                Some(r) => r.map_err(err),
                // 0.5 * ((sum x)^2 - sum x^2) in candle's ops.
                None => stacked
                    .sum(at)
                    .and_then(|s| s.sqr())
                    .and_then(|s2| s2 - stacked.sqr()?.sum(at)?)
                    .and_then(|d| d * 0.5)
                    .map_err(err),
            }
        }
        DICE => {
            want(inputs, 2, 3)?;
            let s = as_float(x, dt)?;
            let alpha = as_float(&inputs[1], dt)?;
            let (n, h) = s
                .dims2()
                .map_err(|_| format!("s must be [N, H], got {:?}", s.dims()))?;
            if alpha.dims() != [h] {
                return Err(format!("alpha must be [{h}], got {:?}", alpha.dims()));
            }
            let w = match inputs.get(2) {
                Some(w) if w.dims() == [n, 1] => as_float(w, dt)?,
                Some(w) => return Err(format!("weight must be [{n}, 1], got {:?}", w.dims())),
                None => Tensor::ones((n, 1), dt, env.device).map_err(err)?,
            };
            let eps = float(floats, 0)?;
            if let Some(r) = kernels::dice(&s, &alpha, &w, eps) {
                return r.map_err(err);
            }
            // The same in candle's ops.
            let count = w
                .sum_all()
                .and_then(|c| c.clamp(1.0, f64::INFINITY))
                .map_err(err)?;
            let wsum = |t: &Tensor| t.broadcast_mul(&w)?.sum_keepdim(0)?.broadcast_div(&count);
            let mean = wsum(&s).map_err(err)?;
            let centred = s.broadcast_sub(&mean).map_err(err)?;
            let var = wsum(&centred.sqr().map_err(err)?).map_err(err)?;
            let z = (var + eps)
                .and_then(|v| v.powf(-0.5))
                .and_then(|r| centred.broadcast_mul(&r))
                .map_err(err)?;
            let p = sigmoid(&z)?;
            let gate = p
                .broadcast_mul(&alpha.affine(-1.0, 1.0).map_err(err)?)
                .and_then(|q| q.broadcast_add(&alpha))
                .map_err(err)?;
            (s * gate).map_err(err)
        }
        CONCAT => {
            let d = dim_of(x, int(ints, 0)?)?;
            Tensor::cat(inputs, d).map_err(err)
        }
        NARROW => {
            let d = dim_of(x, int(ints, 0)?)?;
            let (start, len) = (int(ints, 1)?, int(ints, 2)?);
            if start < 0 || len < 0 {
                return Err(format!("negative start/len ({start}, {len})"));
            }
            x.narrow(d, start as usize, len as usize).map_err(err)
        }
        RESHAPE => {
            let total = x.elem_count();
            let known: i64 = ints.iter().filter(|&&d| d != -1).product();
            let holes = ints.iter().filter(|&&d| d == -1).count();
            if holes > 1 || ints.iter().any(|&d| d < -1) {
                return Err(format!("bad target shape {ints:?}"));
            }
            let dims: Vec<usize> = ints
                .iter()
                .map(|&d| {
                    if d == -1 {
                        if known == 0 {
                            0
                        } else {
                            total / known as usize
                        }
                    } else {
                        d as usize
                    }
                })
                .collect();
            if dims.iter().product::<usize>() != total {
                return Err(format!("cannot reshape {:?} to {ints:?}", x.dims()));
            }
            x.reshape(dims).map_err(err)
        }
        TRANSPOSE => {
            let (a, b) = (dim_of(x, int(ints, 0)?)?, dim_of(x, int(ints, 1)?)?);
            x.transpose(a, b).map_err(err)
        }
        PERMUTE => {
            let dims: Result<Vec<usize>, String> = ints.iter().map(|&d| dim_of(x, d)).collect();
            x.permute(dims?).map_err(err)
        }
        UNSQUEEZE => {
            let r = x.rank() as i64;
            let d = int(ints, 0)?;
            let i = if d < 0 { r + 1 + d } else { d };
            if i < 0 || i > r {
                return Err(format!("unsqueeze dim {d} out of range for rank {r}"));
            }
            x.unsqueeze(i as usize).map_err(err)
        }
        SQUEEZE => {
            let d = dim_of(x, int(ints, 0)?)?;
            if x.dims()[d] != 1 {
                return Err(format!(
                    "cannot squeeze dim {d} of size {} (shape {:?})",
                    x.dims()[d],
                    x.dims()
                ));
            }
            x.squeeze(d).map_err(err)
        }
        BROADCAST_AS => {
            let dims: Vec<usize> = ints.iter().map(|&d| d.max(0) as usize).collect();
            kernels::expand(x, &Shape::from(dims)).map_err(err)
        }
        INDEX_SELECT => {
            want(inputs, 2, 2)?;
            let d = dim_of(x, int(ints, 0)?)?;
            let i = ids(&inputs[1])?;
            if i.rank() != 1 {
                return Err(format!("ids must be 1-D, got {:?}", i.dims()));
            }
            x.index_select(&i, d).map_err(err)
        }
        GATHER => {
            want(inputs, 2, 2)?;
            let d = dim_of(x, int(ints, 0)?)?;
            let i = ids(&inputs[1])?;
            x.contiguous().and_then(|x| x.gather(&i, d)).map_err(err)
        }
        INDEX_ADD => {
            want(inputs, 3, 3)?;
            let d = dim_of(x, int(ints, 0)?)?;
            let src = as_float(&inputs[2], dt)?;
            let i = ids(&inputs[1])?;
            x.contiguous()
                .and_then(|x| x.index_add(&i, &src.contiguous()?, d))
                .map_err(err)
        }
        EDGE_SUM => {
            want(inputs, 3, 3)?;
            let rows = int(ints, 0)?;
            let rows = usize::try_from(rows)
                .map_err(|_| format!("the number of target rows must be >= 0, got {rows}"))?;
            if x.rank() != 2 {
                return Err(format!("x must be [N, d], got {:?}", x.dims()));
            }
            let (sources, targets) = (id_list(&inputs[1])?, id_list(&inputs[2])?);
            if sources.len() != targets.len() {
                return Err(format!(
                    "sources ({}) and targets ({}) must list the same edges",
                    sources.len(),
                    targets.len()
                ));
            }
            let n = x.dims()[0];
            for (what, list, limit) in [("source", &sources, n), ("target", &targets, rows)] {
                if let Some(&i) = list.iter().find(|&&i| i as usize >= limit) {
                    return Err(format!("{what} id {i} out of range for {limit} rows"));
                }
            }
            let x = as_float(x, dt)?;
            if let Some(r) = kernels::edge_sum(&x, &sources, &targets, rows) {
                return r.map_err(err);
            }
            // index_select then index_add in candle's ops.
            let e = sources.len();
            let dev = x.device();
            let src = Tensor::from_vec(sources, e, dev).map_err(err)?;
            let tgt = Tensor::from_vec(targets, e, dev).map_err(err)?;
            Tensor::zeros((rows, x.dims()[1]), x.dtype(), dev)
                .and_then(|z| z.index_add(&tgt, &x.index_select(&src, 0)?, 0))
                .map_err(err)
        }
        WHERE => {
            want(inputs, 3, 3)?;
            let a = as_float(&inputs[1], dt)?;
            let b = as_float(&inputs[2], dt)?;
            let v = bcast(&[&inputs[0], &a, &b])?;
            let c = mask_bool(&v[0], &v[1])?;
            c.where_cond(&v[1], &v[2]).map_err(err)
        }
        MASKED_FILL => {
            want(inputs, 2, 2)?;
            let v = bcast(&[x, &inputs[1]])?;
            let c = mask_bool(&v[1], &v[0])?;
            c.where_cond(&filled_like(&v[0], float(floats, 0)?)?, &v[0])
                .map_err(err)
        }
        DROPOUT => {
            let p = float(floats, 0)?;
            if !env.training || p <= 0.0 {
                return Ok(x.clone());
            }
            if p >= 1.0 {
                return Err(format!("dropout rate must be < 1, got {p}"));
            }
            // One draw from the step's stream seeds the whole mask.
            let seed = env.rng.random::<u64>();
            if let Some(r) = kernels::dropout(x, p, seed) {
                return r.map_err(err);
            }
            let m = kernels::dropout_mask(x.elem_count(), p, seed);
            let mask = Tensor::from_vec(m, x.shape(), env.device)
                .and_then(|m| m.to_dtype(dt))
                .map_err(err)?;
            x.mul(&mask).map_err(err)
        }
        LAYER_NORM => {
            want(inputs, 1, 3)?;
            let eps = floats.first().copied().unwrap_or(1e-5);
            let mean = x.mean_keepdim(D::Minus1).map_err(err)?;
            let xc = x.broadcast_sub(&mean).map_err(err)?;
            let var = xc
                .sqr()
                .and_then(|v| v.mean_keepdim(D::Minus1))
                .map_err(err)?;
            let mut y = xc
                .broadcast_div(&(var + eps).and_then(|v| v.sqrt()).map_err(err)?)
                .map_err(err)?;
            if inputs.len() == 3 {
                y = y
                    .broadcast_mul(&inputs[1])
                    .and_then(|y| y.broadcast_add(&inputs[2]))
                    .map_err(err)?;
            } else if inputs.len() == 2 {
                return Err("layer_norm takes a gain and a bias together".into());
            }
            Ok(y)
        }
        DETACH => Ok(x.detach()),
        BCE_WITH_LOGITS => {
            want(inputs, 2, 3)?;
            let y = as_float(&inputs[1], dt)?;
            if y.dims() != x.dims() {
                return Err(format!(
                    "logits {:?} and labels {:?} differ in shape",
                    x.dims(),
                    y.dims()
                ));
            }
            // relu(x) - x*y + ln(1 + exp(-|x|))
            let tail = x
                .abs()
                .and_then(|a| a.neg()?.exp()?.affine(1.0, 1.0)?.log())
                .map_err(err)?;
            let l = x
                .relu()
                .and_then(|r| r.sub(&x.mul(&y)?)?.add(&tail))
                .map_err(err)?;
            weighted_mean(&l, inputs.get(2), dt)
        }
        MSE => {
            want(inputs, 2, 3)?;
            let t = as_float(&inputs[1], dt)?;
            if t.dims() != x.dims() {
                return Err(format!(
                    "predictions {:?} and targets {:?} differ in shape",
                    x.dims(),
                    t.dims()
                ));
            }
            let l = x.sub(&t).and_then(|d| d.sqr()).map_err(err)?;
            weighted_mean(&l, inputs.get(2), dt)
        }
        BPR => {
            want(inputs, 2, 2)?;
            let d = inputs[1].sub(x).map_err(err)?; // -(pos - neg)
            softplus(&d)?.mean_all().map_err(err)
        }
        CROSS_ENTROPY => {
            want(inputs, 2, 2)?;
            if x.rank() != 2 {
                return Err(format!("logits must be [N, C], got {:?}", x.dims()));
            }
            let (shifted, e) = softmax_parts(x, 1, None)?;
            let lse = e.sum_keepdim(1).and_then(|s| s.log()).map_err(err)?;
            let logp = shifted.broadcast_sub(&lse).map_err(err)?;
            let t = ids(&inputs[1])?.reshape(((), 1)).map_err(err)?;
            logp.gather(&t, 1)
                .and_then(|v| v.mean_all())
                .and_then(|v| v.neg())
                .map_err(err)
        }
        AFFINE => x.affine(float(floats, 0)?, float(floats, 1)?).map_err(err),
        SUM_ALL => x.sum_all().map_err(err),
        MEAN_ALL => x.mean_all().map_err(err),
        CLAMP => x.clamp(float(floats, 0)?, float(floats, 1)?).map_err(err),
        SQUARE => x.sqr().map_err(err),
        TO_FLOAT => as_float(x, dt),
        other => Err(format!(
            "op code {other} is not implemented by this host (op set v{OP_SET_VERSION})"
        )),
    }
}

fn weighted_mean(l: &Tensor, w: Option<&Tensor>, dt: DType) -> OpResult {
    match w {
        None => l.mean_all().map_err(err),
        Some(w) => {
            let w = as_float(w, dt)?;
            if w.dims() != l.dims() {
                return Err(format!(
                    "weights {:?} and losses {:?} differ in shape",
                    w.dims(),
                    l.dims()
                ));
            }
            l.mul(&w).and_then(|v| v.mean_all()).map_err(err)
        }
    }
}
