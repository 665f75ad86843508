//! Integration tests of the engine, compiled into one binary.

mod control;
mod queue;
mod retention;
mod runtime;
mod stops;
mod store;
