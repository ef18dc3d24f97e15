//! `RawState.json` / `DynamicValue.json` against a schema's type (selector byte, then JSON).
//! The harness is `paved::fuzz_logic::state_json`.
#![no_main]

#[global_allocator]
static ALLOC: paved_fuzz::LimitedAlloc = paved_fuzz::LimitedAlloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| paved::fuzz_logic::state_json(data));
