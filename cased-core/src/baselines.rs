//! The baselines a session judges against, chosen without being told, per metric, in this
//! order:
//!
//! 1. **provided**: values or counts the caller handed to the monitor;
//! 2. **control**: the stable track read live from the same source (canary vs control,
//!    Kayenta-style) — once control samples arrive they replace any other baseline and grow at
//!    every look;
//! 3. **pre_deploy**: the same source over `baseline.pre_deploy` before the deployment started
//!    (sources that can look back, e.g. Prometheus), else the window the baseline store kept
//!    for this deployment;
//! 4. **previous**: the samples of the last `baseline.previous` healthy deployments of the same
//!    repository and environment, from the baseline store.
//!
//! Error-rate detectors get counts the same way (the store keeps them as two sample series,
//! `<metric>:errors` and `<metric>:requests`). Without any baseline a detector reports no data:
//! the report says no earlier baseline existed and the verdict rests on what could be judged.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::detect::{Counts, DetectorSet};
use crate::duration;
use crate::error::Problems;
use crate::metrics::{
    Baseline, BaselineKey, BaselineSource, BaselineStore, CountsSample, Polled, Sample,
};

/// Where baselines come from when the caller hands none in (`baseline` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// How far before the deployment sources that can look back are read (default `1h`; `0s`
    /// turns the pre-deploy baseline off).
    #[serde(with = "duration::human")]
    pub pre_deploy: Duration,
    /// How many earlier healthy deployments make the `previous` baseline (default 5; 0 turns it
    /// off).
    pub previous: usize,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        Self {
            pre_deploy: Duration::from_secs(3600),
            previous: 5,
        }
    }
}

impl BaselineConfig {
    pub(crate) fn check(&self, p: &mut Problems) {
        if self.pre_deploy > Duration::from_secs(7 * 24 * 3600) {
            p.add("baseline.pre_deploy", "must be at most 7 days");
        }
        if self.previous > 100 {
            p.add("baseline.previous", "must be at most 100 deployments");
        }
    }
}

/// The store's series names of an error-rate metric's counts.
pub(crate) fn count_series(metric: &str) -> (String, String) {
    (format!("{metric}:errors"), format!("{metric}:requests"))
}

/// Counts stored as two series back into one total.
fn counts_from(errors: &Baseline, requests: &Baseline) -> Option<Counts> {
    let e: f64 = errors.values.iter().sum();
    let r: f64 = requests.values.iter().sum();
    (r >= 1.0 && e >= 0.0 && e <= r).then(|| Counts {
        errors: e.round() as u64,
        requests: r.round() as u64,
    })
}

/// Sums counts points per metric.
pub(crate) fn sum_counts(points: &[CountsSample]) -> BTreeMap<String, Counts> {
    let mut out: BTreeMap<String, Counts> = BTreeMap::new();
    for p in points {
        let c = out.entry(p.metric.clone()).or_insert(Counts {
            errors: 0,
            requests: 0,
        });
        *c = c.plus(p.counts);
    }
    out
}

/// Values per metric, in timestamp order.
pub(crate) fn values_by_metric(samples: &[Sample]) -> BTreeMap<String, Vec<f64>> {
    let mut sorted: Vec<&Sample> = samples.iter().collect();
    sorted.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for s in sorted {
        out.entry(s.metric.clone()).or_default().push(s.value);
    }
    out
}

/// Everything the baseline stage needs to choose.
pub(crate) struct Sources<'a> {
    pub(crate) provided: &'a HashMap<String, Vec<f64>>,
    pub(crate) provided_counts: &'a HashMap<String, Counts>,
    /// What the session's sources returned for the window before the deployment.
    pub(crate) lookback: &'a Polled,
    pub(crate) store: Option<&'a dyn BaselineStore>,
    pub(crate) config: &'a BaselineConfig,
    pub(crate) repository: &'a str,
    pub(crate) environment: &'a str,
    /// This deployment's correlation id (its own pre-deploy window in the store; excluded from
    /// `previous`).
    pub(crate) deployment: &'a str,
}

