//! Linux `/proc` figures in kB (`Key:   1234 kB` lines of `/proc/meminfo`,
//! `/proc/self/status`); `None` where the file or the key is missing (other
//! systems).

/// The value of `key` (without its colon) in the `/proc` file `path`, in kB.
pub fn kib(path: &str, key: &str) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_a_field_and_misses_what_is_not_there() {
        if cfg!(target_os = "linux") {
            let total = super::kib("/proc/meminfo", "MemTotal").expect("MemTotal");
            let avail = super::kib("/proc/meminfo", "MemAvailable").expect("MemAvailable");
            assert!(avail > 0 && avail <= total, "{avail} of {total}");
            // A key that is a prefix of another is not confused with it.
            assert_eq!(super::kib("/proc/meminfo", "MemAvail"), None);
        }
        assert_eq!(super::kib("/proc/meminfo", "NoSuchKey"), None);
        assert_eq!(super::kib("/no/such/file", "MemTotal"), None);
    }
}
