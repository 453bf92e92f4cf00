//! `den bench sandbox` (filled in below).
