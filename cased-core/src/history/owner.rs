//! Which process a running session in history belongs to, and whether that process is still
//! there: what lets a history reopened after a crash or a `kill -9` tell an interrupted session
//! from one still running.
//!
//! A session's row keeps its process's id, its host (the host name, plus the boot id on Linux,
//! so a pid is only compared within the boot that gave it) and, on Linux, the process's start
//! time, so a pid reused by a later process does not pass for the original one. Liveness is
//! only judged on the same host; a session of another host is left as it is.

use std::sync::OnceLock;

/// The process writing to history.
#[derive(Debug)]
pub(crate) struct Owner {
    /// The host name and, on Linux, the boot id (`name/boot-id`).
    pub(crate) host: String,
    pub(crate) pid: u32,
    /// The process's start time in clock ticks since boot (Linux), to tell a reused pid.
    pub(crate) started: Option<String>,
}

/// What can be said of a session's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    Alive,
    Gone,
    /// Another host, or a platform where cased cannot look at other processes.
    Unknown,
}

/// This process, worked out once.
pub(crate) fn current() -> &'static Owner {
    static OWNER: OnceLock<Owner> = OnceLock::new();
    OWNER.get_or_init(|| {
        let pid = std::process::id();
        Owner {
            host: host_id(),
            pid,
            started: start_time(pid),
        }
    })
}

fn read_trimmed(path: &str) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

fn host_id() -> String {
    let name = read_trimmed("/proc/sys/kernel/hostname")
        .or_else(|| read_trimmed("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .or_else(|| {
            let out = std::process::Command::new("hostname").output().ok()?;
            let s = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (out.status.success() && !s.is_empty()).then_some(s)
        })
        .unwrap_or_else(|| "unknown-host".to_owned());
    match read_trimmed("/proc/sys/kernel/random/boot_id") {
        Some(boot) => format!("{name}/{boot}"),
        None => name,
    }
}

/// Field 22 of `/proc/<pid>/stat` (start time since boot), read after the command name, which
/// may itself hold spaces and parentheses.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state); the start time is field 22.
    rest.split_whitespace().nth(19).map(str::to_owned)
}

/// Whether the process that recorded a session is still there.
pub(crate) fn liveness(host: &str, pid: u32, started: Option<&str>) -> Liveness {
    let me = current();
    if host != me.host {
        return Liveness::Unknown;
    }
    if pid == me.pid && started == me.started.as_deref() {
        return Liveness::Alive;
    }
    if std::path::Path::new("/proc/self/stat").exists() {
        // Linux: the pid is there and started when the session's process did.
        return match start_time(pid) {
            Some(now) if started.is_none_or(|s| s == now) => Liveness::Alive,
            _ => Liveness::Gone,
        };
    }
    if cfg!(unix) {
        // Other Unix systems: `kill -0` says whether the pid exists (a pid taken by another
        // process since cannot be told apart there: the session then stays running).
        return match std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
        {
            Ok(out) if out.status.success() => Liveness::Alive,
            // EPERM: the pid exists but belongs to someone else.
            Ok(out) if String::from_utf8_lossy(&out.stderr).contains("ermitted") => Liveness::Alive,
            Ok(_) => Liveness::Gone,
            Err(_) => Liveness::Unknown,
        };
    }
    Liveness::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_finished_child_is_gone() {
        let me = current();
        assert_eq!(
            liveness(&me.host, me.pid, me.started.as_deref()),
            Liveness::Alive
        );
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let started = start_time(pid);
        child.wait().unwrap();
        assert_eq!(liveness(&me.host, pid, started.as_deref()), Liveness::Gone);
        assert_eq!(
            liveness("another-host", pid, started.as_deref()),
            Liveness::Unknown
        );
        if me.started.is_some() {
            // Linux: our own pid with another start time is a reused pid, not us.
            assert_eq!(liveness(&me.host, me.pid, Some("1")), Liveness::Gone);
        }
    }
}
