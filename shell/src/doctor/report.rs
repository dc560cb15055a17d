//! The doctor's findings: one line per check, as text for people and JSON
//! for machines, and the exit code they add up to.

use std::fmt::Write as _;

/// How one check came out: WARN, attestation can work but something deserves
/// attention; FAIL, this stops registration or attestation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Status {
    #[default]
    Ok,
    Warn,
    Fail,
}

impl Status {
    /// As in the text report (lowercase in JSON).
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
        }
    }
}

/// What a check found: its status, the detail and the fix (empty when OK).
pub(crate) type Finding = (Status, String, String);

/// A check's outcome: OK with what was found, or a WARN or FAIL finding.
pub(crate) type Outcome = Result<String, Finding>;

pub(crate) fn warn(detail: impl Into<String>, fix: impl Into<String>) -> Finding {
    (Status::Warn, detail.into(), fix.into())
}

pub(crate) fn fail(detail: impl Into<String>, fix: impl Into<String>) -> Finding {
    (Status::Fail, detail.into(), fix.into())
}

/// All checks of one doctor run, in the order they ran: each check's stable
/// name, e.g. `tpm.device` (scripts match on it), and its finding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) checks: Vec<(&'static str, Finding)>,
}

/// Exit codes: a check failed; the configuration (or the command line) is unusable.
pub(crate) const EXIT_FAIL: u8 = 1;
pub(crate) const EXIT_CONFIG: u8 = 2;

impl Report {
    pub(crate) fn add(&mut self, name: &'static str, outcome: Outcome) {
        let finding = outcome.map_or_else(|f| f, |detail| (Status::Ok, detail, String::new()));
        self.checks.push((name, finding));
    }

    /// The worst status seen (OK for an empty report).
    fn worst(&self) -> Status {
        let statuses = self.checks.iter().map(|(_, (status, ..))| *status);
        statuses.max().unwrap_or_default()
    }

    /// 0 when nothing failed (warnings included), else `EXIT_FAIL`, or
    /// `EXIT_CONFIG` when the configuration could not be loaded (nothing else
    /// was checked then).
    #[must_use]
    pub(crate) fn exit_code(&self) -> u8 {
        let unusable = |(name, f): &(_, Finding)| *name == "config" && f.0 == Status::Fail;
        if self.checks.iter().any(unusable) {
            EXIT_CONFIG
        } else {
            u8::from(self.worst() == Status::Fail)
        }
    }

    /// One line per check: `STATUS name: detail; fix: ...`, then a summary.
    #[must_use]
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        for (name, (status, detail, fix)) in &self.checks {
            let _ = write!(out, "{:<4} {name}: {detail}", status.label());
            if !fix.is_empty() {
                let _ = write!(out, "; fix: {fix}");
            }
            out.push('\n');
        }
        let count = |s| self.checks.iter().filter(|(_, f)| f.0 == s).count();
        let (ok, warn, fail) = (count(Status::Ok), count(Status::Warn), count(Status::Fail));
        let _ = writeln!(out, "{ok} OK, {warn} WARN, {fail} FAIL");
        out
    }

    /// `{"keylet", "status", "exit_code", "checks": [{"name", "status", "detail", "fix"}]}`.
    #[must_use]
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let status = |s: Status| s.label().to_ascii_lowercase();
        let checks: Vec<serde_json::Value> = self
            .checks
            .iter()
            .map(|(name, (s, detail, fix))| {
                serde_json::json!({
                    "name": name, "status": status(*s), "detail": detail, "fix": fix
                })
            })
            .collect();
        serde_json::json!({
            "keylet": env!("CARGO_PKG_VERSION"),
            "status": status(self.worst()),
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
        r.add("a", Ok("fine".into()));
        r.add("b", Err(warn("soon", "renew")));
        assert_eq!(r.exit_code(), 0);
        r.add("c", Err(fail("broken", "repair")));
        assert_eq!(r.exit_code(), EXIT_FAIL);
        r.add("config", Err(fail("unreadable", "repair")));
        assert_eq!(r.exit_code(), EXIT_CONFIG);
    }

    #[test]
    fn text_has_one_line_per_check_with_its_fix() {
        let mut r = Report::default();
        r.add("tpm.device", Ok("swtpm answers".into()));
        r.add("keys.nk", Err(fail("mode 0644", "chmod 600 /x")));
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
