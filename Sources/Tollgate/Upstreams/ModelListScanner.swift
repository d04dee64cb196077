/// Reads the model names out of an Ollama `/api/tags` or `/api/ps` body (`{"models":[{"name":...,"model":...}]}`)
/// without Foundation: a small JSON tokenizer that collects the string values of every "name" and "model" key.
enum ModelListScanner {
    /// The normalized names (see `ModelName`), or nil when the body is not a JSON object with a "models" key.
    static func names(in body: [UInt8]) -> Set<String>? {
        var names: Set<String> = []
        var sawModels = false
        var i = 0
        var lastString: [UInt8]?
        var keyPending: [UInt8]?
        func skipBlanks() {
            while i < body.count, body[i] == 0x20 || body[i] == 0x09 || body[i] == 0x0A || body[i] == 0x0D { i += 1 }
        }
        skipBlanks()
        guard i < body.count, body[i] == UInt8(ascii: "{") else { return nil }
        while i < body.count {
            let c = body[i]
            if c == UInt8(ascii: "\"") {
                guard let (text, next) = readString(body, from: i) else { return nil }
                i = next
                skipBlanks()
                if i < body.count, body[i] == UInt8(ascii: ":") {
                    keyPending = text
                    i += 1
                    if text == Array("models".utf8) { sawModels = true }
                    continue
                }
                lastString = text
                if let key = keyPending, key == Array("name".utf8) || key == Array("model".utf8), let value = lastString,
                   let s = String(validating: value, as: UTF8.self), !s.isEmpty {
                    names.insert(ModelName.normalize(s))
                }
                keyPending = nil
                continue
            }
            if c != 0x20 && c != 0x09 && c != 0x0A && c != 0x0D { keyPending = nil }
            i += 1
        }
        return sawModels ? names : nil
    }

    /// The decoded bytes of the JSON string starting at `start` (a quote) and the index after its closing quote.
    /// Escapes other than \uXXXX are decoded; \uXXXX is kept as is (model names are ASCII).
    private static func readString(_ body: [UInt8], from start: Int) -> ([UInt8], Int)? {
        var out: [UInt8] = []
        var i = start + 1
        while i < body.count {
            let c = body[i]
            if c == UInt8(ascii: "\"") { return (out, i + 1) }
            if c == UInt8(ascii: "\\") {
                guard i + 1 < body.count else { return nil }
                let e = body[i + 1]
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"): out.append(contentsOf: [0x5C, e])
                default: out.append(e)
                }
                i += 2
                continue
            }
            out.append(c)
            i += 1
        }
        return nil
    }
}
