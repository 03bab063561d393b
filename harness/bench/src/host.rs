//! What the machine and our processes look like from `/proc`: cores, the open-files limit,
//! a process's resident memory and the CPU time it has used.

use std::collections::BTreeMap;

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

/// CPU time each thread of process `pid` has used so far, by thread id, in nanoseconds:
/// the first field of `/proc/<pid>/task/<tid>/schedstat`. Unlike `/proc/<pid>/stat`, whose
/// `utime + stime` come in 10 ms ticks, this is exact, so a thousand requests of tens of
/// microseconds each measure to the microsecond.
pub fn thread_cpu_ns(pid: u32) -> Option<ThreadCpu> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut threads = BTreeMap::new();
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread that ended since the listing is simply not counted.
        if let Some(ns) = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse().ok())
        {
            threads.insert(tid, ns);
        }
    }
    (!threads.is_empty()).then_some(threads)
}

/// CPU time process `pid` used between two [`ThreadCpu`] samples: the growth of every thread
/// seen both times plus all of each thread that started in between (a thread that ended in
/// between loses its last stretch).
pub fn cpu_used(before: &ThreadCpu, after: &ThreadCpu) -> std::time::Duration {
    let ns: u64 = after
        .iter()
        .map(|(tid, &now)| now.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    std::time::Duration::from_nanos(ns)
}

/// Per-thread CPU times of one process, as [`thread_cpu_ns`] reads them.
pub type ThreadCpu = BTreeMap<u32, u64>;

/// CPU time of several named processes from one moment on.
pub struct CpuMeter {
    started: Vec<(&'static str, u32, Option<ThreadCpu>)>,
}

impl CpuMeter {
    /// Sample `processes` (name and pid) now.
    pub fn start(processes: Vec<(&'static str, u32)>) -> Self {
        Self {
            started: processes
                .into_iter()
                .map(|(name, pid)| (name, pid, thread_cpu_ns(pid)))
                .collect(),
        }
    }

    /// Each process's CPU since [`CpuMeter::start`], in microseconds per one of `requests`
    /// (a process whose threads could not be read is left out).
    pub fn per_request_us(&self, requests: usize) -> BTreeMap<&'static str, f64> {
        self.started
            .iter()
            .filter_map(|(name, pid, before)| {
                let used = cpu_used(before.as_ref()?, &thread_cpu_ns(*pid)?);
                Some((*name, used.as_secs_f64() * 1e6 / requests.max(1) as f64))
            })
            .collect()
    }
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
    fn cpu_used_counts_threads_that_started_and_skips_ones_that_ended() {
        let before = ThreadCpu::from([(1, 1_000), (2, 5_000)]);
        let after = ThreadCpu::from([(1, 4_000), (3, 700)]);
        assert_eq!(cpu_used(&before, &after).as_nanos(), 3_700);
    }

    #[test]
    fn our_own_process_is_readable() {
        assert!(thread_cpu_ns(std::process::id()).is_some_and(|t| !t.is_empty()));
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
        assert!(open_fds(std::process::id()).is_some_and(|n| n > 0));
        assert!(cpu_seconds(std::process::id()).is_some());
    }
}
