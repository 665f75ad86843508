//! Integration tests of the engine, compiled into one binary.

mod queue;
mod store;
