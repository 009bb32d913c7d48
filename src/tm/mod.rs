//! Transaction layer (RFC 3261 §17), being built in slices; this slice provides the timer facility.

pub mod key;
pub mod timer;
