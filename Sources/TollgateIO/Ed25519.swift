import COpenSSL

/// An Ed25519 public key (RFC 8032) held as an OpenSSL `EVP_PKEY`, made once when a key file is read.
///
/// Immutable after creation, so one key is shared by every worker: OpenSSL allows concurrent read-only use of an
/// `EVP_PKEY` (verification only reads it; what it caches per provider it caches under the key's own lock).
/// Owns its `EVP_PKEY` and frees it in `deinit`.
public final class Ed25519PublicKey: @unchecked Sendable {
    /// The 32 raw key bytes.
    public let raw: [UInt8]
    let pkey: OpaquePointer

    /// The key from its 32 raw bytes (the last field of an `ssh-ed25519` wire blob); nil for any other length, or
    /// when OpenSSL refuses it.
    public init?(raw: [UInt8]) {
        guard raw.count == 32 else { return nil }
        let made = raw.withUnsafeBufferPointer { EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32) }
        guard let made else {
            ERR_clear_error()
            return nil
        }
        self.raw = raw
        pkey = made
    }

    deinit { EVP_PKEY_free(pkey) }
}

/// Checks Ed25519 signatures with OpenSSL's one-shot `EVP_DigestVerify` (Ed25519 hashes the message itself, so
/// there is no digest to name).
///
/// One per thread (each worker has its own): it keeps one `EVP_MD_CTX` and resets it between checks instead of
/// allocating one per request, and the keys are made once per file load. What stays per check is OpenSSL 3.0's own
/// lookup of the Ed25519 signature implementation in its method cache inside `EVP_DigestVerifyInit` (3.0 has no
/// way to hand it a pre-fetched one). Not thread-safe; owns the context and frees it in `deinit`.
public final class Ed25519Verifier {
    private let context: OpaquePointer

    /// A verifier with its context; traps only when OpenSSL cannot allocate one (out of memory).
    public init() {
        guard let made = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed") }
        context = made
    }

    deinit { EVP_MD_CTX_free(context) }

    /// Whether `signature` (64 bytes) is `key`'s signature of `message`. A few tens of microseconds of one core;
    /// never blocks. Leaves OpenSSL's error queue of this thread empty, as the TLS code on the same thread expects.
    public func verify(_ signature: [UInt8], of message: [UInt8], with key: Ed25519PublicKey) -> Bool {
        guard signature.count == 64 else { return false }
        EVP_MD_CTX_reset(context)
        guard EVP_DigestVerifyInit(context, nil, nil, nil, key.pkey) == 1 else {
            ERR_clear_error()
            return false
        }
        let ok = signature.withUnsafeBufferPointer { s in
            message.withUnsafeBufferPointer { m in
                // A NULL message pointer is refused by some providers even with length 0: point at the signature.
                EVP_DigestVerify(context, s.baseAddress, 64, m.count == 0 ? s.baseAddress : m.baseAddress, m.count) == 1
            }
        }
        if !ok { ERR_clear_error() }
        return ok
    }
}

/// An Ed25519 private key, for the tests and tools that sign as the `ollama` CLI does (the server only verifies).
/// Owns its `EVP_PKEY`; thread-safe to share for signing, like the public key.
public final class Ed25519PrivateKey: @unchecked Sendable {
    private let pkey: OpaquePointer
    /// The matching public key's 32 raw bytes.
    public let publicRaw: [UInt8]

    /// The key whose 32-byte seed is `seed` (RFC 8032's private key); a fresh random one when nil.
    public init(seed: [UInt8]? = nil) {
        let bytes = seed ?? Syscall.randomBytes(32)
        precondition(bytes.count == 32, "an Ed25519 seed is 32 bytes")
        guard let made = bytes.withUnsafeBufferPointer({ EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32) }) else {
            fatalError("EVP_PKEY_new_raw_private_key failed")
        }
        pkey = made
        var raw = [UInt8](repeating: 0, count: 32)
        var length = 32
        let got = raw.withUnsafeMutableBufferPointer { EVP_PKEY_get_raw_public_key(made, $0.baseAddress, &length) }
        guard got == 1, length == 32 else { fatalError("EVP_PKEY_get_raw_public_key failed") }
        publicRaw = raw
    }

    deinit { EVP_PKEY_free(pkey) }

    /// The 64-byte signature of `message`.
    public func sign(_ message: [UInt8]) -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestSignInit(context, nil, nil, nil, pkey) == 1 else { fatalError("EVP_DigestSignInit failed") }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        let ok = signature.withUnsafeMutableBufferPointer { s in
            message.withUnsafeBufferPointer { m in
                EVP_DigestSign(context, s.baseAddress, &length, m.count == 0 ? UnsafePointer(s.baseAddress) : m.baseAddress, m.count) == 1
            }
        }
        guard ok, length == 64 else { fatalError("EVP_DigestSign failed") }
        return signature
    }
}
