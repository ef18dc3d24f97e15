//! A `DynamicValue.msgpack` against a schema's type (selector byte, then msgpack).
//! The harness is `paved::fuzz_logic::dynamic_value_msgpack`.
#![no_main]

#[global_allocator]
static ALLOC: paved_fuzz::LimitedAlloc = paved_fuzz::LimitedAlloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| paved::fuzz_logic::dynamic_value_msgpack(data));
