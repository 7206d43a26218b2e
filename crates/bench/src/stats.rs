//! Summaries of latency samples: count, mean and nearest-rank percentiles.
//!
//! Samples are kept whole (microseconds as `u32`) and sorted once: even the
//! load phase collects only a few hundred thousand, so a histogram would add
//! code without saving anything that matters.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A distribution of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Summary {
    pub count: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// Summarizes samples in microseconds; all zero when there are none.
    pub fn from_micros(mut samples: Vec<u32>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let total: u64 = samples.iter().map(|&us| u64::from(us)).sum();
        let count = samples.len();
        Self {
            count,
            mean_ms: total as f64 / count as f64 / 1000.0,
            p50_ms: f64::from(percentile(&samples, 0.50)) / 1000.0,
            p99_ms: f64::from(percentile(&samples, 0.99)) / 1000.0,
            max_ms: f64::from(samples[count - 1]) / 1000.0,
        }
    }

    pub fn from_durations(samples: &[Duration]) -> Self {
        Self::from_micros(samples.iter().map(|&d| micros(d)).collect())
    }

    /// Summarizes samples in whole milliseconds (the server's timestamps).
    pub fn from_millis(samples: &[u64]) -> Self {
        Self::from_micros(
            samples
                .iter()
                .map(|&ms| u32::try_from(ms.saturating_mul(1000)).unwrap_or(u32::MAX))
                .collect(),
        )
    }
}

/// A duration in microseconds, saturating (at 71 minutes, far past any deadline here).
pub fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

/// Nearest-rank percentile of sorted, non-empty samples.
fn percentile(sorted: &[u32], p: f64) -> u32 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let samples: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        let summary = Summary::from_micros(samples);
        assert_eq!(summary.count, 100);
        assert!((summary.p50_ms - 50.0).abs() < 1e-9);
        assert!((summary.p99_ms - 99.0).abs() < 1e-9);
        assert!((summary.max_ms - 100.0).abs() < 1e-9);
        assert!((summary.mean_ms - 50.5).abs() < 1e-9);
    }

    #[test]
    fn empty_is_zero() {
        assert_eq!(Summary::from_micros(Vec::new()).count, 0);
    }
}
