//! Statistics for recipes: the two-sided paired Student t-test (DecRS
//! reports significance of its gains over the best baseline), with the t
//! distribution's tail from the regularised incomplete beta function
//! (continued fraction, Numerical Recipes' `betacf`; `statrs` is not in the
//! offline registry); the sample distance correlation of Székely, Rizzo and
//! Bakirov (2007) between paired vectors (IV4Rec+ section 6.4.1: item
//! embeddings against their query embeddings); principal component
//! analysis onto two axes (CP2Rec Figure 4: proxy vs purified embeddings),
//! with the covariance matrix diagonalised by cyclic Jacobi rotations.

/// `ln Gamma(x)` for `x > 0` (Lanczos, g = 7, 9 terms; ~1e-15 relative).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Gamma(x) Gamma(1 - x) = pi / sin(pi x).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, &c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The continued fraction of the incomplete beta (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// The regularised incomplete beta `I_x(a, b)` for `a, b > 0`, `x` in [0, 1].
pub fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Two-sided p-value of Student's t with `df` degrees of freedom:
/// `P(|T| >= |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2)`.
pub fn student_t_two_sided(t: f64, df: f64) -> f64 {
    if t.is_nan() {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    inc_beta(df / 2.0, 0.5, df / (df + t * t))
}

/// The result of a paired t-test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TTest {
    /// `mean(a - b) / (sd(a - b) / sqrt(n))`.
    pub t: f64,
    /// Two-sided p-value with `n - 1` degrees of freedom.
    pub p: f64,
    pub mean_diff: f64,
    pub n: usize,
}

/// The two-sided paired Student t-test of `a` against `b` (same length,
/// at least 2, finite). Identical differences give `t = 0, p = 1` when they
/// are all zero and `t = +-inf, p = 0` otherwise.
pub fn paired_t_test(a: &[f64], b: &[f64]) -> Result<TTest, String> {
    if a.len() != b.len() {
        return Err(format!(
            "paired_t_test needs arrays of the same length, got {} and {}",
            a.len(),
            b.len()
        ));
    }
    let n = a.len();
    if n < 2 {
        return Err(format!("paired_t_test needs at least 2 pairs, got {n}"));
    }
    if let Some(x) = a.iter().chain(b).find(|x| !x.is_finite()) {
        return Err(format!("paired_t_test needs finite numbers, got {x}"));
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let nf = n as f64;
    let mean = d.iter().sum::<f64>() / nf;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (nf - 1.0);
    let (t, p) = if var == 0.0 {
        if mean == 0.0 {
            (0.0, 1.0)
        } else {
            (f64::INFINITY.copysign(mean), 0.0)
        }
    } else {
        let t = mean / (var / nf).sqrt();
        (t, student_t_two_sided(t, nf - 1.0))
    };
    Ok(TTest {
        t,
        p,
        mean_diff: mean,
        n,
    })
}

/// The most rows [`distance_correlation`] takes: its time grows with the
/// square of the rows (IV4Rec+ samples 10,000 pairs and averages repeats).
pub const DCOR_MAX_ROWS: usize = 10_000;

/// Rows of one side of [`distance_correlation`], checked: at least one
/// column, the same number in every row, finite values.
fn check_vectors(v: &[Vec<f64>], what: &str) -> Result<usize, String> {
    let dim = v.first().map_or(0, Vec::len);
    if dim == 0 {
        return Err(format!("dcor: {what}[0] is an empty vector"));
    }
    for (k, row) in v.iter().enumerate() {
        if row.len() != dim {
            return Err(format!(
                "dcor: {what}[{k}] has {} values, {what}[0] has {dim}; every vector of {what} needs the same length",
                row.len()
            ));
        }
        if let Some(x) = row.iter().find(|x| !x.is_finite()) {
            return Err(format!(
                "dcor: {what}[{k}] holds {x}; values must be finite"
            ));
        }
    }
    Ok(dim)
}

fn euclidean(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

/// The sample distance correlation of paired vectors `xs[k]`, `ys[k]`
/// (Székely et al. 2007, the V-statistic): with `a_ij = |x_i - x_j|`
/// double-centred to `A_ij = a_ij - a_i. - a_.j + a_..` (and `B` from the
/// `y`s), `dCov^2(X, Y) = mean(A * B)` and `dCor = sqrt(dCov^2(X, Y) /
/// sqrt(dCov^2(X, X) dCov^2(Y, Y)))`, in [0, 1]; 0 when either side is
/// constant. Invariant to translating, rotating and scaling either side.
///
/// Two passes over the pairs (row means, then the centred products) keep
/// memory at O(n); time is O(n^2 (p + q)), hence [`DCOR_MAX_ROWS`].
pub fn distance_correlation(xs: &[Vec<f64>], ys: &[Vec<f64>]) -> Result<f64, String> {
    let n = xs.len();
    if ys.len() != n {
        return Err(format!(
            "dcor needs as many x vectors as y vectors, got {n} and {}",
            ys.len()
        ));
    }
    if n < 2 {
        return Err(format!("dcor needs at least 2 pairs, got {n}"));
    }
    if n > DCOR_MAX_ROWS {
        return Err(format!(
            "dcor takes at most {DCOR_MAX_ROWS} pairs (its time grows with the square of the pairs), got {n}; sample rows and average over repeats"
        ));
    }
    check_vectors(xs, "xs")?;
    check_vectors(ys, "ys")?;
    // Pass 1: row means of both distance matrices (symmetric, zero diagonal).
    let (mut ma, mut mb) = (vec![0.0; n], vec![0.0; n]);
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (euclidean(&xs[i], &xs[j]), euclidean(&ys[i], &ys[j]));
            ma[i] += a;
            ma[j] += a;
            mb[i] += b;
            mb[j] += b;
        }
    }
    let nf = n as f64;
    for m in ma.iter_mut().chain(mb.iter_mut()) {
        *m /= nf;
    }
    let (ga, gb) = (ma.iter().sum::<f64>() / nf, mb.iter().sum::<f64>() / nf);
    // Pass 2: sums of the double-centred products; off-diagonal terms twice.
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (a, b) = (ga - 2.0 * ma[i], gb - 2.0 * mb[i]);
        ab += a * b;
        aa += a * a;
        bb += b * b;
        for j in i + 1..n {
            let a = euclidean(&xs[i], &xs[j]) - ma[i] - ma[j] + ga;
            let b = euclidean(&ys[i], &ys[j]) - mb[i] - mb[j] + gb;
            ab += 2.0 * a * b;
            aa += 2.0 * a * a;
            bb += 2.0 * b * b;
        }
    }
    let n2 = nf * nf;
    let (cov, var_x, var_y) = ((ab / n2).max(0.0), aa / n2, bb / n2);
    if var_x <= 0.0 || var_y <= 0.0 {
        return Ok(0.0);
    }
    Ok((cov / (var_x * var_y).sqrt()).sqrt().min(1.0))
}

