//! [`HostSource`]: CPU, memory and disk of the machine cased runs on, through `sysinfo`, and the
//! `host` source a session polls (see [`super::HostSourceConfig`]).

use std::sync::Arc;
use std::time::Duration;

use sysinfo::{CpuRefreshKind, Disks, MemoryRefreshKind, RefreshKind, System};

use super::Sample;
use super::source::{PollContext, Polled, Source};
use crate::error::{Error, Result};

/// Samples the host: `host_cpu_percent` (all cores), `host_memory_used_percent`,
/// `host_memory_used_bytes`, and per mounted disk `host_disk_used_percent` (label `mount`).
///
/// CPU usage is measured between two calls to [`sample`](Self::sample): the first call gives
/// no CPU sample, later ones give the usage since the previous call (call it at most every
/// `sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`).
#[derive(Debug)]
pub struct HostSource {
    system: System,
    disks: Disks,
    primed: bool,
}

impl Default for HostSource {
    fn default() -> Self {
        Self::new()
    }
}

impl HostSource {
    /// A source for this host.
    #[must_use]
    pub fn new() -> Self {
        let system = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_cpu_usage())
                .with_memory(MemoryRefreshKind::nothing().with_ram()),
        );
        Self {
            system,
            disks: Disks::new_with_refreshed_list(),
            primed: false,
        }
    }

    /// Takes the host's samples now.
    pub fn sample(&mut self) -> Vec<Sample> {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        self.disks.refresh(true);
        let mut out = Vec::new();
        if self.primed {
            out.push(Sample::new(
                "host_cpu_percent",
                f64::from(self.system.global_cpu_usage()),
            ));
        }
        self.primed = true;
        let total = self.system.total_memory();
        let used = self.system.used_memory();
        if total > 0 {
            out.push(Sample::new(
                "host_memory_used_percent",
                used as f64 / total as f64 * 100.0,
            ));
        }
        out.push(Sample::new("host_memory_used_bytes", used as f64));
        for d in self.disks.list() {
            let total = d.total_space();
            if total == 0 {
                continue;
            }
            let used = total.saturating_sub(d.available_space());
            out.push(
                Sample::new("host_disk_used_percent", used as f64 / total as f64 * 100.0)
                    .label("mount", d.mount_point().to_string_lossy()),
            );
        }
        out
    }
}

/// One session's `host` source: [`HostSource`] readings renamed `<name>.cpu_percent`,
/// `<name>.memory_used_percent`, `<name>.disk_used_percent` (label `mount`), plus
/// `<name>.load_1m`, stamped with the poll's time. Each reading runs on the blocking pool under
/// a timeout; after a timeout the next poll starts a fresh reader (its CPU figure comes back one
/// poll later).
#[derive(Debug)]
pub(crate) struct HostPoller {
    name: Arc<str>,
    timeout: Duration,
    reader: Option<HostSource>,
}

impl HostPoller {
    pub(crate) fn new(name: Arc<str>, timeout: Duration) -> Self {
        Self {
            name,
            timeout,
            reader: None,
        }
    }
}

#[async_trait::async_trait]
impl Source for HostPoller {
    async fn poll(&mut self, ctx: &PollContext) -> Result<Polled> {
        let mut reader = self.reader.take();
        let task = tokio::task::spawn_blocking(move || {
            let r = reader.get_or_insert_with(HostSource::new);
            let samples = r.sample();
            (reader, samples, System::load_average().one)
        });
        let (reader, raw, load) = match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                return Err(Error::Transport(format!(
                    "reading the host's metrics failed: {e}"
                )));
            }
            Err(_) => {
                return Err(Error::Timeout(format!(
                    "reading the host's metrics took more than {}",
                    crate::duration::format(self.timeout)
                )));
            }
        };
        self.reader = reader;
        let mut samples: Vec<Sample> = raw
            .into_iter()
            .filter_map(|mut s| {
                let key = match s.metric.as_str() {
                    "host_cpu_percent" => "cpu_percent",
                    "host_memory_used_percent" => "memory_used_percent",
                    "host_disk_used_percent" => "disk_used_percent",
                    _ => return None,
                };
                s.metric = format!("{}.{key}", self.name);
                s.timestamp = ctx.now;
                Some(s)
            })
            .collect();
        if load.is_finite() && cfg!(unix) {
            samples.push(Sample::at(format!("{}.load_1m", self.name), ctx.now, load));
        }
        Ok(Polled {
            samples,
            ..Polled::default()
        })
    }

    async fn lookback(&mut self, _ctx: &PollContext, _window: Duration) -> Result<Option<Polled>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_memory_and_disks_then_cpu() {
        let mut h = HostSource::new();
        let first = h.sample();
        assert!(
            !first.iter().any(|s| s.metric == "host_cpu_percent"),
            "no CPU figure before a second call"
        );
        let mem = first
            .iter()
            .find(|s| s.metric == "host_memory_used_percent")
            .expect("memory");
        assert!(mem.value > 0.0 && mem.value <= 100.0, "{}", mem.value);
        assert!(
            first
                .iter()
                .filter(|s| s.metric == "host_disk_used_percent")
                .all(|s| (0.0..=100.0).contains(&s.value) && s.labels.contains_key("mount"))
        );
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL); // sysinfo needs two readings apart in time
        let second = h.sample();
        let cpu = second
            .iter()
            .find(|s| s.metric == "host_cpu_percent")
            .expect("cpu");
        assert!((0.0..=100.0).contains(&cpu.value), "{}", cpu.value);
    }

    #[tokio::test]
    async fn the_host_source_names_its_metrics_and_stamps_the_poll_time() {
        let plan = crate::metrics::SourceConfig::from_value(
            serde_json::json!({"type": "host", "name": "box"}),
        )
        .unwrap()
        .plan()
        .unwrap();
        let mut src = plan.start();
        let ctx = PollContext {
            now: 1234.5,
            ..PollContext::default()
        };
        let first = src.poll(&ctx).await.unwrap();
        let names: Vec<&str> = first.samples.iter().map(|s| s.metric.as_str()).collect();
        assert!(
            names.contains(&"box.memory_used_percent") && names.contains(&"box.load_1m"),
            "{names:?}"
        );
        assert!(
            !names.contains(&"box.cpu_percent"),
            "no CPU figure on the first poll"
        );
        assert!(
            first
                .samples
                .iter()
                .all(|s| s.timestamp == 1234.5 && s.metric.starts_with("box."))
        );
        assert!(
            first
                .samples
                .iter()
                .filter(|s| s.metric == "box.disk_used_percent")
                .all(|s| s.labels.contains_key("mount"))
        );
        let second = src.poll(&ctx).await.unwrap();
        assert!(
            second.samples.iter().any(|s| s.metric == "box.cpu_percent"),
            "CPU from the second poll on"
        );
        assert_eq!(
            src.lookback(&ctx, Duration::from_secs(60)).await.unwrap(),
            None
        );
    }
}
