//! What the machine and our processes look like from `/proc`: cores, the open-files limit,
//! a process's resident memory.

use serde::Serialize;

/// The machine the figures were taken on.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// CPUs this process may run on.
    pub cores: usize,
    /// Soft `RLIMIT_NOFILE` (inherited by every process the bench starts), if readable.
    pub open_files_limit: Option<u64>,
}

impl Host {
    pub fn probe() -> Self {
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            open_files_limit: std::fs::read_to_string("/proc/self/limits")
                .ok()
                .and_then(|text| open_files_limit(&text)),
        }
    }
}

/// The soft limit on the "Max open files" line of a `/proc/<pid>/limits` text.
pub fn open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    vm_rss_kib(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// CPU time (user + system) process `pid` has used so far, in seconds (`/proc/<pid>/stat`).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    stat_cpu_seconds(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Clock ticks per second of `/proc/<pid>/stat` times: 100 on every Linux we run on
/// (reading `sysconf(_SC_CLK_TCK)` would need `unsafe` or a libc binding).
const CLOCK_TICKS: f64 = 100.0;

/// `utime + stime` of a `/proc/<pid>/stat` line, in seconds.
pub fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // Fields after the parenthesised command name (which may hold spaces): state is the
    // first; utime and stime are the 12th and 13th.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / CLOCK_TICKS)
}

/// How many file descriptors process `pid` has open (`/proc/<pid>/fd`).
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// The `VmRSS` line of a `/proc/<pid>/status` text, in KiB.
pub fn vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_soft_open_files_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max processes             96365                96365                processes\n\
                      Max open files            20000                40000                files\n";
        assert_eq!(open_files_limit(limits), Some(20000));
        assert_eq!(
            open_files_limit("Max open files unlimited unlimited files"),
            None
        );
    }

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\thitl-extauth\nVmPeak:\t  99 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(vm_rss_kib(status), Some(12345));
        assert_eq!(vm_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn reads_cpu_time_past_an_awkward_name() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 7 1 1";
        assert_eq!(stat_cpu_seconds(stat), Some(3.0));
        assert_eq!(stat_cpu_seconds("42 (x) S 1"), None);
    }

    #[test]
    fn our_own_process_is_readable() {
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
        assert!(open_fds(std::process::id()).is_some_and(|n| n > 0));
        assert!(cpu_seconds(std::process::id()).is_some());
    }
}
