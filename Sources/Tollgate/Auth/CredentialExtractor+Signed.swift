// The ollama CLI's signed form (OLLAMA_AUTH): kept apart from Basic, Bearer and x-api-key so that each credential
// kind stays one delimited piece of the extractor.
extension CredentialExtractor {
    /// `<base64 wire blob>:<base64 signature>` with no scheme and no blank: the signed form, `.malformed` when it
    /// looks like one but is not usable, nil when the value is not of this shape at all (another scheme's turn).
    ///
    /// Both parts are standard padded base64 (Ollama's `auth.Sign`: the key as `ssh.MarshalAuthorizedKey` writes
    /// it, the signature with `base64.StdEncoding`). Only `ssh-ed25519` keys exist in this form.
    static func signed(_ value: ArraySlice<UInt8>) -> CredentialParse? {
        guard !value.contains(where: { $0 == 0x20 || $0 == 0x09 }),
              let colon = value.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        let keyText = value[value.startIndex..<colon]
        let signatureText = value[(colon + 1)...]
        // The blob of every ssh-ed25519 key starts with these 20 base64 characters (`\0\0\0\x0bssh-ed25519`).
        guard keyText.starts(with: signedKeyPrefix) else { return nil }
        guard let blob = Base64.decode(keyText), let raw = SSHEd25519.rawKey(blob: blob) else {
            return .malformed("the signed form's key is not a valid ssh-ed25519 public key")
        }
        guard let signature = Base64.decode(signatureText), signature.count == 64 else {
            return .malformed("the signed form's signature is not 64 bytes of base64")
        }
        return .signed(SignedCredential(blob: blob, publicKey: raw, signature: signature))
    }

    private static let signedKeyPrefix = Array("AAAAC3NzaC1lZDI1NTE5".utf8)
}
