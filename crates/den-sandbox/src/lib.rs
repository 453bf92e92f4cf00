//! den-sandbox
