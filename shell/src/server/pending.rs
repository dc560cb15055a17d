//! The connections that wait to be served: accepted, but still waiting for
//! their first byte, TLS handshake, request head or a serving slot. Their
//! number is capped; when the cap is reached, a newcomer is let in and the
//! oldest waiting connection of the source holding the most is dropped, so
//! idle clients lose their place as soon as anyone else needs it (no fixed
//! deadline to wait out) and one address cannot crowd out the others.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

/// Where a connection comes from, for fairness between sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Source {
    /// A TCP peer's address.
    Ip(IpAddr),
    /// A Unix socket peer's uid (the identity listener's socket).
    #[cfg_attr(not(feature = "identity"), allow(dead_code))]
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

/// The waiting connections, shared by an accept loop and its connections.
#[derive(Debug)]
pub(crate) struct Pending {
    cap: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    /// Wakes the connection's task when it is evicted.
    evict: HashMap<u64, oneshot::Sender<()>>,
    /// Waiting connections by source, oldest (lowest id) first.
    by_source: BTreeMap<Source, BTreeSet<u64>>,
}

impl Inner {
    fn remove(&mut self, source: Source, id: u64) -> Option<oneshot::Sender<()>> {
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
            .max_by(|a, b| {
                a.1.len()
                    .cmp(&b.1.len())
                    .then(b.1.first().cmp(&a.1.first()))
            })
            .and_then(|(source, ids)| ids.first().map(|id| (*source, *id)))?;
        let wake = self.remove(source, id)?;
        // An error means that connection has just ended by itself.
        let _ = wake.send(());
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

/// Resolves when the connection holding the matching ticket is evicted.
#[derive(Debug)]
pub(crate) struct Evicted(Option<oneshot::Receiver<()>>);

impl Evicted {
    /// Waits until the connection is evicted; never resolves once it is
    /// served or has ended. May be called again after being cancelled.
    pub(crate) async fn wait(&mut self) {
        if let Some(rx) = self.0.as_mut() {
            if rx.await.is_ok() {
                return;
            }
            // Served: the receiver must not be polled again.
            self.0 = None;
        }
        std::future::pending::<()>().await;
    }
}

impl Pending {
    /// At most `cap` (at least 1) waiting connections.
    pub(crate) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap: cap.max(1),
            inner: Mutex::new(Inner::default()),
        })
    }

    /// The cap.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// How many connections wait now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().evict.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection from `source`, evicting another waiting one if
    /// the cap is reached (whose source is returned).
    pub(crate) fn admit(self: &Arc<Self>, source: Source) -> (Ticket, Evicted, Option<Source>) {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        let evicted = (inner.evict.len() >= self.cap)
            .then(|| inner.evict())
            .flatten();
        let id = inner.next;
        inner.next += 1;
        inner.evict.insert(id, tx);
        inner.by_source.entry(source).or_default().insert(id);
        drop(inner);
        let ticket = Ticket {
            pending: Arc::clone(self),
            source,
            id,
        };
        (ticket, Evicted(Some(rx)), evicted)
    }

    /// Evicts the oldest waiting connection of the busiest source (to free
    /// a file descriptor); returns its source, or `None` if none waits.
    pub(crate) fn evict_oldest(&self) -> Option<Source> {
        self.lock().evict()
    }
}

impl Ticket {
    /// The connection is being served: it no longer waits, and can no
    /// longer be evicted.
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
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(last: u8) -> Source {
        Source::Ip(IpAddr::from([127, 0, 0, last]))
    }

    fn is_evicted(e: &mut Evicted) -> bool {
        e.0.as_mut().is_some_and(|rx| rx.try_recv().is_ok())
    }

    #[test]
    fn the_heaviest_sources_oldest_connection_makes_room() {
        let pending = Pending::new(4);
        let (_a1, mut e_a1, none) = pending.admit(ip(1));
        assert_eq!(none, None);
        let (_b1, mut e_b1, _) = pending.admit(ip(2));
        let (_b2, mut e_b2, _) = pending.admit(ip(2));
        let (_a2, mut e_a2, _) = pending.admit(ip(1));
        assert_eq!(pending.len(), 4);
        // Full; both sources hold two: the older of the heaviest goes.
        let (_c1, _, evicted) = pending.admit(ip(3));
        assert_eq!(evicted, Some(ip(1)));
        assert!(is_evicted(&mut e_a1));
        assert!(!is_evicted(&mut e_a2));
        // Now 127.0.0.2 holds the most.
        let (_c2, _, evicted) = pending.admit(ip(3));
        assert_eq!(evicted, Some(ip(2)));
        assert!(is_evicted(&mut e_b1));
        assert!(!is_evicted(&mut e_b2));
        assert_eq!(pending.len(), 4);
    }

    #[test]
    fn served_and_ended_connections_give_their_place_up() {
        let pending = Pending::new(2);
        let (a, mut e_a, _) = pending.admit(ip(1));
        let (b, _, _) = pending.admit(ip(1));
        a.served();
        assert_eq!(pending.len(), 1);
        drop(b);
        assert_eq!(pending.len(), 0);
        let (_c, _, evicted) = pending.admit(ip(1));
        let (_d, _, evicted2) = pending.admit(ip(1));
        assert_eq!((evicted, evicted2), (None, None));
        // A served connection is never told it was evicted.
        assert!(!is_evicted(&mut e_a));
        drop(a);
        assert_eq!(pending.len(), 2);
    }
}
