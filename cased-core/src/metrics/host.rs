//! [`HostSource`]: CPU, memory and disk of the machine cased runs on, through `sysinfo`.

use sysinfo::{CpuRefreshKind, Disks, MemoryRefreshKind, RefreshKind, System};

use super::Sample;

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
}
