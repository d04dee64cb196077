extension Hasher {
    /// Feeds `bytes` as one run (one call into the hash function, not one per byte). The unsafe buffer stays here,
    /// in the I/O module.
    public mutating func combine(contentsOf bytes: ArraySlice<UInt8>) {
        bytes.withUnsafeBytes { combine(bytes: $0) }
    }
}
