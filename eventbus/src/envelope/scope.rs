//! Scopes: where in a hierarchy of buses an event was published.
//!
//! A scope is a path of names (`tenant-a/eu`) carried by the event as the
//! extension attribute `scope`, so every store and wire keeps it as it
//! keeps any header. A scoped bus publishes into its scope and sees its
//! scope and everything below it; the root bus sees everything.

use std::fmt;
use std::sync::Arc;

/// The extension attribute that carries an event's scope.
pub const SCOPE_HEADER: &str = "scope";

/// A validated scope path such as `tenant-a/eu`: names of 1 to 64 ASCII
/// letters, digits, `-`, `_` or `.`, joined by `/`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Scope(Arc<str>);

impl Scope {
    /// A scope from its path (`tenant-a` or `tenant-a/eu`).
    ///
    /// # Errors
    ///
    /// A message naming the offending name and what is valid.
    pub fn new(path: &str) -> Result<Self, String> {
        eventbus_topic::validate_scope(path)?;
        Ok(Scope(Arc::from(path)))
    }

    /// The scope `name` (or path `a/b`) below this one.
    ///
    /// # Errors
    ///
    /// As for [`Scope::new`].
    pub fn child(&self, name: &str) -> Result<Self, String> {
        Scope::new(&format!("{}/{name}", self.0))
    }

    /// The path, names joined by `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether an event published in `scope` (`None`: unscoped) is in this
    /// scope or below it.
    pub fn contains(&self, scope: Option<&str>) -> bool {
        scope.is_some_and(|s| {
            s.strip_prefix(&*self.0)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_contains_itself_and_what_is_below_it_only() {
        let a = Scope::new("tenant-a").unwrap();
        assert!(a.contains(Some("tenant-a")));
        assert!(a.contains(Some("tenant-a/eu")));
        assert!(!a.contains(Some("tenant-ab")));
        assert!(!a.contains(Some("tenant-b")));
        assert!(!a.contains(None));
        let eu = a.child("eu").unwrap();
        assert_eq!(eu.as_str(), "tenant-a/eu");
        assert!(!eu.contains(Some("tenant-a")));
        assert!(eu.contains(Some("tenant-a/eu/paris")));
    }

    #[test]
    fn malformed_scopes_are_refused_with_the_rule() {
        for bad in ["", "a//b", "/a", "a/", "a b", "ä", &"x".repeat(65)] {
            let err = Scope::new(bad).unwrap_err();
            assert!(err.contains("1 to 64 ASCII letters"), "{bad}: {err}");
        }
        assert!(Scope::new("a.b-c_d/E9").is_ok());
    }
}
