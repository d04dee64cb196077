/// Where the peers merge model lists (several backends), `GET|HEAD /api/tags` and `GET /v1/models` list every
/// healthy backend's models, answered by Tollgate from the last polls (one backend would list only its own, and a
/// chat UI would not see the others').
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
        guard let entries = worker.peers.modelListing() else { return false }
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
