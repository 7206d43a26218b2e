//! Pre-started, never-used job containers, so that a job does not wait for
//! the engine to create and start one (the largest cost of a container per
//! job: hundreds of milliseconds).
//!
//! A pool holds containers made for one [`Profile`] (the limits fixed when a
//! container is created). Each container serves exactly one step and is then
//! removed; the pool's filler task makes a new one in the background. One
//! image serves every language, so a pool is per profile rather than per
//! language: by default one for the run limits and one for the compile limits.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::Notify;

use crate::limits::Limits;

/// The limits a container is created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Profile(pub Limits);

impl Profile {
    /// Whether a container made for this profile can run a step with `job`'s
    /// limits: the same memory, processes and scratch size (fixed in the
    /// container's cgroup and mounts), and rlimits no higher than the
    /// container's ulimits (the init lowers them to the job's, which needs no
    /// privilege). The wall clock and the output cap are the worker's.
    pub(crate) fn serves(&self, job: &Limits) -> bool {
        let made = &self.0;
        made.memory_bytes == job.memory_bytes
            && made.processes == job.processes
            && made.scratch_bytes == job.scratch_bytes
            && job.cpu_seconds() <= made.cpu_seconds()
            && job.file_size_bytes <= made.file_size_bytes
            && job.open_files <= made.open_files
    }
}

/// A ready container: its id, its uid (see [`super::uids`]), and when it
/// was started.
pub(crate) type Ready = (String, u32, Instant);

/// Ready containers of one profile, oldest first.
#[derive(Debug)]
pub(crate) struct Pool {
    pub profile: Profile,
    ready: Mutex<VecDeque<Ready>>,
    /// Wakes the filler: a container was taken, or the sandbox is closing.
    pub wake: Notify,
}

impl Pool {
    pub(crate) fn new(profile: Profile) -> Self {
        Self {
            profile,
            ready: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
        }
    }

    /// A ready container, never handed out twice. The filler is woken when
    /// the taker is done with it (or now, when the pool was empty).
    pub(crate) fn take(&self) -> Option<Ready> {
        let ready = self.lock().pop_front();
        if ready.is_none() {
            self.wake.notify_one();
        }
        ready
    }

    pub(crate) fn put(&self, id: String, uid: u32) {
        self.lock().push_back((id, uid, Instant::now()));
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Every ready container (id, uid), for removal when the sandbox closes.
    pub(crate) fn drain(&self) -> Vec<(String, u32)> {
        self.lock()
            .drain(..)
            .map(|(id, uid, _)| (id, uid))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Ready>> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_profile_serves_lower_rlimits_but_only_its_own_cgroup_limits() {
        let profile = Profile(Limits::RUN_DEFAULT);
        let mut job = Limits::RUN_DEFAULT;
        assert!(profile.serves(&job));
        job.cpu_time = Duration::from_secs(2);
        job.wall_time = Duration::from_secs(2);
        job.output_bytes = 10;
        assert!(profile.serves(&job));
        job.cpu_time = Duration::from_secs(11);
        assert!(!profile.serves(&job));
        let mut job = Limits::RUN_DEFAULT;
        job.memory_bytes /= 2;
        assert!(!profile.serves(&job));
    }

    #[test]
    fn each_container_is_taken_once() {
        let pool = Pool::new(Profile(Limits::RUN_DEFAULT));
        pool.put("a".into(), 1);
        pool.put("b".into(), 2);
        assert_eq!(pool.take().unwrap().0, "a");
        assert_eq!(pool.take().unwrap().0, "b");
        assert!(pool.take().is_none());
    }
}
