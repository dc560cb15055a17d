//! Secrets keylet holds in memory (passwords, bearer tokens): wiped when
//! dropped, and never printed, so a `{:?}` of a struct that holds one cannot
//! put it in a log.

use std::fmt;
use std::ops::Deref;

use zeroize::{Zeroize, Zeroizing};

/// A secret `T`, wiped on drop; its `Debug` says only that it is there.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T: Zeroize>(Zeroizing<T>);

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(Zeroizing::new(value))
    }
}

impl<T: Zeroize> From<Zeroizing<T>> for Secret<T> {
    fn from(value: Zeroizing<T>) -> Self {
        Self(value)
    }
}

impl<T: Zeroize> Deref for Secret<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new(String::from("hunter2"));
        assert_eq!(
            format!("{s:?} {:?}", Some(&s)),
            "Secret(..) Some(Secret(..))"
        );
        assert_eq!(s.as_str(), "hunter2");
    }
}
