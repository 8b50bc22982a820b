//! When checks run: a progressive schedule that yields the next delay (like tower's `Backoff`).
//!
//! The default runs a tick at once, then 10 s, 30 s, 1 min and 5 min apart, the last interval
//! repeating while the deployment runs. After the deployment reports success a cool-down (30 min
//! by default) of extended monitoring follows; the progression carries on through it, so a
//! deployment that is already done when monitoring starts still gets the early, close checks.
//! A session never lasts longer than `max_duration` (2 h by default).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration;
use crate::error::{Error, Problems, Result};

/// The longest interval, cool-down or session accepted (a week): anything longer is a typo.
pub const MAX_SCHEDULE_SPAN: Duration = Duration::from_secs(7 * 24 * 3600);
/// The shortest interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// The schedule as written in configuration (`"10s"`-style durations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// Delays between ticks; the last one repeats.
    #[serde(with = "duration::human_vec")]
    pub intervals: Vec<Duration>,
    /// Extended monitoring after the deployment reports success.
    #[serde(with = "duration::human")]
    pub cooldown: Duration,
    /// Hard limit of a session's length.
    #[serde(with = "duration::human")]
    pub max_duration: Duration,
    /// Each delay is lengthened by a uniform random amount in `[0, jitter]`.
    #[serde(with = "duration::human")]
    pub jitter: Duration,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            intervals: vec![
                Duration::from_secs(10),
                Duration::from_secs(30),
                Duration::from_secs(60),
                Duration::from_secs(300),
            ],
            cooldown: Duration::from_secs(30 * 60),
            max_duration: Duration::from_secs(2 * 3600),
            jitter: Duration::ZERO,
        }
    }
}

/// A validated schedule. Build it with [`Schedule::new`] or [`Schedule::progressive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    config: ScheduleConfig,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            config: ScheduleConfig::default(),
        }
    }
}

impl Schedule {
    /// Validates a schedule configuration.
    ///
    /// # Errors
    /// [`Error::Validation`] naming each bad setting: an empty interval list, an interval below
    /// 1 ms or above a week, a zero `max_duration`, a cool-down or session above a week, a jitter
    /// larger than the smallest interval.
    pub fn new(config: ScheduleConfig) -> Result<Self> {
        let mut p = Problems::default();
        if config.intervals.is_empty() {
            p.add("schedule.intervals", "must list at least one interval");
        }
        for (i, d) in config.intervals.iter().enumerate() {
            if *d < MIN_INTERVAL || *d > MAX_SCHEDULE_SPAN {
                p.add(
                    format!("schedule.intervals[{i}]"),
                    format!("{} is outside 1ms..7days", duration::format(*d)),
                );
            }
        }
        if config.cooldown > MAX_SCHEDULE_SPAN {
            p.add(
                "schedule.cooldown",
                format!(
                    "{} is longer than 7 days",
                    duration::format(config.cooldown)
                ),
            );
        }
        if config.max_duration.is_zero() || config.max_duration > MAX_SCHEDULE_SPAN {
            p.add(
                "schedule.max_duration",
                format!(
                    "{} is outside (0, 7 days]",
                    duration::format(config.max_duration)
                ),
            );
        }
        if let Some(min) = config.intervals.iter().min()
            && config.jitter > *min
        {
            p.add(
                "schedule.jitter",
                format!(
                    "{} is larger than the smallest interval {}",
                    duration::format(config.jitter),
                    duration::format(*min)
                ),
            );
        }
        p.finish("schedule")?;
        Ok(Self { config })
    }

    /// A schedule with these intervals and the default cool-down, limit and no jitter.
    ///
    /// # Errors
    /// As [`Schedule::new`].
    pub fn progressive(intervals: impl IntoIterator<Item = Duration>) -> Result<Self> {
        Self::new(ScheduleConfig {
            intervals: intervals.into_iter().collect(),
            ..Default::default()
        })
    }

