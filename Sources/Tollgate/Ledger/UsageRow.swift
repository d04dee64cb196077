/// One finished request as the usage ledger records it: one row of the `usage` table.
public struct UsageRow: Sendable, Equatable {
    /// When the request finished: Unix time in milliseconds (UTC).
    public var time: Int64
    /// The request id the access log and the response's `X-Request-Id` carry.
    public var requestID: String
    /// The authenticated user; nil for a public path or with authentication off.
    public var user: String?
    /// The API key the request authenticated with; nil for a password (or no) login.
    public var keyID: String?
    /// The model the request named; nil where it names none. The ledger keeps its first `maxModelBytes` bytes
    /// (`storedModel`).
    public var model: String?
    /// The path Ollama routed it on (`/api/chat`, `/v1/messages`, ...).
    public var route: String
    /// The status the client received (499: it went away first).
    public var status: Int
    /// Tokens as Ollama counted them; nil when the response carried no count.
    public var promptTokens: Int?
    public var completionTokens: Int?
    /// From the request head to the end of the response, in microseconds.
    public var durationMicros: Int64
    /// From the request head to the first response byte sent, in microseconds; nil when none was.
    public var ttfbMicros: Int64?
    /// The backend that answered (its host:port) when there are several; nil for the single upstream.
    public var backend: String?
    /// What the request cost its user's token quota (`QuotaCharge`): Ollama's count, the whole reservation for a
    /// request cut off before its count, 0 when Ollama did no work. Balances are rebuilt from it at start-up
    /// (`LedgerSpendingHistory`), so a restart charges exactly what the running server had charged.
    public var chargedTokens: Int = 0
    /// Whether the request counts against `requests-per-day` (an inference request Ollama worked on).
    public var countedRequest: Bool = false

    public init(time: Int64, requestID: String, user: String?, keyID: String?, model: String?, route: String,
                status: Int, promptTokens: Int?, completionTokens: Int?, durationMicros: Int64, ttfbMicros: Int64?,
                backend: String?, chargedTokens: Int = 0, countedRequest: Bool = false) {
        self.chargedTokens = chargedTokens
        self.countedRequest = countedRequest
        self.time = time
        self.requestID = requestID
        self.user = user
        self.keyID = keyID
        self.model = model
        self.route = route
        self.status = status
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.durationMicros = durationMicros
        self.ttfbMicros = ttfbMicros
        self.backend = backend
    }

    /// The longest model name the ledger keeps, in UTF-8 bytes. The name is whatever a client sent: kept whole, a
    /// client could fill the ledger with long distinct names that every reader (`tollgate usage --by model`, the
    /// status page) then groups and sorts. Ollama's model names are far shorter.
    public static let maxModelBytes = 256

    /// `model` as the ledger writes it: its first `maxModelBytes` bytes, cut before a Unicode scalar that would
    /// not fit whole (so the text stays valid UTF-8), a NUL replaced by U+FFFD. Names that share those bytes are
    /// counted as one.
    public static func storedModel(_ model: String) -> String {
        // A NUL would end the name for SQLite's text functions (the status page's ranking): shown as U+FFFD.
        if model.utf8.contains(0) { return storedModel(String(model.map { $0 == "\0" ? "\u{FFFD}" : $0 })) }
        guard model.utf8.count > maxModelBytes else { return model }
        var kept = 0
        for scalar in model.unicodeScalars {
            let size = UTF8.width(scalar)
            if kept + size > maxModelBytes { break }
            kept += size
        }
        return String(decoding: model.utf8.prefix(kept), as: UTF8.self)
    }

    /// Prompt plus completion tokens (a missing count is 0).
    public var tokens: Int { (promptTokens ?? 0) + (completionTokens ?? 0) }
}
