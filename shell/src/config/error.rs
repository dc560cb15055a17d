//! Configuration errors.

/// Why the configuration could not be loaded, and what to do about it.
#[derive(Debug)]
pub struct ConfigError {
    /// What was wrong: the file, or the option with its value, origin and the
    /// accepted form.
    message: String,
    /// What to do (`keylet doctor` prints it as the fix).
    pub(crate) fix: String,
}

impl ConfigError {
    /// An error saying `message`, fixed by `fix`.
    pub(crate) fn new(message: String, fix: impl Into<String>) -> Self {
        let fix = fix.into();
        Self { message, fix }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}