    /// The configuration this schedule was built from.
    #[must_use]
    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// The cool-down after the deployment reports success.
    #[must_use]
    pub fn cooldown(&self) -> Duration {
        self.config.cooldown
    }

    /// The hard limit of a session's length.
    #[must_use]
    pub fn max_duration(&self) -> Duration {
        self.config.max_duration
    }

    /// The smallest interval (what a check without a timeout of its own, and a poll, is given).
    #[must_use]
    pub fn min_interval(&self) -> Duration {
        self.config
            .intervals
            .iter()
            .copied()
            .min()
            .unwrap_or(MIN_INTERVAL)
    }

    /// A fresh sequence of delays, starting with the first interval.
    #[must_use]
    pub fn delays(&self) -> Delays {
        Delays {
            intervals: self.config.intervals.clone().into(),
            jitter: self.config.jitter,
            next: 0,
        }
    }
}

/// The delays of one session, in order: each interval once, then the last forever. Each delay
/// includes the jitter.
#[derive(Debug, Clone)]
pub struct Delays {
    intervals: Box<[Duration]>,
    jitter: Duration,
    next: usize,
}

impl Delays {
    /// The delay before the next tick.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.intervals[self.next.min(self.intervals.len() - 1)];
        self.next = self.next.saturating_add(1);
        if self.jitter.is_zero() {
            base
        } else {
            let extra = fastrand::u64(0..=self.jitter.as_nanos().min(u128::from(u64::MAX)) as u64);
            base + Duration::from_nanos(extra)
        }
    }
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.next_delay())
    }
}

/// Rejects a schedule configuration with a clear error; used by [`crate::MonitorConfig`].
pub(crate) fn validate(config: &ScheduleConfig) -> Result<Schedule, Error> {
    Schedule::new(config.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_progression_repeats_the_last_interval() {
        let got: Vec<u64> = Schedule::default()
            .delays()
            .take(7)
            .map(|d| d.as_secs())
            .collect();
        assert_eq!(got, [10, 30, 60, 300, 300, 300, 300]);
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let s = Schedule::new(ScheduleConfig {
            intervals: vec![Duration::from_millis(100)],
            jitter: Duration::from_millis(20),
            ..Default::default()
        })
        .unwrap();
        let delays: Vec<Duration> = s.delays().take(500).collect();
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::from_millis(100) && *d <= Duration::from_millis(120))
        );
        assert!(
            delays.iter().any(|d| *d > Duration::from_millis(110)),
            "jitter never used its upper half"
        );
    }

    #[test]
    fn nonsense_is_rejected_with_every_field_named() {
        let err = Schedule::new(ScheduleConfig {
            intervals: vec![
                Duration::from_secs(10),
                Duration::ZERO,
                Duration::from_secs(30 * 24 * 3600),
            ],
            cooldown: Duration::from_secs(8 * 24 * 3600),
            max_duration: Duration::ZERO,
            jitter: Duration::from_secs(11),
        })
        .unwrap_err();
        let fields: Vec<&str> = err
            .field_errors()
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "schedule.intervals[1]",
                "schedule.intervals[2]",
                "schedule.cooldown",
                "schedule.max_duration",
                "schedule.jitter"
            ]
        );
        let empty = Schedule::progressive([]).unwrap_err();
        assert_eq!(empty.field_errors()[0].field, "schedule.intervals");
    }

    #[test]
    fn config_reads_human_durations() {
        let c: ScheduleConfig = serde_json::from_str(
            r#"{"intervals": ["250ms", "1m"], "cooldown": "30m", "jitter": "0s"}"#,
        )
        .unwrap();
        assert_eq!(
            c.intervals,
            [Duration::from_millis(250), Duration::from_secs(60)]
        );
        assert_eq!(c.cooldown, Duration::from_secs(1800));
        assert_eq!(c.max_duration, Duration::from_secs(7200));
        let bad = serde_json::from_str::<ScheduleConfig>(r#"{"intervals": ["10"]}"#).unwrap_err();
        assert!(
            bad.to_string().contains("\"10\" is not a duration"),
            "{bad}"
        );
    }
}
