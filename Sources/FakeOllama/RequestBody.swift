import Foundation

/// A JSON request body decoded with Foundation, plus the typed reads the handlers need.
struct RequestBody {
    let object: [String: Any]

    /// Why a body was refused, with messages modelled on Go's `encoding/json` errors.
    enum Failure: Error {
        case missing
        case invalid(String)

        /// The message for an `/api/*` route ("missing request body") or a `/v1/*` route (Go's bare "EOF").
        func message(openAI: Bool) -> String {
            switch self {
            case .missing: return openAI ? "EOF" : "missing request body"
            case .invalid(let m): return m
            }
        }
    }

    /// Parses `body` as a JSON object; `goType` names the Go struct for the "cannot unmarshal" message.
    static func parse(_ body: [UInt8], goType: String) -> Result<RequestBody, Failure> {
        guard let first = body.first(where: { !($0 == 32 || $0 == 9 || $0 == 10 || $0 == 13) }) else {
            return .failure(.missing)
        }
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])
        } catch {
            let startsValue = "{[\"-0123456789tfn".utf8.contains(first)
            if !startsValue {
                let shown = first >= 32 && first < 127 ? String(UnicodeScalar(first)) : "\\x\(String(first, radix: 16))"
                return .failure(.invalid("invalid character '\(shown)' looking for beginning of value"))
            }
            return .failure(.invalid("unexpected EOF"))
        }
        guard let object = value as? [String: Any] else {
            let kind: String
            switch value {
            case is [Any]: kind = "array"
            case is String: kind = "string"
            case is NSNull: return .success(RequestBody(object: [:]))
            case let n as NSNumber where Self.isBool(n): kind = "bool"
            default: kind = "number"
            }
            return .failure(.invalid("json: cannot unmarshal \(kind) into Go value of type \(goType)"))
        }
        return .success(RequestBody(object: object))
    }

    func string(_ key: String) -> String? { object[key] as? String }

    func bool(_ key: String) -> Bool? {
        guard let n = object[key] as? NSNumber, Self.isBool(n) else { return nil }
        return n.boolValue
    }

    func int(_ key: String) -> Int? { Self.int(object[key]) }

    func nested(_ key: String) -> RequestBody? { (object[key] as? [String: Any]).map(RequestBody.init) }

    func array(_ key: String) -> [Any]? { object[key] as? [Any] }

    /// An integer from a JSON number (Go truncates floats the same way for `num_predict`).
    static func int(_ value: Any?) -> Int? {
        guard let n = value as? NSNumber, !isBool(n) else { return nil }
        let d = n.doubleValue
        guard d.isFinite, abs(d) < 1e15 else { return nil }
        return Int(d)
    }

    /// Whether a Foundation number came from JSON `true`/`false` (corelibs Foundation reports objCType "c").
    static func isBool(_ n: NSNumber) -> Bool {
        String(cString: n.objCType) == "c"
    }

    /// UTF-8 length of the text in an Ollama or OpenAI message list (string or `[{type,text}]` content).
    static func messagesLength(_ messages: [Any]) -> Int {
        var total = 0
        for case let m as [String: Any] in messages {
            if let s = m["content"] as? String {
                total += s.utf8.count
            } else if let parts = m["content"] as? [Any] {
                for case let p as [String: Any] in parts { total += (p["text"] as? String)?.utf8.count ?? 0 }
            }
        }
        return total
    }
}
