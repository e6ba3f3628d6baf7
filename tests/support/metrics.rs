//! Reading the daemon's Prometheus text in tests.

/// Sum of the samples of `name` whose labels include every pair of `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, lbl) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let wanted = labels.iter().all(|(k, v)| {
                let pair = format!("{k}=\"{v}\"");
                lbl.split(',').any(|p| p == pair)
            });
            (n == name && wanted).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

impl super::Stack {
    /// The daemon's `/metrics` text.
    pub fn metrics(&self) -> String {
        let (status, text) = self.daemon.get("/metrics");
        assert_eq!(status, reqwest::StatusCode::OK, "{text}");
        text
    }
}
