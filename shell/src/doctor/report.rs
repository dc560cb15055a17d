//! The doctor's findings: one line per check, as text for people and JSON
//! for machines, and the exit code they add up to.

use std::fmt::Write as _;

/// How one check came out (lowercase in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub(crate) enum Status {
    /// Nothing to do.
    Ok,
    /// Attestation can work, but something deserves attention.
    Warn,
    /// This stops registration or attestation; the fix says what to do.
    Fail,
}

impl Status {
    /// `OK`, `WARN` or `FAIL`.
    #[must_use]
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    /// A stable name, e.g. `tpm.device` (scripts match on it).
    pub(crate) name: &'static str,
    /// The outcome.
    pub(crate) status: Status,
    /// What was found.
    pub(crate) detail: String,
    /// What to do about it (empty when OK).
    pub(crate) fix: String,
}

impl Check {
    /// An OK result.
    #[must_use]
    pub(crate) fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Ok,
            detail: detail.into(),
            fix: String::new(),
        }
    }

    /// A WARN result with its fix.
    #[must_use]
    pub(crate) fn warn(
        name: &'static str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::with_fix(name, Status::Warn, detail.into(), fix.into())
    }

    /// A FAIL result with its fix.
    #[must_use]
    pub(crate) fn fail(
        name: &'static str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::with_fix(name, Status::Fail, detail.into(), fix.into())
    }

    fn with_fix(name: &'static str, status: Status, detail: String, fix: String) -> Self {
        Self {
            name,
            status,
            detail,
            fix,
        }
    }
}

/// All checks of one doctor run, in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Report {
    /// The checks.
    pub(crate) checks: Vec<Check>,
    /// The configuration could not be loaded: nothing else was checked.
    pub(crate) config_unusable: bool,
}

/// Exit code: every check OK or WARN.
pub(crate) const EXIT_OK: u8 = 0;
/// Exit code: at least one FAIL.
pub(crate) const EXIT_FAIL: u8 = 1;
/// Exit code: the configuration (or the command line) is unusable.
pub(crate) const EXIT_CONFIG: u8 = 2;

impl Report {
    /// Adds a check.
    pub(crate) fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// The worst status seen (OK for an empty report).
    #[must_use]
    pub(crate) fn worst(&self) -> Status {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Ok)
    }

    /// 0 when nothing failed (warnings included), 1 when a check failed,
    /// 2 when the configuration could not be loaded.
    #[must_use]
    pub(crate) fn exit_code(&self) -> u8 {
        if self.config_unusable {
            EXIT_CONFIG
        } else if self.worst() == Status::Fail {
            EXIT_FAIL
        } else {
            EXIT_OK
        }
    }

    /// One line per check: `STATUS name: detail; fix: ...`, then a summary.
    #[must_use]
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let _ = write!(out, "{:<4} {}: {}", c.status.label(), c.name, c.detail);
            if !c.fix.is_empty() {
                let _ = write!(out, "; fix: {}", c.fix);
            }
            out.push('\n');
        }
        let count = |s| self.checks.iter().filter(|c| c.status == s).count();
        let _ = writeln!(
            out,
            "{} OK, {} WARN, {} FAIL",
            count(Status::Ok),
            count(Status::Warn),
            count(Status::Fail)
        );
        out
    }

    /// `{"status", "exit_code", "checks": [{"name", "status", "detail", "fix"}]}`.
    #[must_use]
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let checks: Vec<serde_json::Value> = self
            .checks
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "status": c.status,
                    "detail": c.detail,
                    "fix": c.fix,
                })
            })
            .collect();
        serde_json::json!({
            "keylet": env!("CARGO_PKG_VERSION"),
            "status": self.worst(),
            "exit_code": self.exit_code(),
            "checks": checks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_exit_0_failures_1_config_2() {
        let mut r = Report::default();
        r.push(Check::ok("a", "fine"));
        r.push(Check::warn("b", "soon", "renew"));
        assert_eq!(r.exit_code(), EXIT_OK);
        r.push(Check::fail("c", "broken", "repair"));
        assert_eq!(r.exit_code(), EXIT_FAIL);
        r.config_unusable = true;
        assert_eq!(r.exit_code(), EXIT_CONFIG);
    }

    #[test]
    fn text_has_one_line_per_check_with_its_fix() {
        let mut r = Report::default();
        r.push(Check::ok("tpm.device", "swtpm answers"));
        r.push(Check::fail("keys.nk", "mode 0644", "chmod 600 /x"));
        let text = r.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "OK   tpm.device: swtpm answers");
        assert_eq!(lines[1], "FAIL keys.nk: mode 0644; fix: chmod 600 /x");
        assert_eq!(lines[2], "1 OK, 0 WARN, 1 FAIL");
        let json = r.to_json();
        assert_eq!(json["status"], "fail");
        assert_eq!(json["exit_code"], 1);
        assert_eq!(json["checks"][1]["fix"], "chmod 600 /x");
    }
}
