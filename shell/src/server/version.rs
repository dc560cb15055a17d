//! Agent API versions: which ones keylet serves and how they appear in paths.

use std::fmt;

/// An agent API version `major.minor` (e.g. 2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// The major number.
    pub major: u8,
    /// The minor number.
    pub minor: u8,
}

impl ApiVersion {
    /// Every pull-mode version keylet implements, oldest first. 3.0 (push
    /// mode) is deliberately absent: the verifier would renegotiate onto it.
    pub const SUPPORTED: [Self; 6] = [
        Self::new(2, 1),
        Self::new(2, 2),
        Self::new(2, 3),
        Self::new(2, 4),
        Self::new(2, 5),
        Self::new(2, 6),
    ];

    /// The version `major.minor`.
    #[must_use]
    pub const fn new(major: u8, minor: u8) -> Self {
        Self { major, minor }
    }

    /// Parses `"2.6"`; `None` unless it is two decimal numbers written
    /// canonically (no sign, no leading zeros).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let (major, minor) = text.split_once('.')?;
        let v = Self::new(canonical_u8(major)?, canonical_u8(minor)?);
        Some(v)
    }

    /// Parses a path segment `"v2.6"`.
    #[must_use]
    pub fn from_path_segment(segment: &str) -> Option<Self> {
        Self::parse(segment.strip_prefix('v')?)
    }

    /// Whether `/agent/info` exists in this version (2.2 and later).
    #[must_use]
    pub fn has_agent_info(self) -> bool {
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

/// A configured version is not one keylet implements, or none was enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VersionError {
    /// No API version is enabled.
    Empty,
    /// The version is not one of [`ApiVersion::SUPPORTED`].
    Unsupported(ApiVersion),
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("no agent API version is enabled; enable at least 2.6"),
            Self::Unsupported(v) => write!(
                f,
                "agent API version {v} is not supported; keylet serves 2.1 to 2.6"
            ),
        }
    }
}

impl std::error::Error for VersionError {}

/// The API versions the server answers to, oldest first, never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersions(Vec<ApiVersion>);

impl ApiVersions {
    /// All of [`ApiVersion::SUPPORTED`].
    #[must_use]
    pub fn all() -> Self {
        Self(ApiVersion::SUPPORTED.to_vec())
    }

    /// The given versions, sorted and de-duplicated.
    ///
    /// # Errors
    ///
    /// [`VersionError::Empty`] for an empty list, [`VersionError::Unsupported`]
    /// for a version outside [`ApiVersion::SUPPORTED`].
    pub fn new(versions: impl IntoIterator<Item = ApiVersion>) -> Result<Self, VersionError> {
        let mut list: Vec<ApiVersion> = versions.into_iter().collect();
        if let Some(bad) = list.iter().find(|v| !ApiVersion::SUPPORTED.contains(v)) {
            return Err(VersionError::Unsupported(*bad));
        }
        list.sort_unstable();
        list.dedup();
        if list.is_empty() {
            return Err(VersionError::Empty);
        }
        Ok(Self(list))
    }

    /// Whether `v` is enabled.
    #[must_use]
    pub fn contains(&self, v: ApiVersion) -> bool {
        self.0.contains(&v)
    }

    /// The newest enabled version.
    #[must_use]
    pub fn latest(&self) -> ApiVersion {
        self.0.last().copied().unwrap_or(ApiVersion::new(2, 6))
    }

    /// The enabled versions, oldest first.
    #[must_use]
    pub fn as_slice(&self) -> &[ApiVersion] {
        &self.0
    }
}

impl Default for ApiVersions {
    fn default() -> Self {
        Self::all()
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
        let v = ApiVersions::new([
            ApiVersion::new(2, 6),
            ApiVersion::new(2, 5),
            ApiVersion::new(2, 6),
        ]);
        assert_eq!(
            v.as_ref().map(ApiVersions::as_slice),
            Ok(&[ApiVersion::new(2, 5), ApiVersion::new(2, 6)][..])
        );
        assert_eq!(ApiVersions::new([]), Err(VersionError::Empty));
        assert_eq!(
            ApiVersions::new([ApiVersion::new(3, 0)]),
            Err(VersionError::Unsupported(ApiVersion::new(3, 0)))
        );
        assert_eq!(ApiVersions::all().latest(), ApiVersion::new(2, 6));
    }
}
