//! The `deltadrop` binary: parse the command line, dispatch, map errors to exit codes.
fn main() {
    std::process::exit(deltadrop::cli::main());
}
