//! Disk-full forecast: a least-squares line through the recent usage samples of a mount; if it
//! keeps growing at that rate, when does it reach the available space? Pure, tested on series.

/// Hours until the filesystem is full at the recent growth rate, or `None` when it is not
/// growing or there is too little history (at least 3 points spanning an hour).
/// `points` are (time ms, used bytes), oldest first; `available` is what is left now.
pub fn hours_to_full(points: &[(i64, u64)], available: u64) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let (first, last) = (points.first()?.0, points.last()?.0);
    if last - first < 3_600_000 {
        return None;
    }
    let n = points.len() as f64;
    let xs: Vec<f64> = points
        .iter()
        .map(|(t, _)| (*t - first) as f64 / 3_600_000.0)
        .collect();
    let ys: Vec<f64> = points.iter().map(|(_, u)| *u as f64).collect();
    let mean_x = xs.iter().sum::<f64>() / n;
    let mean_y = ys.iter().sum::<f64>() / n;
    let cov: f64 = xs
        .iter()
        .zip(&ys)
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    let var: f64 = xs.iter().map(|x| (x - mean_x).powi(2)).sum();
    if var <= 0.0 {
        return None;
    }
    let bytes_per_hour = cov / var;
    (bytes_per_hour > 0.0).then(|| available as f64 / bytes_per_hour)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn steady_growth_gives_the_time_to_full() {
        // 1 GB per hour, 10 GB left: 10 hours.
        let points: Vec<(i64, u64)> = (0..6)
            .map(|i| (i * H, 50_000_000_000 + i as u64 * 1_000_000_000))
            .collect();
        let hours = hours_to_full(&points, 10_000_000_000).expect("growing");
        assert!((hours - 10.0).abs() < 1e-6, "{hours}");
    }

    #[test]
    fn flat_shrinking_or_short_histories_have_no_forecast() {
        let flat: Vec<(i64, u64)> = (0..6).map(|i| (i * H, 5_000)).collect();
        assert_eq!(hours_to_full(&flat, 100), None);
        let shrinking: Vec<(i64, u64)> = (0..6).map(|i| (i * H, 5_000 - i as u64 * 100)).collect();
        assert_eq!(hours_to_full(&shrinking, 100), None);
        assert_eq!(hours_to_full(&[(0, 1), (H, 2)], 100), None, "two points");
        assert_eq!(
            hours_to_full(&[(0, 1), (60_000, 2), (120_000, 3)], 100),
            None,
            "two minutes"
        );
    }
}
