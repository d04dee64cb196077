import TollgateHTTP

/// The model lists Tollgate answers itself with several backends: `GET /api/tags` and `GET /v1/models` over the
/// union of the healthy backends' last `/api/tags` polls, in the shapes Ollama gives them.
enum ModelListing {
    /// Merges per-backend lists (configured order): one entry per model name, the first backend's; then newest
    /// first by "modified_at", as Ollama's own list handler sorts (stable, so ties keep backend order).
    static func merge(_ lists: [[ModelEntry]]) -> [ModelEntry] {
        var seen: Set<String> = []
        var merged: [(entry: ModelEntry, created: Int64)] = []
        for list in lists {
            for entry in list where seen.insert(entry.key).inserted { merged.append((entry, entry.created)) }
        }
        // Swift's sort is not guaranteed stable: the position breaks ties.
        let order = merged.indices.sorted { a, b in
            merged[a].created != merged[b].created ? merged[a].created > merged[b].created : a < b
        }
        return order.map { merged[$0].entry }
    }

    /// `{"models":[...]}` with each entry's object as its backend sent it (Ollama's `/api/tags`).
    static func tagsBody(_ entries: [ModelEntry]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(entries.reduce(16) { $0 + $1.json.count + 1 })
        out.append(contentsOf: #"{"models":["#.utf8)
        for (n, entry) in entries.enumerated() {
            if n > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: entry.json)
        }
        out.append(contentsOf: "]}".utf8)
        return out
    }

    /// `{"object":"list","data":[{"id","object":"model","created","owned_by"}]}` as Ollama's OpenAI layer writes it
    /// (openai/openai.go `ToListCompletion`, sent by `json.NewEncoder(w).Encode`, hence the final newline); with no
    /// model its Go nil slice gives `"data":null`.
    static func openAIBody(_ entries: [ModelEntry]) -> [UInt8] {
        var s = #"{"object":"list","data":"#
        if entries.isEmpty {
            s += "null"
        } else {
            s += "["
            for (n, entry) in entries.enumerated() {
                if n > 0 { s += "," }
                s += #"{"id":\#(ErrorResponse.jsonString(entry.id)),"object":"model","created":\#(entry.created),"#
                s += #""owned_by":\#(ErrorResponse.jsonString(entry.ownedBy))}"#
            }
            s += "]"
        }
        s += "}\n"
        return Array(s.utf8)
    }
}