/// Eigenvalues and eigenvectors (columns of the returned row-major matrix)
/// of a symmetric `k x k` matrix by cyclic Jacobi rotations.
pub fn symmetric_eigen(mut a: Vec<f64>, k: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; k * k];
    for i in 0..k {
        v[i * k + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..k)
            .flat_map(|i| (0..k).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * k + j] * a[i * k + j])
            .sum();
        if off < 1e-22 {
            break;
        }
        for p in 0..k {
            for q in p + 1..k {
                let apq = a[p * k + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * k + q] - a[p * k + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let sn = t * c;
                for r in 0..k {
                    let (arp, arq) = (a[r * k + p], a[r * k + q]);
                    a[r * k + p] = c * arp - sn * arq;
                    a[r * k + q] = sn * arp + c * arq;
                }
                for r in 0..k {
                    let (apr, aqr) = (a[p * k + r], a[q * k + r]);
                    a[p * k + r] = c * apr - sn * aqr;
                    a[q * k + r] = sn * apr + c * aqr;
                }
                for r in 0..k {
                    let (vrp, vrq) = (v[r * k + p], v[r * k + q]);
                    v[r * k + p] = c * vrp - sn * vrq;
                    v[r * k + q] = sn * vrp + c * vrq;
                }
            }
        }
    }
    ((0..k).map(|i| a[i * k + i]).collect(), v)
}

/// A two-axis principal component projection.
#[derive(Clone, Debug, PartialEq)]
pub struct Pca2 {
    /// Every point's coordinates on the first two components.
    pub points: Vec<[f64; 2]>,
    /// The share of the total variance each of the two axes explains.
    pub explained: [f64; 2],
}

