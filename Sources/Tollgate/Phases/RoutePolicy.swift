import TollgateHTTP

/// The route-policy phase: what each route allows, after authentication.
///
/// Read-only and inference routes are open to every authenticated user; admin routes (pull, push, create, copy,
/// delete, blobs) only to configured admins, and never to an API key limited to some models; account and cloud routes are refused for everyone; unknown paths get
/// 404 without reaching Ollama; a Content-Length already over the route's body limit gets 413 before the body is read
/// (chunked bodies are counted as they stream and stopped at the same limit).
final class RoutePolicy: ConnectionPhase {
    /// Whether users authenticate (with authentication off there are no users to tell apart), and who are admins.
    let authenticates: Bool
    let admins: Set<String>

    init?(config: ServerConfig, worker: Worker) {
        authenticates = config.users != nil
        admins = config.admins
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        if let rejection = RoutePolicy.check(exchange: ex, authenticates: authenticates, admins: admins) {
            return .answer(rejection, .rejected)
        }
        return .next
    }

    /// The refusal of `ex` by its route's policy, or nil.
    static func check(exchange ex: Exchange, authenticates: Bool, admins: Set<String>) -> ErrorResponse? {
        if hasDotSegment(ex.path) {
            return ErrorResponse(status: 400, message: "path with . or .. segments refused")
        }
        switch ex.route {
        case .account:
            return ErrorResponse(status: 403, message: "\(ex.path) is not available through this server")
        case .unknown:
            return ErrorResponse(status: 404, message: "no route \(ex.methodText) \(ex.path)")
        case .admin, .blobs:
            // With authentication off (tests of the bare proxy) there are no users to tell apart.
            if authenticates && !(ex.user.map { admins.contains($0) } ?? false) {
                return ErrorResponse(status: 403, message: "\(ex.path) changes models on disk and is reserved for administrators")
            }
            // A key limited to some models must not reach every model through its (admin) user: pulling, creating
            // from, copying or deleting any model, or writing blobs for one.
            if let models = ex.keyModels {
                return ErrorResponse(status: 403, message: "\(ex.path) changes models on disk; this API key is limited to "
                    + "the models \(models.sorted().joined(separator: ", ")) and cannot use it")
            }
        case .inference, .readOnly:
            break
        }
        if ex.bodyLimit > 0, case .length(let n) = ex.body, n > ex.bodyLimit {
            return .tooLarge(limit: ex.bodyLimit)
        }
        return nil
    }

    /// "." or ".." as a path segment, plain or percent-encoded (%2e), which could walk out of an allowed prefix.
    static func hasDotSegment(_ path: String) -> Bool {
        // Most paths have neither "." nor "%": decide without allocating.
        var path = path
        let suspect = path.withUTF8 { bytes in
            bytes.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "%") }
        }
        guard suspect else { return false }
        for segment in path.lowercased().split(separator: "/", omittingEmptySubsequences: false) {
            var rest = Substring(segment)
            var dots = 0
            while !rest.isEmpty {
                if rest.hasPrefix(".") { rest = rest.dropFirst() } else if rest.hasPrefix("%2e") { rest = rest.dropFirst(3) } else { break }
                dots += 1
            }
            if rest.isEmpty && (dots == 1 || dots == 2) { return true }
        }
        return false
    }
}
