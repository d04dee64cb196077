/// Model names compared the way Ollama resolves them: "mistral" is "mistral:latest", case does not matter, and the
/// default registry and namespace may be spelled out.
enum ModelName {
    /// The canonical form: lowercased, ":latest" added when the last path part has no tag,
    /// "registry.ollama.ai/" and "library/" dropped.
    static func normalize(_ name: String) -> String {
        let last = name.split(separator: "/").last.map(String.init) ?? name
        var n = (last.contains(":") ? name : name + ":latest").lowercased()
        for prefix in ["registry.ollama.ai/", "library/"] where n.hasPrefix(prefix) {
            n.removeFirst(prefix.count)
        }
        return n
    }
}
