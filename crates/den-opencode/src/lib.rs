//! den-opencode
