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

extension ModelListScanner {
    /// The entries of an `/api/tags` body's top-level "models" array, each object's bytes kept as sent; nil when the
    /// body is not a JSON object whose "models" is an array of objects. Entries with neither a "name" nor a "model"
    /// string are left out (nothing to list them by), and so are those a client could read under another name.
    static func entries(in body: [UInt8]) -> [ModelEntry]? {
        // The merged list is written from the entries read, not from the body: the last "models" is the one read,
        // and other keys are dropped with the rest of the body.
        listValue(body, listKey: "models", strict: false, modelArray)
    }

    /// The value under `listKey` in the JSON object `body`, read by `read`; every other value is skipped. nil when
    /// the body is not one JSON object, `read` fails, or the key is absent. The last of repeated keys is the one
    /// read, unless `strict` (for a body passed on with its other bytes as sent): then a repeated list key, a key
    /// spelled with an escape (it could be the list's under another spelling, and repeated keys are read as the
    /// first by some parsers and the last by others), and a key Go's encoding/json reads as `listKey` ("MODELS",
    /// "modelſ") make it nil.
    private static func listValue<T>(_ body: [UInt8], listKey: StaticString, strict: Bool,
                                     _ read: (inout JSONCursor) -> T?) -> T? {
        var c = JSONCursor(bytes: body)
        guard c.eat(UInt8(ascii: "{")) else { return nil }
        var found: T?
        if !c.eat(UInt8(ascii: "}")) {
            repeat {
                guard let key = c.string(), c.eat(UInt8(ascii: ":")) else { return nil }
                let isList = listKey.withUTF8Buffer { name in
                    key.count == name.count + 2 && body[(key.lowerBound + 1)..<(key.upperBound - 1)].elementsEqual(name)
                }
                if strict {
                    guard !body[key].contains(UInt8(ascii: "\\")) else { return nil }
                    guard isList || !foldsTo(body, key, listKey.description) else { return nil }
                    guard !isList || found == nil else { return nil }
                }
                if isList {
                    guard let value = read(&c) else { return nil }
                    found = value
                } else {
                    guard c.value(depth: 0) != nil else { return nil }
                }
            } while c.eat(UInt8(ascii: ","))
            guard c.eat(UInt8(ascii: "}")) else { return nil }
        }
        c.skipBlanks()
        guard c.i == body.count else { return nil }
        return found
    }

    private static func modelArray(_ c: inout JSONCursor) -> [ModelEntry]? {
        guard c.eat(UInt8(ascii: "[")) else { return nil }
        var list: [ModelEntry] = []
        if c.eat(UInt8(ascii: "]")) { return list }
        repeat {
            guard let object = listedObject(&c, nameKeys: ["name", "model"]) else { return nil }
            let name = object.names.name, model = object.names.model
            let id = model.flatMap { $0.isEmpty ? nil : $0 } ?? name ?? ""
            let listedAs = name.flatMap { $0.isEmpty ? nil : $0 } ?? id
            if !listedAs.isEmpty && !object.unclear {
                list.append(ModelEntry(json: Array(c.bytes[object.range]), key: ModelName.normalize(listedAs), id: id, name: listedAs,
                                       modifiedAt: object.modifiedAt))
            }
        } while c.eat(UInt8(ascii: ","))
        guard c.eat(UInt8(ascii: "]")) else { return nil }
        return list
    }

    /// One object of a model list, next at `c`: its bytes' range, the names it is listed by (the keys `nameKeys`
    /// names, of "name", "model" and "id"), its "modified_at", and whether a client could read it under another
    /// name: a key spelled with an escape, or one Go's encoding/json matches to a name key without regard to case.
    /// As Go's encoding/json, the last of repeated keys wins; a non-string value is no name. nil when malformed.
    private static func listedObject(_ c: inout JSONCursor, nameKeys: [String])
        -> (range: Range<Int>, names: ListedNames, modifiedAt: String?, unclear: Bool)? {
        c.skipBlanks()
        let start = c.i
        guard c.eat(UInt8(ascii: "{")) else { return nil }
        var names = ListedNames()
        var modifiedAt: String?
        var unclear = false
        if !c.eat(UInt8(ascii: "}")) {
            repeat {
                guard let key = c.string(), c.eat(UInt8(ascii: ":")), let value = c.value(depth: 1) else { return nil }
                let text = c.bytes[value.lowerBound] == UInt8(ascii: "\"") ? decode(c.bytes, value) : nil
                let spelled = String(decoding: c.bytes[key].dropFirst().dropLast(), as: UTF8.self)
                switch spelled {
                case "name" where nameKeys.contains("name"): names.name = text
                case "model" where nameKeys.contains("model"): names.model = text
                case "id" where nameKeys.contains("id"): names.id = text
                case "modified_at": modifiedAt = text
                default:
                    if c.bytes[key].contains(UInt8(ascii: "\\"))
                        || nameKeys.contains(where: { foldsTo(c.bytes, key, $0) }) { unclear = true }
                }
            } while c.eat(UInt8(ascii: ","))
            guard c.eat(UInt8(ascii: "}")) else { return nil }
        }
        return (start..<c.i, names, modifiedAt, unclear)
    }

    /// The text of the JSON string literal at `range` (quotes included), escapes decoded as `readString` does.
    private static func decode(_ bytes: [UInt8], _ range: Range<Int>) -> String? {
        guard let (text, _) = readString(bytes, from: range.lowerBound) else { return nil }
        return String(validating: text, as: UTF8.self)
    }
}

/// A position in a JSON text that skips whole values, for `ModelListScanner.entries`: no tree is built, only ranges.
struct JSONCursor {
    let bytes: [UInt8]
    var i = 0
    /// Nesting deeper than this is refused (a backend's answer is not allowed to exhaust the stack).
    static let maxDepth = 64

