//! AFL++ entry point for the `framing` target; the property lives in `egress_guard_fuzz::framing`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        egress_guard_fuzz::framing::check(data);
    });
}
