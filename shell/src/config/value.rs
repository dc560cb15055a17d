//! Checking raw option values into typed ones. Every failure names the
//! option, the value, where it came from and the accepted form.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::ConfigError;
use super::source::{Origin, RawConfig, RawValue, Sourced};

/// Typed access to a [`RawConfig`], falling back to built-in defaults, with
/// `keylime_dir` (absolute: the base of relative file options), the warnings
/// so far and the options looked up: those are the options keylet knows.
#[derive(Debug)]
pub(crate) struct Values<'a> {
    raw: &'a RawConfig,
    pub(crate) dir: PathBuf,
    warnings: RefCell<Vec<String>>,
    read: RefCell<BTreeSet<String>>,
}

impl<'a> Values<'a> {
    /// Wraps the raw values, reading `keylime_dir` first (it must be absolute).
    pub(crate) fn new(raw: &'a RawConfig) -> Result<Self, ConfigError> {
        let mut v = Self {
            raw,
            dir: PathBuf::new(),
            warnings: RefCell::default(),
            read: RefCell::default(),
        };
        v.dir = PathBuf::from(v.string("keylime_dir", "/var/lib/keylime")?);
        if !v.dir.is_absolute() {
            return Err(v.error("keylime_dir", "an absolute directory path"));
        }
        Ok(v)
    }

    fn get(&self, option: &str) -> Option<&'a Sourced> {
        self.known(&[option]);
        self.raw.values.get(option)
    }

    /// Counts `options` as read: options keylet knows but reads only in some configurations.
    pub(crate) fn known(&self, options: &[&str]) {
        let mut read = self.read.borrow_mut();
        read.extend(options.iter().map(|o| (*o).to_owned()));
    }

    pub(crate) fn warn(&self, warning: String) {
        self.warnings.borrow_mut().push(warning);
    }

    /// The options read and the warnings.
    pub(crate) fn finish(self) -> (BTreeSet<String>, Vec<String>) {
        (self.read.into_inner(), self.warnings.into_inner())
    }

    /// Fails with the option named, its value and origin, and `expected`.
    #[must_use]
    pub(crate) fn error(&self, option: &str, expected: &str) -> ConfigError {
        let sourced = self.get(option);
        let value = sourced.map(|s| s.value.to_string()).unwrap_or_default();
        let origin = sourced.map_or(Origin::Default, |s| s.origin.clone());
        ConfigError::new(
            format!("option {option} = {value} (from {origin}) is not valid: expected {expected}"),
            format!("correct the value in {origin}"),
        )
    }

    /// A string option (integers and booleans are accepted as their text;
    /// arrays, tables and the like are not).
    pub(crate) fn string(&self, option: &str, default: &str) -> Result<String, ConfigError> {
        match self.get(option).map(|s| &s.value) {
            None => Ok(default.to_string()),
            Some(RawValue::Str(s)) => Ok(s.trim().to_string()),
            Some(v @ (RawValue::Int(_) | RawValue::Bool(_))) => Ok(v.to_string()),
            Some(RawValue::Other(_)) => Err(self.error(option, "a string")),
        }
    }

    /// A string option (read as [`Values::string`]) turned into a `T` by `parse`, which returns
    /// `None` for a value that is not of the `expected` form: the error names it.
    pub(crate) fn parse<T>(
        &self,
        option: &str,
        default: &str,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        parse(&self.string(option, default)?).ok_or_else(|| self.error(option, expected))
    }

    /// A boolean option: TOML booleans, or `true`/`false`/`yes`/`no`/`1`/`0`/`on`/`off`.
    pub(crate) fn boolean(&self, option: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(option).map(|s| &s.value) {
            None => Ok(default),
            Some(RawValue::Bool(b)) => Ok(*b),
            Some(RawValue::Str(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "on" => Ok(true),
                "false" | "no" | "0" | "off" => Ok(false),
                _ => Err(self.error(option, "true or false")),
            },
            Some(_) => Err(self.error(option, "true or false")),
        }
    }

    pub(crate) fn integer(
        &self,
        option: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let n = match self.get(option).map(|s| &s.value) {
            None => return Ok(default),
            Some(RawValue::Int(i)) => u64::try_from(*i).ok(),
            Some(RawValue::Str(s)) => s.trim().parse::<u64>().ok(),
            Some(_) => None,
        };
        n.filter(|n| range.contains(n)).ok_or_else(|| {
            let (from, to) = range.into_inner();
            self.error(option, &format!("a whole number from {from} to {to}"))
        })
    }

    pub(crate) fn port(&self, option: &str, default: u16) -> Result<u16, ConfigError> {
        let n = self.integer(option, u64::from(default), 1..=65535)?;
        Ok(u16::try_from(n).unwrap_or(default))
    }

    /// A file path with Keylime's keywords: `default` (or empty, with a
    /// warning) → `default_name` under `base`; relative → under `base`.
    pub(crate) fn path(
        &self,
        option: &str,
        base: &Path,
        default_name: &str,
    ) -> Result<PathBuf, ConfigError> {
        let s = self.string(option, "default")?;
        if s.is_empty() {
            self.warn(format!(
                "option {option} is empty; using the default {default_name} (set it to \"default\" to silence this)"
            ));
        }
        Ok(base.join(match s.as_str() {
            "" | "default" => default_name,
            s => s,
        }))
    }

    /// A comma-separated list of paths under `keylime_dir` (`default` is `default_name`).
    pub(crate) fn path_list(
        &self,
        option: &str,
        default_name: &str,
    ) -> Result<Vec<PathBuf>, ConfigError> {
        let s = self.string(option, "default")?;
        let mut paths: Vec<PathBuf> = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| self.dir.join(if p == "default" { default_name } else { p }))
            .collect();
        if paths.is_empty() {
            paths.push(self.dir.join(default_name));
        }
        Ok(paths)
    }
}