    /// Moves past blanks.
    mutating func skipBlanks() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0A || bytes[i] == 0x0D { i += 1 }
    }

    /// Moves past blanks and `c`; false (after the blanks) when `c` is not next.
    mutating func eat(_ c: UInt8) -> Bool {
        skipBlanks()
        guard i < bytes.count, bytes[i] == c else { return false }
        i += 1
        return true
    }

    /// The range of the string literal next (quotes included), or nil.
    mutating func string() -> Range<Int>? {
        skipBlanks()
        guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
        var j = i + 1
        while j < bytes.count {
            if bytes[j] == UInt8(ascii: "\\") { j += 2; continue }
            if bytes[j] == UInt8(ascii: "\"") {
                defer { i = j + 1 }
                return i..<j + 1
            }
            j += 1
        }
        return nil
    }

    /// The range of the value next (string, object, array, number, literal), or nil when it is malformed.
    mutating func value(depth: Int) -> Range<Int>? {
        skipBlanks()
        guard i < bytes.count, depth < JSONCursor.maxDepth else { return nil }
        let start = i
        switch bytes[i] {
        case UInt8(ascii: "\""):
            return string()
        case UInt8(ascii: "{"):
            i += 1
            if eat(UInt8(ascii: "}")) { return start..<i }
            repeat {
                guard string() != nil, eat(UInt8(ascii: ":")), value(depth: depth + 1) != nil else { return nil }
            } while eat(UInt8(ascii: ","))
            return eat(UInt8(ascii: "}")) ? start..<i : nil
        case UInt8(ascii: "["):
            i += 1
            if eat(UInt8(ascii: "]")) { return start..<i }
            repeat {
                guard value(depth: depth + 1) != nil else { return nil }
            } while eat(UInt8(ascii: ","))
            return eat(UInt8(ascii: "]")) ? start..<i : nil
        default:
            while i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: ",") || c == UInt8(ascii: "}") || c == UInt8(ascii: "]") || c == 0x20 || c == 0x09
                    || c == 0x0A || c == 0x0D || c == UInt8(ascii: ":") || c == UInt8(ascii: "\"") { break }
                i += 1
            }
            return i > start ? start..<i : nil
        }
    }
}

extension ModelListScanner {
    /// The names one listed model goes by: an `/api/tags` entry's "name" and "model", a `/v1/models` entry's "id".
    struct ListedNames {
        var name: String?
        var model: String?
        var id: String?
    }

    /// `body` (a JSON object) with the array under `listKey` ("models" in `/api/tags`, "data" in `/v1/models`)
    /// keeping only the objects `keep` accepts, every other byte as sent (the body itself when all are kept). A list
    /// left empty is written `[]`, or `null` when `emptyIsNull` (Go's nil slice, as Ollama's OpenAI layer writes no
    /// models). nil when the body is not a JSON object whose `listKey` is an array of objects or null.
    static func filtered(_ body: [UInt8], listKey: StaticString, emptyIsNull: Bool,
                         keep: (ListedNames) -> Bool) -> [UInt8]? {
        guard let list = listValue(body, listKey: listKey, strict: true, { keptObjects(&$0, keep) }) else { return nil }
        // Nothing taken out: the body as it came.
        if list.kept.count == list.count { return body }
        var out = Array(body[..<list.range.lowerBound])
        if list.kept.isEmpty && emptyIsNull {
            out.append(contentsOf: "null".utf8)
        } else {
            out.append(UInt8(ascii: "["))
            for (n, object) in list.kept.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: body[object])
            }
            out.append(UInt8(ascii: "]"))
        }
        out.append(contentsOf: body[list.range.upperBound...])
        return out
    }

    /// Whether the key literal at `key` (quotes included) is `name` as Go's encoding/json matches a key to a field:
    /// ASCII case ignored, "ſ" (U+017F) read as "s" and the Kelvin sign (U+212A) as "k".
    static func foldsTo(_ bytes: [UInt8], _ key: Range<Int>, _ name: String) -> Bool {
        guard key.count >= 2 else { return false }
        var folded = String.UnicodeScalarView()
        for scalar in String(decoding: bytes[(key.lowerBound + 1)..<(key.upperBound - 1)], as: UTF8.self).unicodeScalars {
            switch scalar.value {
            case 0x17F: folded.append("s")
            case 0x212A: folded.append("k")
            case 0x41...0x5A: folded.append(Unicode.Scalar(UInt8(scalar.value) + 0x20))
            default: folded.append(scalar)
            }
        }
        return String(folded) == name
    }

    /// The array (or null) next, and the ranges of the objects in it that `keep` accepts.
    private static func keptObjects(_ c: inout JSONCursor,
                                    _ keep: (ListedNames) -> Bool) -> (range: Range<Int>, kept: [Range<Int>], count: Int)? {
        c.skipBlanks()
        let start = c.i
        if c.i + 4 <= c.bytes.count && c.bytes[c.i..<(c.i + 4)].elementsEqual("null".utf8) {
            c.i += 4
            return (start..<c.i, [], 0)
        }
        guard c.eat(UInt8(ascii: "[")) else { return nil }
        var kept: [Range<Int>] = []
        var count = 0
        if c.eat(UInt8(ascii: "]")) { return (start..<c.i, kept, 0) }
        repeat {
            count += 1
            guard let object = listedObject(&c, nameKeys: ["name", "model", "id"]) else { return nil }
            if !object.unclear && keep(object.names) { kept.append(object.range) }
        } while c.eat(UInt8(ascii: ","))
        guard c.eat(UInt8(ascii: "]")) else { return nil }
        return (start..<c.i, kept, count)
    }
}
