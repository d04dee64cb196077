import TollgateIO

/// The ACME account key and the JSON Web Signatures made with it (RFC 8555 section 6.2, RFC 7515 flattened JSON).
///
/// Immutable; safe to share between threads.
public struct AccountKey: Sendable {
    /// The P-256 key.
    public let key: P256Key
    /// The public key as a JWK, members in RFC 7638's order (lexicographic), so it is also the thumbprint's input.
    public let jwk: String
    /// The JWK thumbprint (RFC 7638): base64url of SHA-256 of `jwk`. Key authorizations end with it.
    public let thumbprint: String

    /// The account key `key`.
    public init(_ key: P256Key) {
        self.key = key
        let (x, y) = key.publicCoordinates
        jwk = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"\(Base64URL.encode(x))\",\"y\":\"\(Base64URL.encode(y))\"}"
        thumbprint = Base64URL.encode(Digest.sha256(Array(jwk.utf8)))
    }

    /// The key authorization for a challenge's token (RFC 8555 section 8.1).
    public func keyAuthorization(token: String) -> String { token + "." + thumbprint }

    /// Who signs a request: the key itself (newAccount, and revocation by certificate key) or the account URL.
    public enum Signer: Sendable, Equatable {
        /// `jwk` in the protected header.
        case jwk
        /// `kid` (the account URL) in the protected header.
        case kid(String)
    }

    /// The flattened JWS body of a POST to `url`: `payload` (JSON text; nil for POST-as-GET, an empty payload)
    /// signed with ES256 under the protected header {alg, jwk or kid, nonce, url}.
    public func sign(url: String, nonce: String, payload: String?, as signer: Signer) -> [UInt8] {
        let identity: String
        switch signer {
        case .jwk: identity = "\"jwk\":" + jwk
        case .kid(let account): identity = "\"kid\":" + DoctorJSON.quoted(account)
        }
        let protected = "{\"alg\":\"ES256\",\(identity),\"nonce\":\(DoctorJSON.quoted(nonce)),\"url\":\(DoctorJSON.quoted(url))}"
        let protected64 = Base64URL.encode(Array(protected.utf8))
        let payload64 = payload.map { Base64URL.encode(Array($0.utf8)) } ?? ""
        let signature = key.signES256(Array((protected64 + "." + payload64).utf8))
        let body = "{\"protected\":\"\(protected64)\",\"payload\":\"\(payload64)\",\"signature\":\"\(Base64URL.encode(signature))\"}"
        return Array(body.utf8)
    }
}
