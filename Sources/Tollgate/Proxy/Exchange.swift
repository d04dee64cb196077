import TollgateHTTP
import TollgateIO

/// One request and its response as they cross Tollgate. Owned by its `ClientConnection`; loop thread only.
final class Exchange {
    enum RequestBody {
        case none
        case length(remaining: Int)
        case chunked
    }

    let requestID: RequestID
    let method: HTTPMethod
    let methodText: String
    /// The path Ollama routes on (percent-decoded as Go decodes it): what every policy and the log use.
    let path: String
    let version: HTTPVersion
    let family: APIFamily
    let route: RouteClass
    let start: UInt64
    /// The phases this exchange runs (the worker's when it started; a reload does not change them midway), and
    /// where it is in them.
    let phases: PhaseRunner<ClientConnection>
    var progress = PhaseProgress()
    var clientKeepAlive: Bool
    /// The client's address when it differs from the TCP peer (a trusted proxy's X-Forwarded-For), else nil.
    var client: SocketAddress.Host?
    /// The keyed hash of the credential headers being checked, remembered by the connection once they verify.
    var credentialFingerprint: Int?
    /// Credentials read from the request, until their password check takes them.
    var login: PendingLogin?
    /// The path is public: served without authentication.
    var isPublic = false
    /// The authenticated user (nil while unknown or with authentication off).
    var user: String?
    /// The user name the request's credentials give, verified or not: the access log names it for a refused login.
    var attemptedUser: String?
    /// The fingerprint (`SHA256:…`) of the `ollama` key the request was signed with, when it was: the access log
    /// says so.
    var ollamaKey: String?
    /// The API key the request presented (its id only; the access log's `key`, the usage ledger's `key_id`),
    /// verified or not (a refused one has no user and no tokens).
    var keyID: String?
    /// What the quota charged this exchange when it settled (tokens, and whether it counts as a request): the usage
    /// ledger's `charged_tokens` and `counted_request`.
    var charged: (tokens: Int, request: Bool) = (0, false)
    /// The models the accepted API key narrows its user to (nil: no key, or a key without a model list).
    var keyModels: Set<String>?
    /// What became of that key's login when it was refused (every refusal gives the client the same words; the
    /// access log keeps the reason).
    var ollamaKeyResult: OllamaKeyResult?
    /// The model Ollama's handler will act on (inference routes and `/api/show`, once the body was read whole):
    /// what the log, the metrics and backend routing use.
    var model: String?
    /// When the body being read whole must have arrived (0: no such deadline).
    var bodyDeadline: UInt64 = 0
    /// The inference slot this exchange holds (released exactly once), or its place in the wait queue.
    var slot: SlotGrant?
    var ticket: UInt64?
    /// The request's Origin when CORS allows it: echoed in Access-Control-Allow-Origin.
    var corsOrigin: String?
    /// Over the rate limit but let through (dry run): logged as such.
    var rateLimited = false
    /// What the rate limit and authentication made of this request, for the log and the metrics.
    var rateLimitResult = RateLimitResult.off
    var authResult = AuthResult.off
    /// When the upstream connection was attached (0: never), for the log's upstream time.
    var upstreamStart: UInt64 = 0
    /// Some byte of the request was written to an upstream (set by `UpstreamConnection.flush`): Ollama may have acted
    /// on it, so its quota charge is never nothing (`QuotaCharge.of`).
    var forwarded = false
    /// Backends that were written some of this request and failed before answering, after which it went to another
    /// (`ClientConnection.failOver`): each may have evaluated the prompt and generated, so each is charged the whole
    /// reservation on top of what the last one cost (`QuotaCharge.of`).
    var abandonedBackends = 0
    /// The response head came from the upstream (not Tollgate's own `502`/`504`), for `QuotaCharge.of`.
    var upstreamAnswered = false
    /// Token counts from the response (inference routes only).
    var responseScanner: UsageScanner?
    /// What this exchange holds of its user's quota, settled exactly once when it ends (`ClientConnection.settleQuota`).
    var quota: QuotaReservation?
    /// The inference route (nil for every other path): which body fields Ollama reads and where its counts are.
    let inferenceRoute: InferenceRoute?

    // accounts: generation limits, the body rewrite, token counts
    /// The caps the body is rewritten to before it is forwarded, set by the phase that decides them (policy,
    /// quota) after the body was read whole; applied once by `ClientConnection.rewriteBody`. nil: none.
    var generationLimits: GenerationLimits?
    /// The body was planned (`ClientConnection.rewriteBody` ran): later calls change nothing.
    var bodyRewritten = false
    /// What the rewrite lowered, for the `X-Tollgate-Lowered` response header and the log.
    var lowered: [LoweredField] = []
    /// The most tokens the forwarded request may generate (nil: unbounded or not yet planned; 0: an embedding).
    var generationCap: Int?
    /// Tollgate set `stream_options.include_usage` on a streamed OpenAI request: the usage it brings is removed from
    /// the response (`usageFilter`) before the client sees it.
    var usageInjected = false
    /// Removes the usage Tollgate asked for from the event stream (set when the response head arrives).
    var usageFilter: SSEUsageFilter?
    /// The model list being held to be written narrowed (`ModelListFilter`).
    var listFilter: ModelListFilter?
    /// The client's response head while its model list is held: sent with the narrowed list's length.
    var heldHead: [UInt8]?
    /// The rewritten body goes upstream with a Content-Length (a chunked body read whole is not framed again).
    var bodyLengthFramed = false
    /// More response headers Tollgate adds to the upstream's answer (`X-Tollgate-Lowered`, a quota's headers).
    var responseHeaders: [(String, String)] = []

