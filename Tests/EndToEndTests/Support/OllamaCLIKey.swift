import Foundation
import TollgateIO

/// A key as the `ollama` CLI keeps it, and the header it sends with `OLLAMA_AUTH` set.
struct OllamaCLIKey {
    let key: Ed25519PrivateKey
    /// The second field of its `id_ed25519.pub` line: base64 of the ssh-ed25519 wire blob.
    let keyText: String

    init(seed: UInt8) {
        key = Ed25519PrivateKey(seed: [UInt8](repeating: seed, count: 32))
        let blob: [UInt8] = [0, 0, 0, 11] + Array("ssh-ed25519".utf8) + [0, 0, 0, 32] + key.publicRaw
        keyText = Data(blob).base64EncodedString()
    }

    func line(_ user: String) -> String { "ssh-ed25519 \(keyText) \(user)" }

    /// `Authorization: KEY:SIG` over `METHOD,PATH?ts=TS`, as Ollama's client signs.
    func header(_ method: String, _ path: String, ts: Int64) -> String {
        let signature = key.sign(Array("\(method),\(path)?ts=\(ts)".utf8))
        return "Authorization: \(keyText):\(Data(signature).base64EncodedString())\r\n"
    }
}
