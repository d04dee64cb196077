/// One model of a backend's last `/api/tags` answer: its JSON object exactly as the backend sent it, and the few
/// fields Tollgate reads from it (to merge the lists of several backends and to answer `/v1/models`).
struct ModelEntry: Sendable, Equatable {
    /// The entry's JSON object, byte for byte (`{"name":...,"model":...,"modified_at":...,"size":...,...}`).
    let json: [UInt8]
    /// The normalized name (`ModelName`) that identifies the model across backends.
    let key: String
    /// The OpenAI id as Ollama chooses it: "model" unless empty, else "name" (decoded).
    let id: String
    /// The name it is listed by: "name" unless empty, else `id` (decoded).
    let name: String
    /// OpenAI's `created`: "modified_at" in Unix seconds, as Go's `time.Time.Unix()` gives it (Go's zero time,
    /// -62135596800, when absent or unreadable). Also the list's sort key.
    let created: Int64

    /// An entry with its object's bytes, normalized name, OpenAI id and "modified_at" text (nil when absent).
    init(json: [UInt8], key: String, id: String, name: String, modifiedAt: String?) {
        self.json = json
        self.key = key
        self.id = id
        self.name = name
        created = modifiedAt.flatMap(ModelEntry.unixSeconds) ?? ModelEntry.goZeroTime
    }

    /// OpenAI's `owned_by`: the namespace of the id as Ollama's `model.ParseName` reads it ("library" for
    /// "mistral:7b", "user" for "user/model" or "hf.co/user/repo:tag").
    var ownedBy: String { ModelEntry.namespace(of: id) }

    /// `time.Time{}.Unix()` in Go.
    static let goZeroTime: Int64 = -62_135_596_800

    /// The namespace by Ollama's rule (types/model/name.go `ParseNameBare` then `Merge` with the defaults): a tag
    /// after the last "/" is cut, then the part after the last "/" is the model and the part before it, up to the
    /// "/" before that if any, the namespace; with no "/" at all, the default "library". An empty part is Ollama's
    /// "!MISSING!".
    static func namespace(of id: String) -> String {
        var s = Substring(id)
        let lastColon = s.lastIndex(of: ":"), lastSlash = s.lastIndex(of: "/")
        if let colon = lastColon, lastSlash.map({ colon > $0 }) ?? true { s = s[..<colon] }
        guard let slash = s.lastIndex(of: "/") else { return "library" }
        let rest = s[..<slash]
        let namespace = rest.lastIndex(of: "/").map { rest[rest.index(after: $0)...] } ?? rest
        return namespace.isEmpty ? "!MISSING!" : String(namespace)
    }

    /// Unix seconds of an RFC 3339 time (`2024-05-01T10:00:00.123456789-07:00`, `...Z`), fractions dropped
    /// towards the past as Go's `Unix()` does; nil when it is not one.
    static func unixSeconds(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var n = 0
            for c in b[from..<from + count] {
                guard c >= 0x30 && c <= 0x39 else { return nil }
                n = n * 10 + Int(c - 0x30)
            }
            return n
        }
        func at(_ i: Int, _ c: Character) -> Bool { i < b.count && b[i] == c.asciiValue! }
        guard let year = number(0, 4), at(4, "-"), let month = number(5, 2), at(7, "-"), let day = number(8, 2),
              at(10, "T") || at(10, "t"), let hour = number(11, 2), at(13, ":"), let minute = number(14, 2),
              at(16, ":"), let second = number(17, 2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60 else { return nil }
        var i = 19
        if at(i, ".") {
            i += 1
            let start = i
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 { i += 1 }
            guard i > start else { return nil }
        }
        var offset = 0
        if at(i, "Z") || at(i, "z") {
            i += 1
        } else if at(i, "+") || at(i, "-") {
            guard let oh = number(i + 1, 2), at(i + 3, ":"), let om = number(i + 4, 2), oh < 24, om < 60 else { return nil }
            offset = (oh * 3600 + om * 60) * (at(i, "-") ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        return Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second - offset)
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
