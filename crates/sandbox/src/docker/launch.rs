//! The protocol between the worker and `code-runner-init`, PID 1 of every job
//! container (`docker/init.c`): the header the worker writes on the
//! container's standard input (the job's files, command, environment, rlimits
//! and seccomp filters), the status record the init writes as the last bytes
//! of standard error, and the output collected in between under the cap.

use super::archive::Entry;

/// What the init reports when the program is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub cpu_us: Option<u64>,
    pub memory_peak_bytes: Option<u64>,
    pub oom_kills: Option<u64>,
}

const MAGIC: &[u8; 4] = b"CRI2";
const RECORD_PREFIX: &[u8] = b"\0code-runner-init:";
/// Longest status record the init writes (its buffer).
pub(crate) const RECORD_MAX: usize = 256;

/// The job of one container, as the init reads it.
pub(crate) struct Header<'a> {
    /// Wait after the record instead of exiting (a compile step, whose
    /// output is copied out of the running container afterwards).
    pub linger: bool,
    /// CPU time of the whole tree (the container's cgroup) after which the
    /// init kills the program; per-process `RLIMIT_CPU` is in `rlimits`.
    pub cpu_limit: std::time::Duration,
    /// Echoed in the record, so a record the program printed is not taken
    /// for the init's.
    pub nonce: &'a str,
    /// seccomp-BPF programs (`struct sock_filter` arrays) to install.
    pub filters: &'a [&'a [u8]],
    pub rlimits: &'a [(u32, u64, u64)],
    pub env: &'a [&'a str],
    pub argv: &'a [String],
    /// What the init writes into `/work` before starting the program.
    pub files: &'a [Entry],
}

impl Header<'_> {
    pub(crate) fn encode(&self) -> Vec<u8> {
        fn bytes(out: &mut Vec<u8>, b: &[u8]) {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&u32::from(self.linger).to_le_bytes());
        let cpu_limit_us = u64::try_from(self.cpu_limit.as_micros()).unwrap_or(u64::MAX);
        out.extend_from_slice(&cpu_limit_us.to_le_bytes());
        bytes(&mut out, self.nonce.as_bytes());
        out.extend_from_slice(&(self.filters.len() as u32).to_le_bytes());
        for filter in self.filters {
            bytes(&mut out, filter);
        }
        out.extend_from_slice(&(self.rlimits.len() as u32).to_le_bytes());
        for &(resource, soft, hard) in self.rlimits {
            out.extend_from_slice(&resource.to_le_bytes());
            out.extend_from_slice(&soft.to_le_bytes());
            out.extend_from_slice(&hard.to_le_bytes());
        }
        out.extend_from_slice(&(self.env.len() as u32).to_le_bytes());
        for entry in self.env {
            bytes(&mut out, entry.as_bytes());
        }
        out.extend_from_slice(&(self.argv.len() as u32).to_le_bytes());
        for arg in self.argv {
            bytes(&mut out, arg.as_bytes());
        }
        out.extend_from_slice(&(self.files.len() as u32).to_le_bytes());
        for entry in self.files {
            out.extend_from_slice(&u32::from(entry.directory).to_le_bytes());
            out.extend_from_slice(&entry.mode().to_le_bytes());
            bytes(&mut out, entry.path.as_bytes());
            if !entry.directory {
                bytes(&mut out, &entry.contents);
            }
        }
        out
    }
}

/// A fresh nonce: 128 bits from the standard library's randomly keyed hasher.
pub(crate) fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut words = [0u64; 2];
    for word in &mut words {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        *word = hasher.finish();
    }
    format!("{:016x}{:016x}", words[0], words[1])
}

/// Standard output and error of one step, in arrival order, under the cap.
///
/// The init writes its record on both streams after everything else (the
/// engine carries the two streams apart, so one stream's end says nothing of
/// the other's), so the collector accepts up to `cap` + two records; once the
/// records are taken off, what is left is cut to `cap` in arrival order, as
/// the native backend cuts.
#[derive(Debug, Default)]
pub(crate) struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// (is stdout, length) of each chunk, in arrival order.
    chunks: Vec<(bool, usize)>,
    cap: u64,
}

