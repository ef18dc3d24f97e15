//! Every validator on a value of its schema built from the bytes (selector byte, then choices).
//! The harness is `paved::fuzz_logic::validators`.
#![no_main]

#[global_allocator]
static ALLOC: paved_fuzz::LimitedAlloc = paved_fuzz::LimitedAlloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| paved::fuzz_logic::validators(data));
