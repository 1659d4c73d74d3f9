//! Big-endian keys, so that sled's byte order is numeric order.

pub fn u64_key(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

pub fn prefixed(prefix: u8, parts: &[u64]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + 8 * parts.len());
    k.push(prefix);
    for p in parts {
        k.extend_from_slice(&p.to_be_bytes());
    }
    k
}

pub fn read_u64(bytes: &[u8]) -> Option<u64> {
    bytes
        .get(..8)
        .map(|b| u64::from_be_bytes(b.try_into().unwrap()))
}
