import Glibc
/// The models the fake has "pulled" and the ones it reports loaded, with the metadata real Ollama reports for
/// mistral:7b.
struct ModelCatalog {
    /// The first configured name as Ollama lists it (":latest" added when there is no tag).
    let listedName: String
    /// Every pulled model as listed, first one first.
    let listedNames: [String]
    /// What /api/ps reports as loaded, as listed.
    let loadedNames: [String]
    private let normalized: [String]

    static let digest = "f974a74358d62a017b37c6f424fcdf2744ca02926c4f952513ddf474b2fa5091"
    static let size = 4_113_301_824
    static let sizeLoaded = 5_137_025_024
    /// Fixed for determinism: every timestamp the fake reports.
    static let timestamp = "2026-01-01T00:00:00Z"

    /// The current time as Go formats time.RFC3339Nano in UTC ("2026-11-25T09:30:57.123456789Z").
    static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var p = tm()
        gmtime_r(&t, &p)
        func pad(_ v: Int, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(p.tm_year + 1900)-\(pad(Int(p.tm_mon) + 1, 2))-\(pad(Int(p.tm_mday), 2))T\(pad(Int(p.tm_hour), 2)):"
            + "\(pad(Int(p.tm_min), 2)):\(pad(Int(p.tm_sec), 2)).\(pad(Int(ts.tv_nsec), 9))Z"
    }
    /// `timestamp` as Unix seconds (OpenAI `created`).
    static let unixTime = 1_767_225_600
    static let expiresAt = "2026-01-01T00:05:00Z"
    static let version = "0.12.0"

    init(model: String, extra: [String] = [], loaded: [String] = []) {
        let all = [model] + extra
        normalized = all.map(Self.normalize)
        listedNames = all.map(Self.display)
        listedName = listedNames[0]
        loadedNames = loaded.isEmpty ? [listedName] : loaded.map(Self.display)
    }

    /// Whether a requested name refers to a configured model ("mistral" means "mistral:latest", as in Ollama).
    func matches(_ requested: String) -> Bool {
        !requested.isEmpty && normalized.contains(Self.normalize(requested))
    }

    private static func display(_ name: String) -> String {
        let last = name.split(separator: "/").last.map(String.init) ?? name
        return last.contains(":") ? name : name + ":latest"
    }

    private static func normalize(_ name: String) -> String {
        var n = display(name).lowercased()
        for prefix in ["registry.ollama.ai/", "library/"] where n.hasPrefix(prefix) {
            n.removeFirst(prefix.count)
        }
        return n
    }

    /// `api.ModelDetails`, in its field order.
    static func writeDetails(_ w: inout JSONWriter) {
        w.beginObject()
        w.key("parent_model"); w.string("")
        w.key("format"); w.string("gguf")
        w.key("family"); w.string("llama")
        w.key("families"); w.beginArray(); w.string("llama"); w.endArray()
        w.key("parameter_size"); w.string("7.2B")
        w.key("quantization_level"); w.string("Q4_0")
        w.endObject()
    }

    /// A deterministic embedding of `dimensions` floats for input number `index` of `length` bytes.
    static func embedding(index: Int, length: Int, dimensions: Int = 16) -> [Float] {
        (0..<dimensions).map { j in Float(((j * 7 + index * 3 + length) % 17) - 8) / 16 }
    }

    /// The token text of token `i`: "tok0 ", "tok1 ", ...
    static func token(_ i: Int) -> String { "tok\(i) " }

    /// Rough prompt token count: one per four UTF-8 bytes, at least one.
    static func promptTokens(bytes: Int) -> Int { max(1, (bytes + 3) / 4) }
}