/// What was collected, once the step is over.
#[derive(Debug)]
pub(crate) struct Collected {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exceeded: bool,
    pub status: Option<Status>,
}

impl Output {
    pub(crate) fn new(cap: u64) -> Self {
        Self {
            cap,
            ..Self::default()
        }
    }

    fn total(&self) -> u64 {
        (self.stdout.len() + self.stderr.len()) as u64
    }

    /// Takes a chunk; false once more came than the cap allows (the caller
    /// stops the container: the output limit).
    pub(crate) fn push(&mut self, is_stdout: bool, chunk: &[u8]) -> bool {
        let budget = self.cap + 2 * RECORD_MAX as u64;
        let room = budget.saturating_sub(self.total()) as usize;
        let kept = &chunk[..chunk.len().min(room)];
        if !kept.is_empty() {
            if is_stdout {
                self.stdout.extend_from_slice(kept);
            } else {
                self.stderr.extend_from_slice(kept);
            }
            self.chunks.push((is_stdout, kept.len()));
        }
        kept.len() == chunk.len()
    }

    /// True when both streams end with the init's record for `nonce`: the
    /// step is over and all of its output is here. `relayed_stdout`: the
    /// end of a stdout that was relayed to another container instead of
    /// collected here.
    pub(crate) fn is_complete(&self, nonce: &str, relayed_stdout: Option<&[u8]>) -> bool {
        let stdout = relayed_stdout.unwrap_or(&self.stdout);
        record_at_end(&self.stderr, nonce).is_some() && record_at_end(stdout, nonce).is_some()
    }

    /// Takes `len` bytes off the end of one stream's chunks.
    fn strip(&mut self, is_stdout: bool, mut len: usize) {
        let stream = if is_stdout {
            &mut self.stdout
        } else {
            &mut self.stderr
        };
        stream.truncate(stream.len() - len);
        while len > 0 {
            let Some(index) = self.chunks.iter().rposition(|c| c.0 == is_stdout) else {
                break;
            };
            let take = len.min(self.chunks[index].1);
            self.chunks[index].1 -= take;
            len -= take;
            if self.chunks[index].1 == 0 {
                self.chunks.remove(index);
            }
        }
    }

    /// Takes the records off, then cuts the output to the cap.
    pub(crate) fn finish(mut self, nonce: &str, exceeded: bool) -> Collected {
        let mut status = None;
        for is_stdout in [true, false] {
            let stream = if is_stdout {
                &self.stdout
            } else {
                &self.stderr
            };
            if let Some((start, found)) = record_at_end(stream, nonce) {
                let len = stream.len() - start;
                self.strip(is_stdout, len);
                status = Some(found);
            }
        }
        let mut exceeded = exceeded;
        if self.total() > self.cap {
            exceeded = true;
            let (mut keep_out, mut keep_err, mut room) = (0usize, 0usize, self.cap as usize);
            for &(is_stdout, len) in &self.chunks {
                let take = len.min(room);
                room -= take;
                if is_stdout {
                    keep_out += take;
                } else {
                    keep_err += take;
                }
            }
            self.stdout.truncate(keep_out);
            self.stderr.truncate(keep_err);
        }
        Collected {
            stdout: self.stdout,
            stderr: self.stderr,
            exceeded,
            status,
        }
    }
}

