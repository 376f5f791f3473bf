//! Wall time per phase of training steps (`host bench train --phases`):
//! forward, backward, the dense update and each table's row update, timed
//! inside the step, so that where a step's time goes can be read without a
//! profiler (and compared between table sizes or machines).

use std::collections::BTreeMap;
use std::time::Instant;

/// Per phase, its seconds in each finished step.
#[derive(Clone, Debug, Default)]
pub struct PhaseTimes {
    /// The step being timed: seconds per phase so far.
    current: BTreeMap<String, f64>,
    /// Finished steps: per phase, one entry per step (0 where a step lacked it).
    steps: BTreeMap<String, Vec<f64>>,
    finished: usize,
}

impl PhaseTimes {
    /// Add the time since `since` to `phase` of the current step.
    pub fn add(&mut self, phase: &str, since: Instant) {
        let secs = since.elapsed().as_secs_f64();
        match self.current.get_mut(phase) {
            Some(s) => *s += secs,
            None => {
                self.current.insert(phase.to_string(), secs);
            }
        }
    }

    /// Close the current step.
    pub fn end_step(&mut self) {
        for (phase, secs) in std::mem::take(&mut self.current) {
            let per_step = self.steps.entry(phase).or_default();
            per_step.resize(self.finished, 0.0);
            per_step.push(secs);
        }
        self.finished += 1;
        for per_step in self.steps.values_mut() {
            per_step.resize(self.finished, 0.0);
        }
    }

    /// Finished steps.
    pub fn steps(&self) -> usize {
        self.finished
    }

    /// Per phase, the median over the finished steps after the first
    /// `skip` (warm-up), in milliseconds; none when no step is left.
    pub fn median_ms(&self, skip: usize) -> BTreeMap<String, f64> {
        if skip >= self.finished {
            return BTreeMap::new();
        }
        self.steps
            .iter()
            .map(|(phase, secs)| {
                let mut s = secs[skip..].to_vec();
                s.sort_by(f64::total_cmp);
                let n = s.len();
                let median = if n % 2 == 1 {
                    s[n / 2]
                } else {
                    (s[n / 2 - 1] + s[n / 2]) / 2.0
                };
                (phase.clone(), 1e3 * median)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_per_phase_count_missing_phases_as_zero() {
        let mut p = PhaseTimes::default();
        let secs = |p: &mut PhaseTimes, phase: &str, s: f64| {
            *p.current.entry(phase.to_string()).or_default() += s;
        };
        // Step 1: forward 1 ms, update 4 ms (in two parts).
        secs(&mut p, "forward", 0.001);
        secs(&mut p, "update", 0.003);
        secs(&mut p, "update", 0.001);
        p.end_step();
        // Step 2: forward 3 ms, no update; step 3: forward 2 ms, update 2 ms.
        secs(&mut p, "forward", 0.003);
        p.end_step();
        secs(&mut p, "forward", 0.002);
        secs(&mut p, "update", 0.002);
        p.end_step();
        let m = p.median_ms(0);
        assert_eq!(p.steps(), 3);
        assert!((m["forward"] - 2.0).abs() < 1e-9, "{m:?}");
        // Update per step: 4, 0, 2 -> median 2.
        assert!((m["update"] - 2.0).abs() < 1e-9, "{m:?}");
        // A phase first seen late counts the earlier steps as zero.
        secs(&mut p, "late", 0.005);
        p.end_step();
        let m = p.median_ms(0);
        // forward: 1, 3, 2, 0 -> (1 + 2) / 2.
        assert!((m["forward"] - 1.5).abs() < 1e-9, "{m:?}");
        assert!((m["late"] - 0.0).abs() < 1e-9, "{m:?}");
        // After skipping the first two steps: forward 2, 0; late 0, 5.
        let m = p.median_ms(2);
        assert!((m["forward"] - 1.0).abs() < 1e-9, "{m:?}");
        assert!((m["late"] - 2.5).abs() < 1e-9, "{m:?}");
        assert!(p.median_ms(4).is_empty());
        p.add("x", Instant::now());
        assert!(p.current["x"] >= 0.0);
    }
}
