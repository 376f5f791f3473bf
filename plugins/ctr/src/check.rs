//! Parameter checks shared by the backbones' constructors.

use causalrec_sdk::{Params, Result};

/// Check a list of layer sizes: at least `min_len` entries, none zero.
pub fn check_sizes(name: &str, sizes: &[usize], min_len: usize) -> Result<()> {
    if sizes.len() < min_len {
        return Err(format!(
            "parameter '{name}' needs at least {min_len} layer size(s), got {sizes:?}"
        ));
    }
    if let Some(i) = sizes.iter().position(|&s| s == 0) {
        return Err(format!(
            "parameter '{name}': entry {i} is 0 in {sizes:?} (every layer needs at least one unit)"
        ));
    }
    Ok(())
}

/// The layer sizes of parameter `name` (a list such as `[64, 32]`), checked.
pub fn layer_sizes(p: &Params, name: &str, min_len: usize) -> Result<Vec<usize>> {
    let sizes = p.usize_list(name)?;
    check_sizes(name, &sizes, min_len)?;
    Ok(sizes)
}

/// The standard deviation of parameter `name`: finite and not negative.
pub fn std_dev(p: &Params, name: &str) -> Result<f64> {
    let s = p.f64(name)?;
    if !s.is_finite() || s < 0.0 {
        return Err(format!(
            "parameter '{name}' must be a finite standard deviation >= 0, got {s}"
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::check_sizes;

    #[test]
    fn sizes_need_length_and_units() {
        assert!(check_sizes("layers", &[64, 32], 2).is_ok());
        assert!(check_sizes("layers", &[], 0).is_ok());
        let e = check_sizes("layers", &[64], 2).unwrap_err();
        assert!(e.contains("'layers' needs at least 2"), "{e}");
        let e = check_sizes("deep_layers", &[64, 0], 1).unwrap_err();
        assert!(e.contains("'deep_layers': entry 1 is 0"), "{e}");
    }
}