/// Project equally long vectors onto their first two principal components
/// (centred, covariance eigenvectors; each axis's sign fixed so that its
/// largest-magnitude loading is positive).
pub fn pca_2d(xs: &[Vec<f64>]) -> Result<Pca2, String> {
    let n = xs.len();
    if n < 3 {
        return Err(format!("pca: needs at least 3 points, got {n}"));
    }
    let k = xs[0].len();
    if k < 2 {
        return Err(format!(
            "pca: the vectors need at least 2 dimensions, got {k}"
        ));
    }
    if let Some((r, x)) = xs.iter().enumerate().find(|(_, x)| x.len() != k) {
        return Err(format!(
            "pca: point {r} has {} dimensions, point 0 has {k}",
            x.len()
        ));
    }
    if xs.iter().flatten().any(|x| !x.is_finite()) {
        return Err("pca: the points hold a non-finite value".into());
    }
    let mean: Vec<f64> = (0..k)
        .map(|j| xs.iter().map(|x| x[j]).sum::<f64>() / n as f64)
        .collect();
    let mut cov = vec![0.0; k * k];
    for x in xs {
        for i in 0..k {
            let di = x[i] - mean[i];
            for j in i..k {
                cov[i * k + j] += di * (x[j] - mean[j]);
            }
        }
    }
    for i in 0..k {
        for j in i..k {
            cov[i * k + j] /= (n - 1) as f64;
            cov[j * k + i] = cov[i * k + j];
        }
    }
    let (vals, vecs) = symmetric_eigen(cov, k);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| vals[b].total_cmp(&vals[a]));
    let total: f64 = vals.iter().map(|v| v.max(0.0)).sum();
    let axis = |c: usize| -> Vec<f64> {
        let col: Vec<f64> = (0..k).map(|r| vecs[r * k + c]).collect();
        let big = col
            .iter()
            .copied()
            .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        col.iter()
            .map(|x| if big < 0.0 { -x } else { *x })
            .collect()
    };
    let (a1, a2) = (axis(order[0]), axis(order[1]));
    let dot = |x: &[f64], a: &[f64]| -> f64 {
        x.iter()
            .zip(&mean)
            .zip(a)
            .map(|((x, m), a)| (x - m) * a)
            .sum()
    };
    Ok(Pca2 {
        points: xs.iter().map(|x| [dot(x, &a1), dot(x, &a2)]).collect(),
        explained: if total > 0.0 {
            [
                vals[order[0]].max(0.0) / total,
                vals[order[1]].max(0.0) / total,
            ]
        } else {
            [0.0, 0.0]
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_known_values() {
        assert!(ln_gamma(1.0).abs() < 1e-13);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        // Gamma(1/2) = sqrt(pi)
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn inc_beta_closed_forms() {
        // I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(1, b) = 1 - (1 - x)^b
        assert!((inc_beta(1.0, 1.0, 0.3) - 0.3).abs() < 1e-12);
        assert!((inc_beta(3.0, 1.0, 0.6) - 0.216).abs() < 1e-12);
        assert!((inc_beta(1.0, 4.0, 0.2) - (1.0 - 0.8f64.powi(4))).abs() < 1e-12);
        assert_eq!(inc_beta(2.0, 3.0, 0.0), 0.0);
        assert_eq!(inc_beta(2.0, 3.0, 1.0), 1.0);
    }

    #[test]
    fn t_table_values() {
        // Two-sided critical values of Student's t, df = 4.
        assert!((student_t_two_sided(2.776, 4.0) - 0.05).abs() < 1e-4);
        assert!((student_t_two_sided(2.132, 4.0) - 0.10).abs() < 1e-4);
        assert!((student_t_two_sided(4.604, 4.0) - 0.01).abs() < 1e-4);
        // df = 1 (Cauchy): p = 1 - (2 / pi) atan|t|; df = 2: p = 1 - |t| / sqrt(t^2 + 2)
        let c = 1.0 - 2.0 / std::f64::consts::PI * 3f64.atan();
        assert!((student_t_two_sided(3.0, 1.0) - c).abs() < 1e-12);
        assert!((student_t_two_sided(-1.5, 2.0) - (1.0 - 1.5 / 4.25f64.sqrt())).abs() < 1e-12);
        assert!((student_t_two_sided(0.0, 7.0) - 1.0).abs() < 1e-12);
        // large df approaches the normal: |z| = 1.96 -> 0.05
        assert!((student_t_two_sided(1.959_964, 1e6) - 0.05).abs() < 1e-5);
    }

    #[test]
    fn paired_t_test_hand_computed() {
        // differences 1, 2, 3: mean 2, sd 1, t = 2 / (1 / sqrt 3) = 3.4641,
        // df = 2: p = 1 - t / sqrt(t^2 + 2) = 1 - 3.4641 / sqrt 14 = 0.074180
        let r = paired_t_test(&[2.0, 4.0, 6.0], &[1.0, 2.0, 3.0]).unwrap();
        assert!((r.t - 12f64.sqrt()).abs() < 1e-12);
        assert!((r.p - (1.0 - 12f64.sqrt() / 14f64.sqrt())).abs() < 1e-12);
        assert!((r.p - 0.074180).abs() < 1e-6);
        assert_eq!((r.mean_diff, r.n), (2.0, 3));
        // reversed: t flips sign, p is the same
        let s = paired_t_test(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).unwrap();
        assert!((s.t + r.t).abs() < 1e-12 && (s.p - r.p).abs() < 1e-12);
        // constant differences
        let z = paired_t_test(&[1.0, 2.0], &[1.0, 2.0]).unwrap();
        assert_eq!((z.t, z.p), (0.0, 1.0));
        let z = paired_t_test(&[2.0, 3.0], &[1.0, 2.0]).unwrap();
        assert_eq!((z.t, z.p), (f64::INFINITY, 0.0));
    }

    #[test]
    fn paired_t_test_errors() {
        assert!(paired_t_test(&[1.0], &[2.0])
            .unwrap_err()
            .contains("at least 2 pairs"));
        assert!(paired_t_test(&[1.0, 2.0], &[2.0])
            .unwrap_err()
            .contains("same length, got 2 and 1"));
        assert!(paired_t_test(&[1.0, f64::NAN], &[2.0, 1.0])
            .unwrap_err()
            .contains("finite"));
    }
    fn col(v: &[f64]) -> Vec<Vec<f64>> {
        v.iter().map(|&x| vec![x]).collect()
    }

    #[test]
    fn distance_correlation_hand_computed() {
        // x = 0, 1, 2, 3: a_ij = |i - j|, row means 1.5, 1, 1, 1.5, grand
        // mean 1.25; A = [[-1.75, -.25, .75, 1.25], [-.25, -.75, .25, .75],
        // [.75, .25, -.75, -.25], [1.25, .75, -.25, -1.75]], mean(A^2) = 13/16.
        // y = 0, 0, 1, 1: row means .5, grand mean .5, B = b - .5 = +-.5,
        // mean(B^2) = 1/4. mean(A B) = (2 + 1 + 1 + 2) / 16 = 3/8.
        // dCor^2 = (3/8) / sqrt(13/64) = 3 / sqrt(13) -> dCor = 0.912168
        let r =
            distance_correlation(&col(&[0.0, 1.0, 2.0, 3.0]), &col(&[0.0, 0.0, 1.0, 1.0])).unwrap();
        assert!((r - (3.0 / 13f64.sqrt()).sqrt()).abs() < 1e-12, "{r}");
        assert!((r - 0.912168).abs() < 1e-6);
        // Identical (and linearly related) vectors: 1.
        let x = vec![
            vec![0.1, 2.0],
            vec![1.5, -1.0],
            vec![0.3, 0.3],
            vec![4.0, 1.0],
        ];
        assert!((distance_correlation(&x, &x).unwrap() - 1.0).abs() < 1e-12);
        let y: Vec<Vec<f64>> = col(&[1.0, 2.0, 3.0, 4.0]);
        let y3: Vec<Vec<f64>> = col(&[-5.0, -8.0, -11.0, -14.0]);
        assert!((distance_correlation(&y, &y3).unwrap() - 1.0).abs() < 1e-12);
        // A constant side has distance variance 0: dCor 0.
        assert_eq!(distance_correlation(&x, &col(&[2.0; 4])).unwrap(), 0.0);
    }

    #[test]
    fn distance_correlation_invariances_and_independence() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let n = 1000;
        let x: Vec<Vec<f64>> = (0..n)
            .map(|_| vec![rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)])
            .collect();
        // y depends on x non-linearly (no linear correlation with x[0]).
        let y: Vec<Vec<f64>> = x
            .iter()
            .map(|v| vec![v[0] * v[0] + 0.1 * rng.random_range(-1.0..1.0)])
            .collect();
        let r = distance_correlation(&x, &y).unwrap();
        assert!(r > 0.3 && r <= 1.0, "{r}");
        // Scaling, translating and rotating either side leave dCor as it is.
        let (c, s) = (0.6, 0.8);
        let x2: Vec<Vec<f64>> = x
            .iter()
            .map(|v| {
                vec![
                    3.0 * (c * v[0] - s * v[1]) + 7.0,
                    3.0 * (s * v[0] + c * v[1]) - 2.0,
                ]
            })
            .collect();
        let y2: Vec<Vec<f64>> = y.iter().map(|v| vec![-0.01 * v[0] + 100.0]).collect();
        let r2 = distance_correlation(&x2, &y2).unwrap();
        assert!((r - r2).abs() < 1e-9, "{r} vs {r2}");
        // Symmetric.
        assert!((distance_correlation(&y, &x).unwrap() - r).abs() < 1e-12);
        // Independent samples: small (the V-statistic is biased upwards, ~n^-1/2).
        let z: Vec<Vec<f64>> = (0..n)
            .map(|_| {
                vec![
                    rng.random_range(-1.0..1.0),
                    rng.random_range(-1.0..1.0),
                    rng.random_range(-1.0..1.0),
                ]
            })
            .collect();
        let r0 = distance_correlation(&x, &z).unwrap();
        assert!(r0 < 0.15, "{r0}");
    }

    #[test]
    fn distance_correlation_errors() {
        let x = col(&[1.0, 2.0, 3.0]);
        for (xs, ys, want) in [
            (
                x.clone(),
                col(&[1.0, 2.0]),
                "as many x vectors as y vectors, got 3 and 2",
            ),
            (col(&[1.0]), col(&[1.0]), "at least 2 pairs, got 1"),
            (
                x.clone(),
                vec![vec![1.0], vec![1.0, 2.0], vec![3.0]],
                "ys[1] has 2 values, ys[0] has 1",
            ),
            (vec![vec![]; 3], x.clone(), "xs[0] is an empty vector"),
            (x.clone(), col(&[1.0, f64::NAN, 2.0]), "ys[1] holds NaN"),
            (
                col(&vec![0.0; DCOR_MAX_ROWS + 1]),
                col(&vec![0.0; DCOR_MAX_ROWS + 1]),
                "at most 10000 pairs",
            ),
        ] {
            let e = distance_correlation(&xs, &ys).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn jacobi_eigen_of_a_hand_matrix() {
        // [[2, 1], [1, 2]]: eigenvalues 3 and 1, eigenvectors (1, 1) / sqrt 2, (1, -1) / sqrt 2
        let (vals, vecs) = symmetric_eigen(vec![2.0, 1.0, 1.0, 2.0], 2);
        let mut v = vals.clone();
        v.sort_by(f64::total_cmp);
        assert!(
            (v[0] - 1.0).abs() < 1e-12 && (v[1] - 3.0).abs() < 1e-12,
            "{vals:?}"
        );
        let big = if vals[0] > vals[1] { 0 } else { 1 };
        let (x, y) = (vecs[big], vecs[2 + big]);
        assert!(
            (x.abs() - 0.5f64.sqrt()).abs() < 1e-12 && (x - y).abs() < 1e-12,
            "{vecs:?}"
        );
    }

    #[test]
    fn pca_finds_the_spread_axes() {
        // Points on the line y = 2x in the (x, y) plane, plus a small
        // orthogonal wobble in z: the first axis is (1, 2, 0) / sqrt 5.
        // Each t twice, with wobble +0.1 and -0.1 (uncorrelated with t).
        let t_of = |i: usize| (i / 2) as f64 - 4.5;
        let xs: Vec<Vec<f64>> = (0..20)
            .map(|i| {
                let t = t_of(i);
                vec![t, 2.0 * t, if i % 2 == 0 { 0.1 } else { -0.1 }]
            })
            .collect();
        let p = pca_2d(&xs).unwrap();
        // projections on the first axis: t * sqrt(5)
        for (i, pt) in p.points.iter().enumerate() {
            let t = t_of(i);
            assert!((pt[0] - t * 5f64.sqrt()).abs() < 1e-9, "{i}: {pt:?}");
            assert!((pt[1].abs() - 0.1).abs() < 1e-9, "{i}: {pt:?}");
        }
        // variances: 5 * var(t) and 0.01 (n / (n - 1)), shares of their sum
        let vt: f64 = (0..20).map(|i| t_of(i).powi(2)).sum::<f64>() / 19.0;
        let (v1, v2) = (5.0 * vt, 0.01 * 20.0 / 19.0);
        assert!(
            (p.explained[0] - v1 / (v1 + v2)).abs() < 1e-9,
            "{:?}",
            p.explained
        );
        assert!(
            (p.explained[1] - v2 / (v1 + v2)).abs() < 1e-9,
            "{:?}",
            p.explained
        );
        assert!(pca_2d(&xs[..2]).unwrap_err().contains("at least 3 points"));
        let ragged = vec![vec![1.0, 2.0], vec![1.0], vec![0.0, 0.0]];
        assert!(pca_2d(&ragged).unwrap_err().contains("point 1 has 1"));
    }
}
