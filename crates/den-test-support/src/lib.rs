//! den-test-support
