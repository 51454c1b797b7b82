//! Registry services.
