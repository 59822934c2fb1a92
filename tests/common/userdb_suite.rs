//! The backend-independent cases every user database must pass.
