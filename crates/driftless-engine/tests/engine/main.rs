//! Integration tests of the engine, compiled into one binary.

mod store;
