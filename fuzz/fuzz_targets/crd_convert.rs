//! A managed resource's `spec.forProvider` and kept state (selector byte, then JSON).
//! The harness is `paved::fuzz_logic::crd_convert`.
#![no_main]

#[global_allocator]
static ALLOC: paved_fuzz::LimitedAlloc = paved_fuzz::LimitedAlloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| paved::fuzz_logic::crd_convert(data));
