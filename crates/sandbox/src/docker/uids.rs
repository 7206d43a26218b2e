//! A uid of its own for every live job container.
//!
//! The kernel keeps some quotas per uid, not per container: `RLIMIT_NPROC`
//! (every process of the uid on the host), `fs.inotify.max_user_instances`
//! and `max_user_watches`, descriptors in flight over Unix sockets, pipe
//! buffer pages, POSIX message queues. Containers without a user-namespace
//! remap run as host uids, so jobs that share a uid share those quotas: one
//! job holding them to the full starves the others.
//!
//! Containers are created before the job that takes them is known (the
//! pool), so a uid is leased when a container is created, not per slot, and
//! comes back once the engine has removed the container (every process of it
//! dead): a uid belongs to exactly one live container. The range is large
//! enough for every container a sandbox can have at once — each slot's
//! running container plus the one it just left (removed in the background),
//! and every pooled one — so a lease never waits in practice; it would wait
//! rather than hand out a uid twice.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

/// The uids of one sandbox: `first .. first + count`, each group = the uid.
#[derive(Debug)]
pub(crate) struct Uids {
    first: u32,
    count: u32,
    /// Free uids, the longest free first (a returned uid is reused last).
    free: Mutex<VecDeque<u32>>,
    returned: Notify,
}

impl Uids {
    pub(crate) fn new(first: u32, count: u32) -> Self {
        Self {
            first,
            count,
            free: Mutex::new((first..first + count).collect()),
            returned: Notify::new(),
        }
    }

    /// How many uids a sandbox needs: two per slot (the container of its
    /// running step and the one of its previous step, which is being
    /// removed) and every pooled container, with one in the making per pool.
    pub(crate) fn needed(slots: u32, pools: usize, pool_size: usize) -> u32 {
        let pooled = pools.saturating_mul(pool_size.saturating_add(1));
        slots
            .saturating_mul(2)
            .saturating_add(u32::try_from(pooled).unwrap_or(u32::MAX))
    }

    /// A free uid, waiting for one to come back when none is.
    pub(crate) async fn lease(&self) -> u32 {
        loop {
            let returned = self.returned.notified();
            tokio::pin!(returned);
            returned.as_mut().enable();
            if let Some(uid) = self.try_lease() {
                return uid;
            }
            tracing::warn!("every job uid is in use; waiting for a container's removal");
            returned.await;
        }
    }

    pub(crate) fn try_lease(&self) -> Option<u32> {
        self.lock().pop_front()
    }

    /// Gives a uid back: its container is gone (or was never made).
    pub(crate) fn give_back(&self, uid: u32) {
        self.lock().push_back(uid);
        self.returned.notify_one();
    }

    /// Whether `uid` is one of this sandbox's.
    pub(crate) fn in_range(&self, uid: u32) -> bool {
        (self.first..self.first + self.count).contains(&uid)
    }

    #[cfg(test)]
    fn free(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<u32>> {
        self.free.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn each_uid_is_leased_once_and_reused_last() {
        let uids = Uids::new(60_000, 3);
        let a = uids.try_lease().unwrap();
        let b = uids.try_lease().unwrap();
        let c = uids.try_lease().unwrap();
        assert_eq!([a, b, c], [60_000, 60_001, 60_002]);
        assert_eq!(uids.try_lease(), None);
        uids.give_back(b);
        uids.give_back(a);
        assert_eq!(uids.try_lease(), Some(b));
        assert_eq!(uids.free(), 1);
        assert!(uids.in_range(60_002) && !uids.in_range(60_003) && !uids.in_range(59_999));
    }

    #[test]
    fn enough_for_every_live_container() {
        assert_eq!(Uids::needed(50, 2, 4), 110);
        assert_eq!(Uids::needed(1, 0, 4), 2);
    }

    #[tokio::test]
    async fn a_lease_waits_for_a_uid_to_come_back() {
        let uids = Arc::new(Uids::new(7, 1));
        let only = uids.lease().await;
        let waiting = tokio::spawn({
            let uids = uids.clone();
            async move { uids.lease().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "no uid was free");
        uids.give_back(only);
        assert_eq!(waiting.await.unwrap(), 7);
    }
}
