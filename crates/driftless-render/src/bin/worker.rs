//! A render worker process: evaluates one Jsonnet request from stdin within
//! the limits it names (see `driftless_render::run_worker`).

fn main() -> std::process::ExitCode {
    driftless_render::run_worker()
}
