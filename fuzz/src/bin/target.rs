//! AFL++ entry point for the `target` target; the property lives in `egress_guard_fuzz::target`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        egress_guard_fuzz::target::check(data);
    });
}
