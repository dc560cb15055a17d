//! The connections that wait for their first byte, TLS handshake, request
//! head or a serving slot. At the cap, a newcomer is let in and the oldest
//! waiting connection of the source holding the most is dropped, so idle
//! clients lose their place as soon as anyone else needs it (no fixed deadline
//! to wait out) and one address cannot crowd out the others.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// Where a connection comes from, for fairness between sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Source {
    Ip(IpAddr),
    /// A peer's uid on the identity listener's Unix socket.
    Uid(u32),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Uid(uid) => write!(f, "uid {uid}"),
        }
    }
}

/// Shared by an accept loop and its connections.
#[derive(Debug)]
pub(crate) struct Pending {
    cap: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    /// Wakes the connection's task when it is evicted.
    evict: HashMap<u64, Arc<Notify>>,
    /// Waiting connections by source, oldest (lowest id) first.
    by_source: BTreeMap<Source, BTreeSet<u64>>,
}

impl Inner {
    fn remove(&mut self, source: Source, id: u64) -> Option<Arc<Notify>> {
        if let Some(ids) = self.by_source.get_mut(&source) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_source.remove(&source);
            }
        }
        self.evict.remove(&id)
    }

    /// Evicts the oldest connection of the source holding the most (of
    /// two sources holding as many, the one with the older connection).
    fn evict(&mut self) -> Option<Source> {
        let (source, id) = self
            .by_source
            .iter()
            .max_by_key(|(_, ids)| (ids.len(), Reverse(ids.first())))
            .and_then(|(source, ids)| ids.first().map(|id| (*source, *id)))?;
        self.remove(source, id)?.notify_one();
        Some(source)
    }
}

/// A waiting connection's place. Dropping it (the connection ended) or
/// [`Ticket::served`] gives the place up.
#[derive(Debug)]
pub(crate) struct Ticket {
    pending: Arc<Pending>,
    source: Source,
    id: u64,
}

impl Pending {
    pub(crate) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap: cap.max(1),
            inner: Mutex::new(Inner::default()),
        })
    }

    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().evict.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection from `source`, evicting another one (whose source
    /// is returned) at the cap. The [`Notify`] tells the connection it is
    /// evicted (a permit kept until it waits); once served, never.
    pub(crate) fn admit(self: &Arc<Self>, source: Source) -> (Ticket, Arc<Notify>, Option<Source>) {
        let evicted = Arc::new(Notify::new());
        let mut inner = self.lock();
        let victim = (inner.evict.len() >= self.cap)
            .then(|| inner.evict())
            .flatten();
        let id = inner.next;
        inner.next += 1;
        inner.evict.insert(id, Arc::clone(&evicted));
        inner.by_source.entry(source).or_default().insert(id);
        drop(inner);
        let ticket = Ticket {
            pending: Arc::clone(self),
            source,
            id,
        };
        (ticket, evicted, victim)
    }

    /// Evicts the oldest waiting connection of the busiest source (to free
    /// a file descriptor); returns its source.
    pub(crate) fn evict_oldest(&self) -> Option<Source> {
        self.lock().evict()
    }
}

impl Ticket {
    /// The connection is being served: it can no longer be evicted.
    pub(crate) fn served(&self) {
        self.pending.lock().remove(self.source, self.id);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.served();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Source {
        Source::Ip(IpAddr::from([127, 0, 0, last]))
    }

    fn is_evicted(e: &Notify) -> bool {
        std::pin::pin!(e.notified()).enable()
    }

    #[test]
    fn the_heaviest_sources_oldest_connection_makes_room() {
        let pending = Pending::new(4);
        let (_a1, e_a1, none) = pending.admit(ip(1));
        assert_eq!(none, None);
        let (_b1, e_b1, _) = pending.admit(ip(2));
        let (_b2, e_b2, _) = pending.admit(ip(2));
        let (_a2, e_a2, _) = pending.admit(ip(1));
        assert_eq!(pending.len(), 4);
        // Full; both sources hold two: the older of the heaviest goes.
        let (_c1, _, evicted) = pending.admit(ip(3));
        assert_eq!(evicted, Some(ip(1)));
        assert!(is_evicted(&e_a1));
        assert!(!is_evicted(&e_a2));
        // Now 127.0.0.2 holds the most.
        let (_c2, _, evicted) = pending.admit(ip(3));
        assert_eq!(evicted, Some(ip(2)));
        assert!(is_evicted(&e_b1));
        assert!(!is_evicted(&e_b2));
        assert_eq!(pending.len(), 4);
    }

    #[test]
    fn served_and_ended_connections_give_their_place_up() {
        let pending = Pending::new(2);
        let (a, e_a, _) = pending.admit(ip(1));
        let (b, _, _) = pending.admit(ip(1));
        a.served();
        assert_eq!(pending.len(), 1);
        drop(b);
        assert_eq!(pending.len(), 0);
        let (_c, _, evicted) = pending.admit(ip(1));
        let (_d, _, evicted2) = pending.admit(ip(1));
        assert_eq!((evicted, evicted2), (None, None));
        // A served connection is never told it was evicted.
        assert!(!is_evicted(&e_a));
        drop(a);
        assert_eq!(pending.len(), 2);
    }
}