    // request side
    var body: RequestBody
    var bodyDecoder = ChunkedDecoder()
    var bodyLimit: Int
    var bodyBytes = 0
    /// The whole body has been read from the client and queued upstream.
    var requestDone = false
    var expectContinue: Bool
    var upstream: UpstreamConnection?
    /// The rewritten head for the upstream, written when the request head was parsed.
    var upstreamHead: [UInt8] = []
    /// The complete request as a pooled connection was given it, to send once more on a new connection if the
    /// backend turns out to have closed the pooled one (`ClientConnection.resendStale`).
    var replay: [UInt8]?

    // the peer (`UpstreamPeers`)
    /// The backend the current upstream connection goes to (0 for the single upstream).
    var backend: Int?
    /// This exchange's hold on that backend, released when the exchange ends or fails over.
    var backendLease: BackendLease?
    /// Its place in the backend wait queue.
    var backendTicket: UInt64?
    /// Bit i set: backend i was tried (failover goes to each backend at most once).
    var triedBackends: UInt64 = 0
    /// The body is being read in full (inference routes always; other routes where `UpstreamPeers.readsBodyWhole`
    /// says so) before a slot or a backend is taken: its model decides, and a slow body holds nothing scarce.
    var buffering = false
    /// The body as it goes upstream; with `upstreamHead` it is the whole request, kept until the first response
    /// byte so that it can be sent again to another backend. While `buffering`, the raw (de-chunked) bytes.
    var stagedBody: [UInt8] = []
    /// Bytes of `stagedBody` counted against the worker's `bufferedBodyBytes` (given back when the exchange ends).
    var bufferCharge = 0
    /// The whole body was read into `stagedBody` (raw until `proxy` frames a chunked one again).
    var wholeBody = false
    /// The request body is chunked.
    let isChunked: Bool
    /// The request declares a Content-Encoding other than `identity`.
    let contentEncoded: Bool
    /// Whether `upstreamHead` + `stagedBody` hold the complete request, kept for another backend (the peers keep
    /// requests, and it was read whole).
    var replayable = false
    /// The last backend failure ("host: what failed"), for the error log's line when no backend is left.
    var lastBackendError = ""

    // response side
    /// Whether the upstream's complete response head allows reusing its connection (`ResponseHead.keepAlive`).
    var responseKeepAlive = false
    /// The length of the last complete response head parsed (an interim one included); 0 before any.
    var responseHeadLength = 0
    var headSent = false
    var mode: ResponseBodyMode = .none
    var remaining = 0
    var responseDecoder = ChunkedDecoder()
    var status = 0
    var bytesIn = 0
    var bytesOut = 0
    var firstByteAt: UInt64 = 0
    /// The client connection closes after this response.
    var closeAfter = false

    /// `decodedPath`: the path as Ollama decodes it when that differs from the bytes sent (see `RequestTarget`).
    init(requestID: RequestID, head: RequestHead, buffer: [UInt8], decodedPath: [UInt8]? = nil, family: APIFamily,
         route: RouteClass, bodyLimit: Int, start: UInt64, phases: PhaseRunner<ClientConnection>) {
        self.requestID = requestID
        self.method = head.method
        self.methodText = head.method.name ?? String(decoding: buffer[head.methodRange], as: UTF8.self)
        self.path = decodedPath.map { String(decoding: $0, as: UTF8.self) } ?? String(decoding: buffer[head.path], as: UTF8.self)
        self.version = head.version
        self.family = family
        self.route = route
        self.start = start
        self.phases = phases
        self.clientKeepAlive = head.keepAlive
        self.bodyLimit = bodyLimit
        self.expectContinue = head.expectContinue
        if case .chunked = head.framing { isChunked = true } else { isChunked = false }
        contentEncoded = HTTPBytes.declaresEncoding(head.headers, buffer)
        switch head.framing {
        case .contentLength(let n) where n > 0: body = .length(remaining: n)
        case .chunked: body = .chunked
        default: body = .none
        }
        let inference = route == .inference ? InferenceRoute.of(path: self.path) : nil
        inferenceRoute = inference
        requestDone = { if case .none = body { return true } else { return false } }()
        if let inference {
            responseScanner = UsageScanner(route: inference)
        }
    }

    var isHead: Bool { method == .head }

    /// The tokens Ollama counted for this exchange's response, once it has ended: nil when the response carried no
    /// complete count (not an inference route, an error status, an error in the stream, a stream cut short).
    var tokenUsage: TokenUsage? {
        guard status >= 200 && status < 300 else { return nil }
        return responseScanner?.usage
    }

    /// A model list whose answer is filtered for this exchange (`ModelGate`); nil: listed as the upstream lists.
    var modelPermit: ModelPermit?

    /// `GET|HEAD /api/tags` or `GET /v1/models`, the lists of the models Ollama holds, or `GET /api/ps`, the list
    /// of those loaded, in `/api/tags`' shape (paths and methods as gin routes them).
    var listsModels: Bool {
        (method == .get && (path == "/api/tags" || path == "/v1/models" || path == "/api/ps"))
            || (method == .head && path == "/api/tags")
    }

    /// The body names a model Ollama acts on: inference routes, and `POST /api/show`.
    var bodyNamesModel: Bool { route == .inference || (method == .post && path == "/api/show") }
}
