/// Models Ollama does not run itself but forwards to ollama.com, signed with the server's own key and billed to the
/// server owner's account: names whose tag is `cloud` or ends in `-cloud` (`gpt-oss:120b-cloud`, `x:cloud`).
///
/// Read generously, so that no spelling Ollama might still resolve to a cloud model slips through: ASCII case is
/// ignored, surrounding whitespace and a `@digest` suffix are dropped first, and a name ending `-cloud` counts even
/// without a tag.
enum CloudModel {
    static func isCloud(_ name: String) -> Bool {
        var n = Substring(name.lowercased())
        if let at = n.firstIndex(of: "@") { n = n[..<at] }
        while let c = n.last, c.isWhitespace { n.removeLast() }
        while let c = n.first, c.isWhitespace { n.removeFirst() }
        return n.hasSuffix(":cloud") || n.hasSuffix("-cloud")
    }
}
