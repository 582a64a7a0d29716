//! AFL++ entry point for the `request_target` target; the property lives in `egress_guard_fuzz::request_target`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        egress_guard_fuzz::request_target::check(data);
    });
}
