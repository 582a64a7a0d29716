//! AFL++ entry point for the `form_filter` target; the property lives in `egress_guard_fuzz::form_filter`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        egress_guard_fuzz::form_filter::check(data);
    });
}
