//! The link-time registry of event types: what `#[derive(Event)]`
//! submits for each type, read by the catalog and by migrations.

use super::CodecError;

/// The record `#[derive(Event)]` submits to the link-time registry.
///
/// Not meant to be built by hand.
#[doc(hidden)]
#[derive(Debug)]
pub struct EventRegistration {
    pub name: &'static str,
    pub rust_type: &'static str,
    pub version: u32,
    pub topics: &'static [&'static str],
    /// The JSON Schema of each topic's data, in the order of `topics`
    /// (empty without the `schema` feature).
    pub schemas: fn() -> Vec<serde_json::Value>,
    /// Reads data stored by any version this build knows and writes it as
    /// the current version.
    pub upgrade: UpgradeFn,
}

/// Upgrades one stored event's data: topic, stored version, data.
#[doc(hidden)]
pub type UpgradeFn = fn(&str, u32, &[u8]) -> Result<Vec<u8>, CodecError>;

inventory::collect!(EventRegistration);
