/// Where the peers merge model lists (several backends), `GET|HEAD /api/tags` and `GET /v1/models` list every
/// healthy backend's models, answered by Tollgate from the last polls (one backend would list only its own, and a
/// chat UI would not see the others'). An exchange that may not name every model sees only those it may.
extension ClientConnection {
    /// Answers a model-list request from the backends' polled lists; false when it is not one, the peers do not merge
    /// lists, or no healthy backend's list has been read yet (then it is proxied like any other route).
    func answerModelList(_ ex: Exchange) -> Bool {
        guard worker.peers.mergesModelLists else { return false }
        // The paths and methods Ollama itself routes (gin: case-sensitive; HEAD only for /api/tags).
        let openAI: Bool
        switch (ex.path, ex.method) {
        case ("/api/tags", .get), ("/api/tags", .head): openAI = false
        case ("/v1/models", .get): openAI = true
        default: return false
        }
        guard var entries = worker.peers.modelListing() else { return false }
        // Only the models this exchange may name (`ModelGate`, `ModelPermit`).
        if let permit = ex.modelPermit {
            entries.removeAll { !permit.permits(ModelListScanner.ListedNames(name: $0.name, model: $0.id)) }
        }
        // The content types Ollama sends: gin's c.JSON for /api/tags, a json.Encoder after "application/json" for
        // the OpenAI layer.
        if openAI {
            answer(ex, status: 200, bytes: ModelListing.openAIBody(entries), contentType: "application/json",
                   reason: .completed)
        } else {
            answer(ex, status: 200, bytes: ModelListing.tagsBody(entries), reason: .completed)
        }
        return true
    }
}