/// The record for `nonce` when `stream` ends with one: (its start, status).
fn record_at_end(stream: &[u8], nonce: &str) -> Option<(usize, Status)> {
    let stderr = stream;
    if stderr.last() != Some(&b'\n') {
        return None;
    }
    let window = stderr.len().saturating_sub(RECORD_MAX);
    let start = window + find_last(&stderr[window..], RECORD_PREFIX)?;
    let text = std::str::from_utf8(&stderr[start + RECORD_PREFIX.len()..stderr.len() - 1]).ok()?;
    let mut fields = text.split(':');
    if fields.next()? != nonce {
        return None;
    }
    let mut number = || -> Option<i64> { fields.next()?.parse().ok() };
    let (exit, signal, cpu, peak, ooms) = (number()?, number()?, number()?, number()?, number()?);
    let known = |v: i64| u64::try_from(v).ok();
    Some((
        start,
        Status {
            exit_code: i32::try_from(exit).ok().filter(|&c| c >= 0),
            signal: i32::try_from(signal).ok().filter(|&s| s > 0),
            cpu_us: known(cpu),
            memory_peak_bytes: known(peak),
            oom_kills: known(ooms),
        },
    ))
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(nonce: &str, rest: &str) -> Vec<u8> {
        let mut r = RECORD_PREFIX.to_vec();
        r.extend_from_slice(format!("{nonce}:{rest}\n").as_bytes());
        r
    }

    #[test]
    fn header_layout() {
        let argv = vec!["/usr/bin/python3".to_string(), "main.py".to_string()];
        let header = Header {
            linger: true,
            cpu_limit: std::time::Duration::from_millis(1500),
            nonce: "ab",
            filters: &[&[1, 2, 3, 4, 5, 6, 7, 8]],
            rlimits: &[(0, 1, 2)],
            env: &["A=b"],
            argv: &argv,
            files: &[Entry::file("main.py", b"print(1)")],
        }
        .encode();
        assert_eq!(&header[..4], b"CRI2");
        assert_eq!(&header[4..8], &1u32.to_le_bytes());
        assert_eq!(&header[8..16], &1_500_000u64.to_le_bytes());
        assert_eq!(&header[16..22], &[2, 0, 0, 0, b'a', b'b']);
        let tail: Vec<u8> = [
            &1u32.to_le_bytes()[..],
            &0u32.to_le_bytes(),
            &0o644u32.to_le_bytes(),
            &7u32.to_le_bytes(),
            b"main.py",
            &8u32.to_le_bytes(),
            b"print(1)",
        ]
        .concat();
        assert!(header.ends_with(&tail));
    }

    #[test]
    fn records_on_both_streams_end_the_step() {
        let mut out = Output::new(100);
        assert!(out.push(true, b"hello\n"));
        assert!(out.push(false, b"warn"));
        assert!(out.push(false, &record("n1", "3:-1:1500:4096:0")));
        assert!(!out.is_complete("n1", None), "stdout still open");
        assert!(out.push(true, &record("n1", "3:-1:1500:4096:0")));
        assert!(out.is_complete("n1", None));
        let got = out.finish("n1", false);
        assert_eq!(got.stdout, b"hello\n");
        assert_eq!(got.stderr, b"warn");
        assert!(!got.exceeded);
        let status = got.status.unwrap();
        assert_eq!(status.exit_code, Some(3));
        assert_eq!(status.signal, None);
        assert_eq!(status.cpu_us, Some(1500));
        assert_eq!(status.oom_kills, Some(0));
    }

    #[test]
    fn a_forged_record_is_not_the_end() {
        let mut out = Output::new(1000);
        out.push(true, &record("guess", "0:-1:0:0:0"));
        out.push(false, &record("guess", "0:-1:0:0:0"));
        assert!(!out.is_complete("real", None));
        out.push(false, &record("real", "-1:9:1:2:1"));
        out.push(true, &record("real", "-1:9:1:2:1"));
        let got = out.finish("real", false);
        assert_eq!(got.stderr, record("guess", "0:-1:0:0:0"));
        assert_eq!(got.stdout, record("guess", "0:-1:0:0:0"));
        let status = got.status.unwrap();
        assert_eq!((status.exit_code, status.signal), (None, Some(9)));
    }

    #[test]
    fn cap_cuts_in_arrival_order_and_records_do_not_count() {
        let mut out = Output::new(10);
        assert!(out.push(true, b"0123456"));
        assert!(out.push(false, b"abc"));
        assert!(out.push(false, &record("n", "0:-1:0:0:0")));
        assert!(out.push(true, &record("n", "0:-1:0:0:0")));
        let got = out.finish("n", false);
        assert_eq!((got.stdout.len(), got.stderr.len()), (7, 3));
        assert!(!got.exceeded);

        let mut out = Output::new(10);
        assert!(out.push(false, b"abcdef"));
        assert!(out.push(true, b"0123456"));
        assert!(
            !out.push(true, &[b'x'; 2 * RECORD_MAX]),
            "past the cap and the records"
        );
        let got = out.finish("n", true);
        assert_eq!(got.stderr, b"abcdef");
        assert_eq!(got.stdout, b"0123");
        assert!(got.exceeded);
    }
}
