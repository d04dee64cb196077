/// What the `ollama` CLI sends in place of credentials when `OLLAMA_AUTH` is set:
/// `Authorization: <base64 ssh-ed25519 wire blob>:<base64 signature>`, the signature over
/// `METHOD,PATH?ts=UNIX-SECONDS` (the `ts` also in the URL's query). Parsed, not yet checked.
public struct SignedCredential: Sendable, Equatable {
    /// The public key's wire blob (its SHA-256 is the key's fingerprint).
    public var blob: [UInt8]
    /// The 32 raw public key bytes from the blob: what `authorized-keys` is looked up by.
    public var publicKey: [UInt8]
    /// The 64-byte Ed25519 signature.
    public var signature: [UInt8]

    /// Creates a parsed credential; `CredentialExtractor` is the usual source.
    public init(blob: [UInt8], publicKey: [UInt8], signature: [UInt8]) {
        self.blob = blob
        self.publicKey = publicKey
        self.signature = signature
    }
}
