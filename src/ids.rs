//! UUID text for the request ids paved sends (Compute Engine's `requestId`) and records (the
//! audit trail's `request_id`).

/// `b` as an RFC 9562 UUID of `version` (4: random, 5: name-based), in the usual text form.
pub fn uuid(mut b: [u8; 16], version: u8) -> String {
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_and_variant_bits_are_set() {
        let u = super::uuid([0xff; 16], 4);
        assert_eq!(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(&super::uuid([0; 16], 5)[14..15], "5");
    }
}
