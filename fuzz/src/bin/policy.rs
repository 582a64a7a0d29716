//! AFL++ entry point for the `policy` target; the property lives in `egress_guard_fuzz::policy`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        egress_guard_fuzz::policy::check(data);
    });
}
