/// Writes a model list (`GET /api/tags`, `GET /v1/models`) with only the models its exchange may name
/// (`ModelPermit`): the upstream's body is held whole, then written once with the other entries taken out and every
/// other byte as Ollama sent it. A list is a few kilobytes; one larger than `maxBody`, or one that is not a list in
/// the shape Ollama writes, is refused (502; never sent unfiltered), unless only cloud models are kept from the
/// exchange (`ModelPermit.keepsOnlyCloud`): then a body that is not a list is passed as it came.
///
/// Loop thread of its exchange.
struct ModelListFilter {
    /// The most bytes of a list held.
    static let maxBody = 8 << 20

    let permit: ModelPermit
    /// `/v1/models` (`{"object":"list","data":[…]}`) rather than `/api/tags` (`{"models":[…]}`).
    let openAI: Bool
    private var held: [UInt8] = []
    private var tooLarge = false

    init(permit: ModelPermit, openAI: Bool) {
        self.permit = permit
        self.openAI = openAI
    }

    /// Holds `buffer[range]` (de-chunked body bytes); nothing goes to the client before the list is whole.
    mutating func feed(_ buffer: [UInt8], _ range: Range<Int>) {
        guard !tooLarge else { return }
        guard held.count + range.count <= Self.maxBody else {
            tooLarge = true
            held = []
            return
        }
        held.append(contentsOf: buffer[range])
    }

    /// The filtered list, or why there is none.
    func finish() -> Result<[UInt8], Refusal> {
        guard !tooLarge else { return .failure(Refusal(reason: "a model list longer than \(Self.maxBody) bytes")) }
        let permit = self.permit
        let listed = openAI
            ? ModelListScanner.filtered(held, listKey: "data", emptyIsNull: true) { permit.permits($0) }
            : ModelListScanner.filtered(held, listKey: "models", emptyIsNull: false) { permit.permits($0) }
        guard let listed else {
            if permit.keepsOnlyCloud { return .success(held) }
            return .failure(Refusal(reason: "a model list that is not \(openAI ? #"{"data":[…]}"# : #"{"models":[…]}"#)"))
        }
        return .success(listed)
    }

    /// Why a list could not be filtered.
    struct Refusal: Error {
        let reason: String
    }
}
