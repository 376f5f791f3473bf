//! A blocked Bloom filter over (user, item) pairs: the negative sampler
//! asks it whether a sampled item may be in the user's training items
//! before searching the user's sorted list. "No" is certain and costs one
//! cache line; "maybe" (every seen pair, and about 5% of the others) falls
//! through to the list. With thousands of items per user the list search
//! misses the cache several times, so the filter saves most of the
//! sampler's memory waits.

/// The filter: one 64-bit word per pair picked by a hash, two bits of it set.
#[derive(Clone, Debug, Default)]
pub struct PairFilter {
    words: Vec<u64>,
    /// `words.len() - 1` (a power of two minus one).
    mask: u64,
}

/// Filter bits per pair: 8 gives a false-positive rate of about 5% with two
/// bits per pair in one word.
const BITS_PER_PAIR: usize = 8;

/// The pair's word index (low bits) and two bit positions (high bits),
/// from one 64-bit mix (the finalizer of MurmurHash3).
#[inline]
fn hash(user: u32, item: u32) -> u64 {
    let mut h = ((user as u64) << 32) | item as u64;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[inline]
fn bits(h: u64) -> u64 {
    (1 << ((h >> 52) & 63)) | (1 << ((h >> 58) & 63))
}

impl PairFilter {
    /// A filter holding `pairs` (`count` of them).
    pub fn new(count: usize, pairs: impl Iterator<Item = (u32, u32)>) -> PairFilter {
        let words = (count * BITS_PER_PAIR).div_ceil(64).next_power_of_two();
        let mut f = PairFilter {
            words: vec![0; words],
            mask: words as u64 - 1,
        };
        for (u, i) in pairs {
            let h = hash(u, i);
            f.words[(h & f.mask) as usize] |= bits(h);
        }
        f
    }

    /// False only when `(user, item)` is certainly not a pair of the filter.
    #[inline]
    pub fn may_contain(&self, user: u32, item: u32) -> bool {
        let h = hash(user, item);
        let b = bits(h);
        self.words[(h & self.mask) as usize] & b == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_every_pair_and_rejects_most_others() {
        let pairs: Vec<(u32, u32)> = (0..20_000u32).map(|k| (k % 97, k * 31 % 50_000)).collect();
        let f = PairFilter::new(pairs.len(), pairs.iter().copied());
        assert_eq!(f.words.len(), (20_000usize * 8 / 64).next_power_of_two());
        assert!(pairs.iter().all(|&(u, i)| f.may_contain(u, i)));
        let set: std::collections::HashSet<(u32, u32)> = pairs.iter().copied().collect();
        let others: Vec<(u32, u32)> = (0..97u32)
            .flat_map(|u| (0..1000u32).map(move |i| (u, 50_000 + i * 7 + u)))
            .filter(|p| !set.contains(p))
            .collect();
        let false_positives = others.iter().filter(|&&(u, i)| f.may_contain(u, i)).count();
        let rate = false_positives as f64 / others.len() as f64;
        // Two bits in one word at 8 bits per pair (here 8 to 13): at most
        // about (1 - e^(-2/8))^2 = 4.9%.
        assert!(rate > 0.0 && rate < 0.06, "false-positive rate {rate}");
        // An empty filter contains nothing.
        let empty = PairFilter::new(0, std::iter::empty());
        assert!(!empty.may_contain(0, 0));
    }
}
