//! Agent API versions: which ones keylet serves and how they appear in paths.

use std::fmt;

/// An agent API version `major.minor` (e.g. 2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub(crate) major: u8,
    pub(crate) minor: u8,
}

impl ApiVersion {
    /// Every pull-mode version keylet implements, oldest first. 3.0 (push
    /// mode) is deliberately absent: the verifier would renegotiate onto it.
    pub(crate) const SUPPORTED: [Self; 6] = [
        Self::new(2, 1),
        Self::new(2, 2),
        Self::new(2, 3),
        Self::new(2, 4),
        Self::new(2, 5),
        Self::new(2, 6),
    ];

    #[must_use]
    pub const fn new(major: u8, minor: u8) -> Self {
        Self { major, minor }
    }

    /// Parses `"2.6"`; `None` unless it is two decimal numbers written
    /// canonically (no sign, no leading zeros).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (major, minor) = text.split_once('.')?;
        Some(Self::new(canonical_u8(major)?, canonical_u8(minor)?))
    }

    pub(crate) fn from_path_segment(segment: &str) -> Option<Self> {
        Self::parse(segment.strip_prefix('v')?)
    }

    /// Whether `/agent/info` exists in this version (2.2 and later).
    pub(crate) fn has_agent_info(self) -> bool {
        self >= Self::new(2, 2)
    }
}

fn canonical_u8(s: &str) -> Option<u8> {
    let v: u8 = s.parse().ok()?;
    (v.to_string() == s).then_some(v)
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The API versions the server answers to, oldest first, never empty, and how
/// many of them (the oldest) `GET /version` offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersions {
    served: Vec<ApiVersion>,
    offered: usize,
}

impl ApiVersions {
    fn served(served: Vec<ApiVersion>) -> Self {
        let offered = served.len();
        Self { served, offered }
    }

    /// The given versions, sorted and de-duplicated; `None` if the list is
    /// empty or holds a version outside [`ApiVersion::SUPPORTED`].
    #[must_use]
    pub fn new(versions: impl IntoIterator<Item = ApiVersion>) -> Option<Self> {
        let mut list: Vec<ApiVersion> = versions.into_iter().collect();
        list.sort_unstable();
        list.dedup();
        let known = list.iter().all(|v| ApiVersion::SUPPORTED.contains(v));
        (known && !list.is_empty()).then(|| Self::served(list))
    }

    /// The configuration's `(major, minor)` list; all of keylet's versions if
    /// it holds none keylet implements (the config parser already warned).
    pub(crate) fn from_config(enabled: &[(u8, u8)]) -> Self {
        let enabled = enabled
            .iter()
            .map(|&(major, minor)| ApiVersion::new(major, minor));
        Self::new(enabled).unwrap_or_default()
    }

    /// The versions keylet offers the tenant and verifier in `GET /version`,
    /// and why (for the log and `keylet doctor`). An explicit `api_versions`
    /// (`pinned`) is offered as is. Unset, nothing newer than `registrar` (the
    /// registrar's own version, learned at registration) is offered: tenants
    /// and verifiers before Keylime 7.14 take the agent's newest version without
    /// checking that they speak it, then refuse what they do not understand
    /// (7.12 refuses the `rsa2048` of API 2.5). Every enabled version is still
    /// served, so a verifier that stored a newer one keeps working.
    #[must_use]
    pub fn offer(self, pinned: bool, registrar: ApiVersion) -> (Self, String) {
        let up_to_registrar = self.served.iter().filter(|v| **v <= registrar).count();
        let capped = match up_to_registrar {
            n if pinned || n == 0 => Self::served(self.served),
            offered => Self { offered, ..self },
        };
        let offering = range(capped.offered());
        let why = if pinned {
            format!("offering agent API versions {offering} (api_versions)")
        } else {
            format!(
                "offering agent API versions {offering} (api_versions unset: none newer than the \
                 registrar's API {registrar}, as Keylime tenants and verifiers before 7.14 use \
                 the newest offered version without checking that they speak it; serving {}; \
                 set api_versions to offer others)",
                range(&capped.served)
            )
        };
        (capped, why)
    }

    /// The versions `GET /version` offers, never empty.
    pub(crate) fn offered(&self) -> &[ApiVersion] {
        self.served.get(..self.offered).unwrap_or(&self.served)
    }

    pub(crate) fn contains(&self, v: ApiVersion) -> bool {
        self.served.contains(&v)
    }

    /// The served versions, oldest first.
    pub(crate) fn as_slice(&self) -> &[ApiVersion] {
        &self.served
    }
}

/// `2.1 to 2.6`, or `2.6`, or `2.1, 2.6`: a list for messages.
fn range(list: &[ApiVersion]) -> String {
    let contiguous = list
        .windows(2)
        .all(|w| matches!(w, [a, b] if a.major == b.major && a.minor + 1 == b.minor));
    match list {
        [first, .., last] if contiguous => format!("{first} to {last}"),
        _ => list
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

impl Default for ApiVersions {
    fn default() -> Self {
        Self::served(ApiVersion::SUPPORTED.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_canonical_versions() {
        assert_eq!(ApiVersion::parse("2.6"), Some(ApiVersion::new(2, 6)));
        assert_eq!(
            ApiVersion::from_path_segment("v3.0"),
            Some(ApiVersion::new(3, 0))
        );
        for bad in ["2", "2.06", "+2.6", "2.6.1", "v2.6", "2.x", ""] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad}");
        }
        assert_eq!(ApiVersion::from_path_segment("2.6"), None);
    }

    #[test]
    fn enabled_list_is_checked_sorted_and_deduplicated() {
        let [v25, v26] = [ApiVersion::new(2, 5), ApiVersion::new(2, 6)];
        let v = ApiVersions::new([v26, v25, v26]);
        assert_eq!(v.as_ref().map(ApiVersions::as_slice), Some(&[v25, v26][..]));
        assert_eq!(ApiVersions::new([]), None);
        assert_eq!(ApiVersions::new([ApiVersion::new(3, 0)]), None);
        assert_eq!(ApiVersions::default().as_slice().last(), Some(&v26));
    }

    #[test]
    fn unset_api_versions_offer_nothing_newer_than_the_registrar_but_serve_all() {
        let (v, why) = ApiVersions::default().offer(false, ApiVersion::new(2, 3));
        assert_eq!(v.offered().last(), Some(&ApiVersion::new(2, 3)));
        assert_eq!(v.offered(), &ApiVersion::SUPPORTED[..3]);
        assert!(v.contains(ApiVersion::new(2, 6)), "2.6 is still served");
        assert!(
            why.contains("2.1 to 2.3") && why.contains("registrar's API 2.3"),
            "{why}"
        );
        // A registrar newer than keylet: everything is offered.
        let (v, _) = ApiVersions::default().offer(false, ApiVersion::new(2, 9));
        assert_eq!(v.offered().last(), Some(&ApiVersion::new(2, 6)));
        // One older than all of keylet's: still offers something.
        let (v, _) = ApiVersions::default().offer(false, ApiVersion::new(2, 0));
        assert_eq!(v.offered(), ApiVersion::SUPPORTED.as_slice());
    }

    #[test]
    fn an_explicit_api_versions_is_offered_as_is() {
        let both = [ApiVersion::new(2, 4), ApiVersion::new(2, 6)];
        let pinned = ApiVersions::new(both).unwrap();
        let (v, why) = pinned.offer(true, ApiVersion::new(2, 3));
        assert_eq!(v.offered(), &both[..]);
        assert!(why.contains("2.4, 2.6 (api_versions)"), "{why}");
    }
}