/// Gives every comparison detector of `detectors` the first baseline found in the documented
/// order; returns, per metric, the phrase saying which one (metrics without any are absent).
pub(crate) async fn choose(
    detectors: &mut DetectorSet,
    from: &Sources<'_>,
) -> BTreeMap<String, String> {
    let wanted: Vec<(String, &'static str)> = detectors
        .baseline_metrics()
        .into_iter()
        .map(|(m, t)| (m.to_owned(), t))
        .collect();
    let lookback_values = values_by_metric(&from.lookback.samples);
    let lookback_counts = sum_counts(&from.lookback.counts);
    let mut chosen = BTreeMap::new();
    for (metric, kind) in wanted {
        if chosen.contains_key(&metric) {
            continue;
        }
        let key = BaselineKey::new(from.repository, from.environment, metric.as_str());
        if kind == "error_rate" {
            // The pre-deploy window keeps its per-interval series: the detector reads its
            // overdispersion from it.
            let series: Vec<Counts> = from
                .lookback
                .counts
                .iter()
                .filter(|c| c.metric == metric)
                .map(|c| c.counts)
                .collect();
            if from.provided_counts.get(&metric).is_none() && !series.is_empty() {
                let phrase = BaselineSource::PreDeploy.describe();
                match detectors.set_baseline_count_series(&metric, &series, &phrase) {
                    Ok(_) => {
                        let total = lookback_counts[&metric];
                        chosen.insert(
                            metric,
                            format!(
                                "{phrase} ({} errors in {} requests)",
                                total.errors, total.requests
                            ),
                        );
                    }
                    Err(e) => tracing::warn!(error = %e, metric, "cannot use the baseline counts"),
                }
                continue;
            }
            let found = if let Some(c) = from.provided_counts.get(&metric) {
                Some((*c, BaselineSource::Provided))
            } else if let Some(store) = from.store {
                stored_counts(store, from, &metric).await
            } else {
                None
            };
            if let Some((counts, source)) = found {
                let phrase = source.describe();
                match detectors.set_baseline_counts(&metric, counts, &phrase) {
                    Ok(_) => {
                        chosen.insert(
                            metric,
                            format!(
                                "{phrase} ({} errors in {} requests)",
                                counts.errors, counts.requests
                            ),
                        );
                    }
                    Err(e) => tracing::warn!(error = %e, metric, "cannot use the baseline counts"),
                }
            }
            continue;
        }
        let baseline = if let Some(values) = from.provided.get(&metric) {
            Baseline::provided(values).ok()
        } else if let Some(values) = lookback_values.get(&metric).filter(|v| !v.is_empty()) {
            Some(Baseline::new(BaselineSource::PreDeploy, values.clone()))
        } else if let Some(store) = from.store {
            stored(store, &key, from).await
        } else {
            None
        };
        if let Some(b) = baseline {
            match detectors.set_baseline(&metric, &b) {
                Ok(_) => {
                    chosen.insert(
                        metric,
                        format!("{} ({} values)", b.source.describe(), b.values.len()),
                    );
                }
                Err(e) => tracing::warn!(error = %e, metric, "cannot use the baseline"),
            }
        }
    }
    chosen
}

/// The store's pre-deploy window for this deployment, else its last healthy deployments.
async fn stored(
    store: &dyn BaselineStore,
    key: &BaselineKey,
    from: &Sources<'_>,
) -> Option<Baseline> {
    let metric = &key.metric;
    if !from.config.pre_deploy.is_zero() {
        match store.pre_deploy(key, from.deployment).await {
            Ok(Some(b)) => return Some(b),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, metric, "baseline store: cannot read the pre-deploy window")
            }
        }
    }
    if from.config.previous == 0 {
        return None;
    }
    store.last_healthy(key, from.config.previous, Some(from.deployment)).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, metric, "baseline store: cannot read the last healthy deployments");
        None
    })
}

async fn stored_counts(
    store: &dyn BaselineStore,
    from: &Sources<'_>,
    metric: &str,
) -> Option<(Counts, BaselineSource)> {
    let (e, r) = count_series(metric);
    let ek = BaselineKey::new(from.repository, from.environment, e);
    let rk = BaselineKey::new(from.repository, from.environment, r);
    let errors = stored(store, &ek, from).await?;
    let requests = stored(store, &rk, from).await?;
    counts_from(&errors, &requests).map(|c| (c, requests.source))
}

/// Control (stable track) data seen so far in a session: it becomes the baseline of its metric
/// at every look.
#[derive(Debug, Default)]
pub(crate) struct Control {
    values: BTreeMap<String, Vec<f64>>,
    counts: BTreeMap<String, Counts>,
}

impl Control {
    /// Adds this tick's control data and hands the grown baselines to the detectors; returns the
    /// phrase per metric that now has a control baseline.
    pub(crate) fn update(
        &mut self,
        detectors: &mut DetectorSet,
        polled: &Polled,
    ) -> Vec<(String, String)> {
        let mut changed = Vec::new();
        for (metric, values) in values_by_metric(&polled.control_samples) {
            let all = self.values.entry(metric.clone()).or_default();
            all.extend(values);
            let b = Baseline::new(BaselineSource::Control, all.clone());
            if let Ok(n) = detectors.set_baseline(&metric, &b)
                && n > 0
            {
                changed.push((
                    metric,
                    format!("{} ({} values)", b.source.describe(), b.values.len()),
                ));
            }
        }
        for (metric, c) in sum_counts(&polled.control_counts) {
            let total = self.counts.entry(metric.clone()).or_insert(Counts {
                errors: 0,
                requests: 0,
            });
            *total = total.plus(c);
            let phrase = BaselineSource::Control.describe();
            if let Ok(n) = detectors.set_baseline_counts(&metric, *total, &phrase)
                && n > 0
            {
                changed.push((
                    metric,
                    format!(
                        "{phrase} ({} errors in {} requests)",
                        total.errors, total.requests
                    ),
                ));
            }
        }
        changed
    }
}
