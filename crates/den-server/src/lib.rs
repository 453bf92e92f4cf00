//! den-server
