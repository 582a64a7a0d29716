//! AFL++ entry point for the `json_filter` target; the property lives in `egress_guard_fuzz::json_filter`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        egress_guard_fuzz::json_filter::check(data);
    });
}
