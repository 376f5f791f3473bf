//! Statistics for recipes: the two-sided paired Student t-test (DecRS
//! reports significance of its gains over the best baseline), with the t
//! distribution's tail from the regularised incomplete beta function
//! (continued fraction, Numerical Recipes' `betacf`; `statrs` is not in the
//! offline registry); the sample distance correlation of Székely, Rizzo and
//! Bakirov (2007) between paired vectors (IV4Rec+ section 6.4.1: item
//! embeddings against their query embeddings).

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
}
